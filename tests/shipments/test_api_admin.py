"""The API's parts of the admin: keys shown once and revoked; inbound
webhook secrets rotated."""

import re

from django.contrib.auth.models import Permission
from django.urls import reverse

from shipments import keys
from shipments.models import ApiKey, Brand


def test_adding_a_key_shows_it_once_and_stores_only_its_hash(admin_client, brand, client):
    response = admin_client.post(reverse("admin:shipments_apikey_add"), {"brand": brand.pk, "name": "warehouse"})
    assert response.status_code == 200
    raw = re.search(r'<code id="new-api-key">([^<]+)</code>', response.content.decode()).group(1)
    stored = ApiKey.objects.get(brand=brand)
    assert stored.key_hash == keys.hash_key(raw) and raw not in (stored.key_hash, stored.prefix)
    assert stored.name == "warehouse"
    assert client.get("/api/v1/shipments/X", HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 404
    for url in (
        reverse("admin:shipments_apikey_changelist"),
        reverse("admin:shipments_apikey_change", args=[stored.pk]),
    ):
        assert raw not in admin_client.get(url).content.decode()


def test_revoke_action_stops_the_key(admin_client, brand, client):
    api_key, raw = keys.create_api_key(brand=brand)
    response = admin_client.post(
        reverse("admin:shipments_apikey_changelist"), {"action": "revoke", "_selected_action": [api_key.pk]}
    )
    assert response.status_code == 302
    api_key.refresh_from_db()
    assert api_key.revoked_at is not None
    assert client.get("/api/v1/shipments/X", HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 401


def test_staff_see_and_make_keys_only_for_their_brands(client, django_user_model, brand, other_brand):
    user = django_user_model.objects.create_user("support", password="pw", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="shipments"))
    brand.staff.add(user)
    client.force_login(user)
    mine, _ = keys.create_api_key(brand=brand, name="mine")
    theirs, _ = keys.create_api_key(brand=other_brand, name="theirs")
    listed = client.get(reverse("admin:shipments_apikey_changelist")).context["cl"].result_list
    assert list(listed) == [mine]
    assert client.get(reverse("admin:shipments_apikey_change", args=[theirs.pk])).status_code == 302
    response = client.post(reverse("admin:shipments_apikey_add"), {"brand": other_brand.pk, "name": "sneaky"})
    assert response.status_code == 200 and "brand" in response.context["adminform"].form.errors
    assert not ApiKey.objects.filter(name="sneaky").exists()


def test_rotating_the_inbound_secret_keeps_the_old_one_as_previous(admin_client, brand):
    brand.inbound_webhook_secret = old = keys.new_webhook_secret()
    brand.save()
    admin_client.post(
        reverse("admin:shipments_brand_changelist"),
        {"action": "rotate_inbound_webhook_secret", "_selected_action": [brand.pk]},
    )
    brand = Brand.objects.get(pk=brand.pk)
    assert brand.inbound_webhook_previous_secret == old
    assert brand.inbound_webhook_secret.startswith("whsec_") and brand.inbound_webhook_secret != old
