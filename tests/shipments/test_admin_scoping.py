"""The attacks on the admin, replayed as a brand-A agent through the real
admin pages: nothing of brand B can be seen, picked or changed, staff
membership is the superusers' alone, and secrets are shown once."""

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone

from shipments import customer, services
from shipments.models import Brand, Driver, Route, Stop
from tests.conftest import event

from .admin_helpers import add_inline_form, change_form_data

B_NUMBER = "BSECRET-4242"


@pytest.fixture
def root(django_user_model):
    return django_user_model.objects.create_superuser("root", "root@example.com", "pw")


@pytest.fixture
def theirs(make_shipment, other_brand):
    """Brand B's parcel, on the van today."""
    shipment = make_shipment(B_NUMBER, for_brand=other_brand, recipient_email="b@other.example")
    services.record_event(shipment_id=shipment.pk, event=event("out_for_delivery", 0))
    return shipment


@pytest.fixture
def route(brand, make_shipment):
    driver = Driver.objects.create(brand=brand, ref="drv-a", name="Sam")
    route = Route.objects.create(driver=driver, date=timezone.now().date())
    Stop.objects.create(route=route, shipment=make_shipment("LMA00001"), sequence=1)
    return route


def post_stop(client, route, shipment_pk):
    url = reverse("admin:shipments_route_change", args=[route.pk])
    data = change_form_data(client.get(url))
    add_inline_form(data, "stops", sequence="2", shipment=str(shipment_pk), completed_at_0="", completed_at_1="")
    return client.post(url, data)


def test_another_brands_parcel_cannot_be_put_on_the_route(agent_client, route, theirs):
    response = post_stop(agent_client, route, theirs.pk)
    assert response.status_code == 200  # the form again, with its error
    errors = [form.errors for form in response.context["inline_admin_formsets"][0].formset.forms]
    assert any("shipment" in error for error in errors)
    assert not Stop.objects.filter(shipment=theirs).exists()
    # The raw-id widget shows no label for the refused id: B's tracking
    # number appears nowhere on the page.
    assert B_NUMBER not in response.content.decode()
    page = agent_client.get(theirs.get_absolute_url()).content.decode()
    assert "stop away" not in page and "next stop" not in page


def test_even_a_superuser_cannot_mix_brands_on_a_route(client, root, route, theirs):
    client.force_login(root)
    response = post_stop(client, route, theirs.pk)
    assert response.status_code == 200
    assert "not one of the brand of the route" in response.content.decode()
    assert not Stop.objects.filter(shipment=theirs).exists()


def test_an_own_parcel_is_added_to_the_route(agent_client, route, make_shipment):
    mine = make_shipment("LMA00002")
    response = post_stop(agent_client, route, mine.pk)
    assert response.status_code == 302
    assert list(route.stops.values_list("shipment__tracking_number", flat=True)) == ["LMA00001", "LMA00002"]


def test_raw_id_picker_and_change_pages_never_show_another_brands_parcel(agent_client, route, theirs):
    url = reverse("admin:shipments_shipment_changelist")
    popup = agent_client.get(url, {"_to_field": "id", "_popup": "1"})
    assert popup.status_code == 200
    assert B_NUMBER not in popup.content.decode()
    # A route page whose stop names B's parcel (as the old admin let one be
    # made) doesn't label it either.
    Stop.objects.create(route=route, shipment=theirs, sequence=2)
    page = agent_client.get(reverse("admin:shipments_route_change", args=[route.pk]))
    assert B_NUMBER not in page.content.decode()


BRAND_FILTERED = [
    "shipments_shipment",
    "shipments_trackingevent",
    "shipments_statuschange",
    "shipments_driver",
    "shipments_route",
    "shipments_deliveryrating",
    "shipments_apikey",
]


@pytest.mark.parametrize("changelist", BRAND_FILTERED)
def test_brand_filters_list_only_the_users_brands(agent_client, agent, brand, other_brand, theirs, changelist):
    # A filter of one brand is not shown at all; with two of their own, the
    # agent sees the filter, and B is not in it.
    third = Brand.objects.create(name="Third Ltd", slug="third")
    third.staff.add(agent)
    response = agent_client.get(reverse(f"admin:{changelist}_changelist"))
    assert response.status_code == 200
    brand_filters = [spec for spec in response.context["cl"].filter_specs if spec.title == "brand"]
    assert brand_filters, "the page has a brand filter"
    assert sorted(pk for pk, _ in brand_filters[0].lookup_choices) == sorted([brand.pk, third.pk])
    assert other_brand.name not in response.content.decode()


