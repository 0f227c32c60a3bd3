"""Fixtures for the shipments tests (the shared ones are in tests/conftest.py)."""

import pytest

from shipments import keys
from tests.shipments.api_helpers import Api


@pytest.fixture
def api(client, brand):
    return Api(client, keys.create_api_key(brand=brand, name="tests")[1])


@pytest.fixture
def other_api(client, other_brand):
    return Api(client, keys.create_api_key(brand=other_brand, name="tests")[1])
