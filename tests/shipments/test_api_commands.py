"""create_brand and create_api_key, as DESIGN.md's contract says."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from standardwebhooks.webhooks import Webhook

from shipments import keys
from shipments.models import ApiKey, Brand


def run(*args):
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue().rstrip("\n").split("\n")


@pytest.mark.django_db
def test_create_brand_is_idempotent():
    run("create_brand", "acme", "--name", "Acme Parcels")
    run("create_brand", "acme", "--name", "Another Name")
    brand = Brand.objects.get()
    assert (brand.slug, brand.name) == ("acme", "Acme Parcels")


@pytest.mark.django_db
def test_create_brand_with_webhook_url_prints_the_signing_secret_last():
    lines = run("create_brand", "acme", "--name", "Acme", "--webhook-url", "https://acme.example/hooks")
    brand = Brand.objects.get()
    assert brand.webhook_url == "https://acme.example/hooks"
    assert lines[-1] == brand.webhook_secret
    assert lines[-1].startswith("whsec_")
    Webhook(lines[-1])  # a secret any Standard Webhooks library accepts
    # Again: the same secret, so endpoints already verifying keep working.
    assert run("create_brand", "acme", "--name", "Acme", "--webhook-url", "https://acme.example/v2")[-1] == lines[-1]
    assert Brand.objects.get().webhook_url == "https://acme.example/v2"


@pytest.mark.django_db
@pytest.mark.parametrize("args", [("not a slug", "--name", "X"), ("acme", "--name", "X", "--webhook-url", "ftp://x")])
def test_create_brand_refuses_bad_input(args):
    with pytest.raises(CommandError):
        run("create_brand", *args)
    assert not Brand.objects.exists()


def test_create_api_key_prints_a_working_key_alone_on_the_last_line(brand):
    lines = run("create_api_key", "acme")
    raw = lines[-1]
    assert raw.startswith(keys.KEY_PREFIX) and " " not in raw
    assert keys.authenticate_key(raw).brand == brand
    assert not ApiKey.objects.filter(key_hash=raw).exists()
    assert run("create_api_key", "acme")[-1] != raw


@pytest.mark.django_db
def test_create_api_key_for_an_unknown_brand_fails():
    with pytest.raises(CommandError, match="create_brand"):
        run("create_api_key", "nobody")
