"""API keys: hashed, found by value, revoked for good."""

from datetime import timedelta

import time_machine

from shipments import keys


def test_a_key_authenticates_until_revoked(brand):
    api_key, raw = keys.create_api_key(brand=brand)
    assert keys.authenticate_key(raw) == api_key
    keys.revoke_api_key(api_key=api_key)
    assert keys.authenticate_key(raw) is None


def test_unknown_malformed_and_near_miss_keys_are_refused(brand):
    _, raw = keys.create_api_key(brand=brand)
    for candidate in ["", "lmk_", raw[:-1], raw + "x", raw.upper(), "x" * 500, raw.replace("lmk_", "abc_")]:
        assert keys.authenticate_key(candidate) is None


def test_last_used_is_written_at_most_every_few_minutes(brand, django_assert_num_queries):
    api_key, raw = keys.create_api_key(brand=brand)
    with django_assert_num_queries(2):
        keys.authenticate_key(raw)  # first use: read and note it
    with django_assert_num_queries(1):
        keys.authenticate_key(raw)
    later = api_key.created_at + keys.LAST_USED_RESOLUTION + timedelta(minutes=1)
    with time_machine.travel(later), django_assert_num_queries(2):
        keys.authenticate_key(raw)