def test_brand_page_shows_no_users_and_staff_cannot_add_anyone(agent_client, agent, root, brand):
    url = reverse("admin:shipments_brand_change", args=[brand.pk])
    page = agent_client.get(url)
    html = page.content.decode()
    assert "staff" not in page.context["adminform"].form.fields
    assert "root@example.com" not in html and ">root<" not in html
    response = agent_client.post(url, change_form_data(page, staff=[str(root.pk)]))
    assert response.status_code == 302
    assert list(brand.staff.all()) == [agent]


def test_superusers_manage_staff(client, root, agent, brand):
    client.force_login(root)
    url = reverse("admin:shipments_brand_change", args=[brand.pk])
    page = client.get(url)
    assert "staff" in page.context["adminform"].form.fields
    client.post(url, change_form_data(page, staff=[str(agent.pk), str(root.pk)]))
    assert set(brand.staff.all()) == {agent, root}


def test_brand_staff_cannot_add_brands_or_see_others(agent_client, other_brand):
    assert agent_client.get(reverse("admin:shipments_brand_add")).status_code == 403
    assert agent_client.get(reverse("admin:shipments_brand_change", args=[other_brand.pk])).status_code == 302
    assert Brand.objects.count() == 2


SECRETS = {
    "webhook_secret": "whsec_WEBHOOKsecretVALUE0001",
    "webhook_previous_secret": "whsec_PREVIOUSsecretVALUE02",
    "inbound_webhook_secret": "whsec_INBOUNDsecretVALUE003",
    "easypost_webhook_secret": "EASYPOSTsecretVALUE0004",
    "aftership_webhook_secret": "AFTERSHIPsecretVALUE0005",
}


@pytest.fixture
def brand_with_secrets(brand):
    Brand.objects.filter(pk=brand.pk).update(**SECRETS)
    brand.refresh_from_db()
    return brand


@pytest.mark.parametrize("who", ["agent", "root"])
def test_secrets_are_masked_on_the_brand_page(client, agent, root, brand_with_secrets, who):
    client.force_login(agent if who == "agent" else root)
    page = client.get(reverse("admin:shipments_brand_change", args=[brand_with_secrets.pk]))
    html = page.content.decode()
    for secret in SECRETS.values():
        assert secret not in html
    assert "whsec_…0001" in html and "…0004" in html
    assert reverse("admin:shipments_brand_new_secret", args=[brand_with_secrets.pk, "webhook_secret"]) in html
    assert not set(SECRETS) & set(page.context["adminform"].form.fields)


@pytest.mark.parametrize("field", ["webhook_secret", "webhook_previous_secret", "aftership_webhook_secret"])
def test_a_masked_secret_cannot_be_read_back_by_filtering_the_list_on_it(agent_client, brand_with_secrets, field):
    # The attack: ?<secret>__startswith=<guess> shows the brand when the
    # guess is right, so a secret comes back a character at a time.
    secret = SECRETS[field]
    changelist = reverse("admin:shipments_brand_changelist")
    for lookup in (f"{field}__startswith", f"{field}__regex", f"{field}__gt", field):
        response = agent_client.get(changelist, {lookup: secret[:8]})
        assert response.status_code == 400, lookup
        assert brand_with_secrets.name not in response.content.decode()


def test_an_api_keys_hash_cannot_be_read_back_by_filtering(agent_client, brand):
    from shipments import keys

    api_key, _raw = keys.create_api_key(brand=brand, name="shop")
    response = agent_client.get(
        reverse("admin:shipments_apikey_changelist"), {"key_hash__startswith": api_key.key_hash[:4]}
    )
    assert response.status_code == 400


def test_posting_a_secret_in_the_form_changes_nothing(agent_client, brand_with_secrets):
    url = reverse("admin:shipments_brand_change", args=[brand_with_secrets.pk])
    data = change_form_data(agent_client.get(url), webhook_secret="whsec_chosen", aftership_webhook_secret="x")
    assert agent_client.post(url, data).status_code == 302
    brand_with_secrets.refresh_from_db()
    assert brand_with_secrets.webhook_secret == SECRETS["webhook_secret"]
    assert brand_with_secrets.aftership_webhook_secret == SECRETS["aftership_webhook_secret"]


def test_a_new_secret_is_shown_once(agent_client, brand_with_secrets):
    url = reverse("admin:shipments_brand_new_secret", args=[brand_with_secrets.pk, "webhook_secret"])
    asked = agent_client.get(url)  # a page that asks first, and changes nothing
    assert asked.status_code == 200
    brand_with_secrets.refresh_from_db()
    assert brand_with_secrets.webhook_secret == SECRETS["webhook_secret"]
    assert SECRETS["webhook_secret"] not in asked.content.decode()
    response = agent_client.post(url)
    assert response.status_code == 200
    brand_with_secrets.refresh_from_db()
    new = brand_with_secrets.webhook_secret
    assert new.startswith("whsec_") and new != SECRETS["webhook_secret"]
    assert brand_with_secrets.webhook_previous_secret == SECRETS["webhook_secret"]
    assert new in response.content.decode()
    assert "no-store" in response["Cache-Control"]
    assert not list(get_messages(response.wsgi_request))
    assert new not in str(dict(agent_client.session))
    page = agent_client.get(reverse("admin:shipments_brand_change", args=[brand_with_secrets.pk]))
    assert new not in page.content.decode()
    assert f"whsec_…{new[-4:]}" in page.content.decode()


