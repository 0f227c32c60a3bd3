"""A public page whose database is away answers 503 with Retry-After
(pages/unavailable.py)."""

from unittest import mock

import pytest
from django.db import OperationalError, connection

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("prefix", ["/t/", "/embed/t/"])
def test_a_pool_timeout_is_a_503_with_retry_after(client, shipment, prefix):
    url = f"{prefix}{shipment.public_token}/"
    error = OperationalError("couldn't get a connection after 10.00 sec")
    with mock.patch.object(connection, "ensure_connection", side_effect=error):
        response = client.get(url)
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert response["Cache-Control"] == "no-store"
    assert b"try again" in response.content
    assert shipment.recipient_phone.encode() not in response.content
