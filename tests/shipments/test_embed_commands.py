"""embed_secret and create_brand --embed-origin, and the same in the brand's
admin page."""

import subprocess
import sys
import time
from datetime import timedelta
from io import StringIO
from unittest.mock import patch

import pytest
import time_machine
from django.conf import settings
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone

from shipments.embedding import embed_origins, order_signature, verify_order_link
from shipments.models import Brand
from tests.shipments.admin_helpers import change_form_data

pytestmark = pytest.mark.django_db


def run(*args):
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue().rstrip("\n").split("\n")


def _link(secret, order_ref="ORD-1"):
    expires = int(time.time()) + 600
    return order_ref, str(expires), order_signature(secret, order_ref, expires)


def test_embed_secret_makes_one_once_and_prints_it_alone_last(brand):
    first = run("embed_secret", brand.slug)[-1]
    brand.refresh_from_db()
    assert first == brand.embed_secret
    assert first.startswith("embsec_") and len(first) > 40
    assert run("embed_secret", brand.slug)[-1] == first
    assert verify_order_link(brand, *_link(first))


def test_rotate_keeps_the_old_secret_valid_for_a_day(brand):
    old = run("embed_secret", brand.slug)[-1]
    new = run("embed_secret", brand.slug, "--rotate")[-1]
    assert new != old
    brand.refresh_from_db()
    assert (brand.embed_secret, brand.embed_previous_secret) == (new, old)
    assert verify_order_link(brand, *_link(new))
    assert verify_order_link(brand, *_link(old))
    with time_machine.travel(timezone.now() + timedelta(hours=24, minutes=1)):
        assert verify_order_link(brand, *_link(new))
        assert not verify_order_link(brand, *_link(old))


def test_embed_secret_for_an_unknown_brand_fails():
    with pytest.raises(CommandError):
        run("embed_secret", "nobody")


def test_create_brand_sets_the_embed_origins_idempotently():
    lines = run(
        "create_brand", "acme", "--name", "Acme", "--embed-origin", "https://Shop.example:443/",
        "--embed-origin", "http://127.0.0.2:8010",
    )  # fmt: skip
    brand = Brand.objects.get()
    assert embed_origins(brand) == ["https://shop.example", "http://127.0.0.2:8010"]
    assert "https://shop.example" in lines[-1]
    with patch("shipments.edits.edit_brand") as edit:
        run("create_brand", "acme", "--name", "Acme", "--embed-origin", "https://shop.example",
            "--embed-origin", "http://127.0.0.2:8010")  # fmt: skip
    assert not edit.called
    run("create_brand", "acme", "--name", "Acme", "--embed-origin", "https://other.example")
    assert embed_origins(Brand.objects.get()) == ["https://other.example"]
    # Without --embed-origin, the origins are left as they are.
    run("create_brand", "acme", "--name", "Acme")
    assert embed_origins(Brand.objects.get()) == ["https://other.example"]


@pytest.mark.parametrize("bad", ["*", "https://*.shop.example", "https://shop.example/path", "ftp://shop.example"])
def test_create_brand_refuses_a_bad_origin_and_saves_nothing(bad):
    with pytest.raises(CommandError, match="origin"):
        run("create_brand", "acme", "--name", "Acme", "--embed-origin", "https://ok.example", "--embed-origin", bad)
    assert not Brand.objects.exists()


def test_create_brand_refuses_a_bad_origin_for_an_existing_brand(brand):
    brand.embed_origins = "https://kept.example"
    brand.save()
    with pytest.raises(CommandError):
        run("create_brand", brand.slug, "--name", brand.name, "--embed-origin", "https://x.example/?a=1")
    brand.refresh_from_db()
    assert brand.embed_origins == "https://kept.example"


def test_a_bad_origin_exits_non_zero(tmp_path):
    result = subprocess.run(
        [sys.executable, "manage.py", "create_brand", "acme", "--name", "Acme", "--embed-origin", "*"],
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        env={"DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}", "PATH": "/usr/bin:/bin"},
        timeout=60,
    )
    assert result.returncode != 0
    assert "origin" in result.stderr


# The same in the brand's admin page.


def test_the_brand_page_shows_the_embed_secret_masked(agent_client, brand):
    secret = run("embed_secret", brand.slug)[-1]
    page = agent_client.get(reverse("admin:shipments_brand_change", args=[brand.pk]))
    html = page.content.decode()
    assert secret not in html
    assert f"embsec_…{secret[-4:]}" in html
    assert reverse("admin:shipments_brand_new_secret", args=[brand.pk, "embed_secret"]) in html
    assert not {"embed_secret", "embed_previous_secret", "embed_secret_rotated_at"} & set(
        page.context["adminform"].form.fields
    )


def test_a_new_embed_secret_is_asked_for_then_shown_once(agent_client, brand):
    old = run("embed_secret", brand.slug)[-1]
    url = reverse("admin:shipments_brand_new_secret", args=[brand.pk, "embed_secret"])
    asked = agent_client.get(url)
    assert "24 hours" in asked.content.decode()
    brand.refresh_from_db()
    assert brand.embed_secret == old
    response = agent_client.post(url)
    brand.refresh_from_db()
    new = brand.embed_secret
    assert new != old and new.startswith("embsec_")
    assert brand.embed_previous_secret == old
    assert brand.embed_secret_rotated_at is not None
    assert new in response.content.decode()
    assert "no-store" in response["Cache-Control"]
    assert new not in str(dict(agent_client.session))
    assert new not in agent_client.get(reverse("admin:shipments_brand_change", args=[brand.pk])).content.decode()
    assert verify_order_link(brand, *_link(old)) and verify_order_link(brand, *_link(new))


def test_another_brands_embed_secret_cannot_be_made(agent_client, other_brand):
    url = reverse("admin:shipments_brand_new_secret", args=[other_brand.pk, "embed_secret"])
    assert agent_client.post(url).status_code == 404
    other_brand.refresh_from_db()
    assert other_brand.embed_secret == ""


def test_the_embed_secret_cannot_be_read_back_by_filtering(agent_client, brand):
    secret = run("embed_secret", brand.slug)[-1]
    response = agent_client.get(reverse("admin:shipments_brand_changelist"), {"embed_secret__startswith": secret[:9]})
    assert response.status_code == 400


def test_the_admin_refuses_a_bad_embed_origin(agent_client, brand):
    url = reverse("admin:shipments_brand_change", args=[brand.pk])
    data = change_form_data(agent_client.get(url), embed_origins="https://shop.example\nhttps://*.example")
    response = agent_client.post(url, data)
    assert response.status_code == 200
    assert "embed_origins" in response.context["adminform"].form.errors
    brand.refresh_from_db()
    assert brand.embed_origins == ""
    data = change_form_data(agent_client.get(url), embed_origins="https://shop.example\nhttp://127.0.0.2:8010")
    assert agent_client.post(url, data).status_code == 302
    brand.refresh_from_db()
    assert embed_origins(brand) == ["https://shop.example", "http://127.0.0.2:8010"]