def test_a_secret_without_a_previous_field_is_replaced(agent_client, brand_with_secrets):
    url = reverse("admin:shipments_brand_new_secret", args=[brand_with_secrets.pk, "aftership_webhook_secret"])
    response = agent_client.post(url)
    brand_with_secrets.refresh_from_db()
    assert brand_with_secrets.aftership_webhook_secret != SECRETS["aftership_webhook_secret"]
    assert brand_with_secrets.aftership_webhook_secret in response.content.decode()


def test_no_secret_of_another_brand_or_field_can_be_made(agent_client, brand, other_brand):
    assert (
        agent_client.post(
            reverse("admin:shipments_brand_new_secret", args=[other_brand.pk, "webhook_secret"])
        ).status_code
        == 404
    )
    assert agent_client.post(reverse("admin:shipments_brand_new_secret", args=[brand.pk, "name"])).status_code == 404


def test_the_rotation_action_shows_the_new_inbound_secret_once(agent_client, brand_with_secrets):
    response = agent_client.post(
        reverse("admin:shipments_brand_changelist"),
        {"action": "rotate_inbound_webhook_secret", "_selected_action": [str(brand_with_secrets.pk)]},
    )
    brand_with_secrets.refresh_from_db()
    assert brand_with_secrets.inbound_webhook_previous_secret == SECRETS["inbound_webhook_secret"]
    assert brand_with_secrets.inbound_webhook_secret in response.content.decode()
    assert not list(get_messages(response.wsgi_request))


def test_a_webhook_url_without_a_secret_gets_one_shown_once(agent_client, brand):
    url = reverse("admin:shipments_brand_change", args=[brand.pk])
    data = change_form_data(agent_client.get(url), webhook_url="http://127.0.0.1:9/hooks")
    response = agent_client.post(url, data)
    assert response.status_code == 200
    brand.refresh_from_db()
    assert brand.webhook_url == "http://127.0.0.1:9/hooks"
    assert brand.webhook_secret.startswith("whsec_")
    assert brand.webhook_secret in response.content.decode()


def test_the_shipment_page_shows_the_customers_instructions_and_notices(agent_client, make_shipment):
    shipment = make_shipment()
    make_shipment()  # one without instructions
    customer.leave_delivery_instructions(shipment_id=shipment.pk, instructions="Behind the blue gate")
    page = agent_client.get(reverse("admin:shipments_shipment_change", args=[shipment.pk]))
    html = page.content.decode()
    assert "Behind the blue gate" in html
    assert "delivery_instructions" not in page.context["adminform"].form.fields
    assert "Delivery instructions updated" in html  # the Notice row
    listed = agent_client.get(reverse("admin:shipments_shipment_changelist"), {"has_instructions": "yes"})
    assert list(listed.context["cl"].result_list) == [shipment]


def test_status_stays_read_only(agent_client, make_shipment):
    shipment = make_shipment()
    url = reverse("admin:shipments_shipment_change", args=[shipment.pk])
    data = change_form_data(agent_client.get(url), status="delivered", version="99")
    assert agent_client.post(url, data).status_code == 302
    shipment.refresh_from_db()
    assert shipment.status == "pending"


def test_brand_staff_cannot_rename_their_brand_to_look_like_another(agent_client, brand, other_brand):
    # The look-alike attack: rename A "Other Co", squat B's number, and the
    # look-up's "which company?" choice shows two identical buttons.
    url = reverse("admin:shipments_brand_change", args=[brand.pk])
    page = agent_client.get(url)
    assert "name" not in page.context["adminform"].form.fields
    assert "slug" not in page.context["adminform"].form.fields
    agent_client.post(url, change_form_data(page, name=other_brand.name, slug=other_brand.slug))
    brand.refresh_from_db()
    assert (brand.name, brand.slug) == ("Acme Parcels", "acme")


def test_no_two_brands_share_a_name_whatever_its_case(client, root, brand, other_brand):
    client.force_login(root)
    url = reverse("admin:shipments_brand_change", args=[brand.pk])
    response = client.post(url, change_form_data(client.get(url), name=other_brand.name.upper()))
    assert response.status_code == 200 and "Another brand already has this name." in response.content.decode()
    brand.refresh_from_db()
    assert brand.name == "Acme Parcels"
