"""Schemathesis against the API's own OpenAPI document: generated requests
(valid and not) never get a 5xx, and every answer matches the document."""

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from shipments import keys

schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", WSGIHandler())


@pytest.fixture
def bearer(brand, make_shipment):
    make_shipment(tracking_number="LM1")
    # Django closes connections at the end of each request it serves, which
    # would end the test's transaction; its test client does the same as this.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield {"Authorization": f"Bearer {keys.create_api_key(brand=brand)[1]}"}
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.mark.django_db
@schema.parametrize()
@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_openapi_document(case, bearer):
    # Every default check but "schema-valid data is accepted": some rules are
    # the data's, not the schema's (a known time zone, a tracking number of
    # this brand), and those answer 404 or 422 by design.
    case.call_and_validate(headers=bearer, excluded_checks=[positive_data_acceptance])
