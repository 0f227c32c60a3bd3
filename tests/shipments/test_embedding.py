"""The widget's origins and signed order links (shipments/embedding.py)."""

import time
from datetime import timedelta

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.utils import timezone

from shipments.embedding import (
    embed_origins,
    normalise_origin,
    order_signature,
    parse_origins,
    verify_order_link,
)
from shipments.models import Brand

# The README's test vector: a brand's server can check its code against it.
VECTOR_SECRET = "embsec_test-vector-secret"
VECTOR_ORDER = "ORD-1001"
VECTOR_EXPIRES = 1798761600  # 2027-01-01T00:00:00Z
VECTOR_SIGNATURE = "3803b46234aa271367f1bf56af7c6601e3dbdf384e1994bbec9db56cae9ef5e7"


def test_the_signature_matches_the_published_vector():
    assert order_signature(VECTOR_SECRET, VECTOR_ORDER, VECTOR_EXPIRES) == VECTOR_SIGNATURE


@pytest.mark.parametrize(
    ("entry", "origin"),
    [
        ("https://shop.example.com", "https://shop.example.com"),
        ("  HTTPS://Shop.Example.COM/  ", "https://shop.example.com"),
        ("https://shop.example.com:443", "https://shop.example.com"),
        ("http://shop.example.com:80", "http://shop.example.com"),
        ("http://127.0.0.2:8010", "http://127.0.0.2:8010"),
        ("https://shop.example.com:8443", "https://shop.example.com:8443"),
        ("http://[::1]:8000", "http://[::1]:8000"),
    ],
)
def test_origins_are_normalised(entry, origin):
    assert normalise_origin(entry) == origin


@pytest.mark.parametrize(
    "entry",
    [
        "*",
        "https://*.example.com",
        "https://shop.example.com/checkout",
        "https://shop.example.com/?q=1",
        "https://shop.example.com#x",
        "ftp://shop.example.com",
        "javascript:alert(1)",
        "shop.example.com",
        "https://user:pw@shop.example.com",
        "https://shop.example.com:99999",
        "https://shop example.com",
        "https://shop.example.com 'unsafe-inline'",
        "https://shop.example.com;script-src",
        "https://",
        "'self'",
        "https://exa_mple.com",
    ],
)
def test_bad_origins_are_refused(entry):
    with pytest.raises(ValidationError):
        normalise_origin(entry)


def test_a_list_skips_blanks_and_repeats_and_names_bad_lines():
    assert parse_origins("https://a.example\n\n  \nhttps://A.example:443/\nhttp://b.example\n") == [
        "https://a.example",
        "http://b.example",
    ]
    with pytest.raises(ValidationError) as refused:
        parse_origins("https://a.example\n*\nhttps://c.example/path")
    assert len(refused.value.error_list) == 2


@pytest.mark.django_db
def test_brand_clean_refuses_a_bad_origin(brand):
    brand.embed_origins = "https://shop.example.com\nhttps://*.example.com"
    with pytest.raises(ValidationError) as refused:
        brand.full_clean()
    assert "embed_origins" in refused.value.message_dict
    brand.embed_origins = "https://shop.example.com"
    brand.full_clean()


def test_origins_saved_around_validation_are_left_out_never_widened():
    brand = Brand(embed_origins="https://ok.example\n*\nhttps://x.example/p")
    assert embed_origins(brand) == ["https://ok.example"]
    assert embed_origins(Brand(embed_origins="")) == []


def _brand(**fields):
    return Brand(embed_secret=fields.pop("embed_secret", "embsec_current"), **fields)


def _link(secret, order_ref="ORD-1", lifetime=3600):
    expires = int(time.time()) + lifetime
    return order_ref, str(expires), order_signature(secret, order_ref, expires)


def test_a_good_link_verifies():
    assert verify_order_link(_brand(), *_link("embsec_current"))


@pytest.mark.parametrize(
    "mangle",
    [
        lambda ref, exp, sig: (ref, exp, "0" * 64),
        lambda ref, exp, sig: ("ORD-2", exp, sig),
        lambda ref, exp, sig: (ref, str(int(exp) + 1), sig),
        lambda ref, exp, sig: (ref, exp, sig.upper()),
        lambda ref, exp, sig: (ref, exp, sig[:-1]),
        lambda ref, exp, sig: (ref, exp, sig + "0"),
        lambda ref, exp, sig: (ref, " " + exp, sig),
        lambda ref, exp, sig: (ref, exp + ".0", sig),
        lambda ref, exp, sig: (ref, "-" + exp, sig),
        lambda ref, exp, sig: (ref, "", sig),
        lambda ref, exp, sig: (ref, None, sig),
        lambda ref, exp, sig: (ref, exp, None),
    ],
)
def test_a_forged_or_mangled_link_is_refused(mangle):
    assert not verify_order_link(_brand(), *mangle(*_link("embsec_current")))


def test_another_brands_secret_does_not_verify():
    assert not verify_order_link(_brand(), *_link("embsec_other"))


def test_a_brand_without_a_secret_verifies_nothing():
    brand = _brand(embed_secret="")
    assert not verify_order_link(brand, *_link(""))


def test_an_expired_link_is_refused():
    ref, expires, signature = _link("embsec_current", lifetime=60)
    assert verify_order_link(_brand(), ref, expires, signature)
    with time_machine.travel(time.time() + 61, tick=False):
        assert not verify_order_link(_brand(), ref, expires, signature)


def test_a_link_absurdly_far_ahead_is_refused():
    assert verify_order_link(_brand(), *_link("embsec_current", lifetime=30 * 86400))
    assert not verify_order_link(_brand(), *_link("embsec_current", lifetime=32 * 86400))
    assert not verify_order_link(_brand(), "ORD-1", "9" * 13, "0" * 64)


def test_the_previous_secret_verifies_for_a_day_after_a_rotation():
    rotated = _brand(embed_previous_secret="embsec_old", embed_secret_rotated_at=timezone.now())
    link = _link("embsec_old")
    assert verify_order_link(rotated, *link)
    rotated.embed_secret_rotated_at = timezone.now() - timedelta(hours=24, seconds=1)
    assert not verify_order_link(rotated, *link)
    rotated.embed_secret_rotated_at = None
    assert not verify_order_link(rotated, *link)
    assert verify_order_link(rotated, *_link("embsec_current"))
