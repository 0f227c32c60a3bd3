"""The support admin: every page answers, search finds what staff type, and a
staff member sees only their own brands."""

import pytest
from django.apps import apps
from django.contrib.admin import site
from django.contrib.auth.models import Permission
from django.db import connection
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from shipments import services
from shipments.admin import normalise_phone_query
from shipments.models import DeliveryRating, Driver, Route, Stop, TrackingEvent
from tests.conftest import event

# Every shipments model registered in the admin, so a newly registered one is
# covered without touching this file.
MODELS = sorted(m._meta.model_name for m in apps.get_app_config("shipments").get_models() if site.is_registered(m))


@pytest.fixture
def staff_client(client, django_user_model, brand):
    user = django_user_model.objects.create_user("support", password="pw", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="shipments"))
    brand.staff.add(user)
    client.force_login(user)
    return client


@pytest.fixture
def populated(brand, make_shipment):
    shipment = make_shipment("LM100001", order_ref="ORD-1001")
    services.record_events(shipment_id=shipment.pk, events=[event("in_transit", 0), event("delivered", 30)])
    driver = Driver.objects.create(brand=brand, ref="drv-7", name="Sam")
    route = Route.objects.create(driver=driver, date="2026-11-26")
    Stop.objects.create(route=route, shipment=shipment, sequence=1)
    DeliveryRating.objects.create(shipment=shipment, score=5)
    return shipment


def registered_urls(model):
    urls = [reverse(f"admin:shipments_{model}_changelist")]
    model_admin = site.get_model_admin(apps.get_model("shipments", model))
    if _may_add(model_admin):
        urls.append(reverse(f"admin:shipments_{model}_add"))
    return urls


def _may_add(model_admin):
    request = RequestFactory().get("/")
    request.user = type("Superuser", (), {"is_active": True, "is_staff": True, "has_perm": lambda *a: True})()
    return model_admin.has_add_permission(request)


@pytest.mark.parametrize("model", MODELS)
def test_every_changelist_and_add_page_answers_for_a_superuser(admin_client, populated, model):
    for url in registered_urls(model):
        assert admin_client.get(url).status_code == 200, url


def test_every_change_page_answers_for_a_superuser(admin_client, populated):
    objects = {
        "brand": populated.brand,
        "shipment": populated,
        "trackingevent": populated.events.first(),
        "statuschange": populated.status_changes.first(),
        "driver": Driver.objects.get(),
        "route": Route.objects.get(),
        "deliveryrating": populated.rating,
    }
    for model, obj in objects.items():
        url = reverse(f"admin:shipments_{model}_change", args=[obj.pk])
        assert admin_client.get(url).status_code == 200, url


@pytest.mark.parametrize("model", MODELS)
def test_every_page_answers_for_brand_staff(staff_client, populated, model):
    for url in registered_urls(model):
        assert staff_client.get(url).status_code == 200, url


@pytest.mark.parametrize(
    "term", ["LM100001", "ORD-1001", "+447700900123", "07700 900123", "+44 7700-900123", "ada@example.com"]
)
def test_search_finds_the_shipment_by_what_staff_type(staff_client, populated, make_shipment, term):
    make_shipment("LM999999", order_ref="ORD-9", recipient_phone="+447700900999", recipient_email="x@example.com")
    response = staff_client.get(reverse("admin:shipments_shipment_changelist"), {"q": term})
    assert response.status_code == 200
    results = list(response.context["cl"].result_list)
    assert results == [populated]


def test_search_that_matches_nothing_answers_200_with_no_rows(staff_client, populated):
    response = staff_client.get(reverse("admin:shipments_shipment_changelist"), {"q": "no-such-thing"})
    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == []


def test_phone_query_normalisation():
    assert normalise_phone_query("07700 900123") == "+447700900123"
    assert normalise_phone_query("+1 (415) 555-2671") == "+14155552671"
    assert normalise_phone_query("LM100001") is None
    assert normalise_phone_query("ORD-1001") is None


def test_staff_never_see_another_brands_shipments(staff_client, populated, make_shipment, other_brand):
    theirs = make_shipment("LM100001", for_brand=other_brand)
    changelist = staff_client.get(reverse("admin:shipments_shipment_changelist"))
    assert list(changelist.context["cl"].result_list) == [populated]
    change = staff_client.get(reverse("admin:shipments_shipment_change", args=[theirs.pk]))
    assert change.status_code == 302  # the admin's answer for an object outside the queryset
    events = staff_client.get(reverse("admin:shipments_trackingevent_changelist"))
    assert all(e.shipment.brand_id == populated.brand_id for e in events.context["cl"].result_list)
    correct = staff_client.get(reverse("admin:shipments_shipment_correct", args=[theirs.pk]))
    assert correct.status_code == 404


def test_staff_pick_only_their_own_brand_when_adding(staff_client, brand, other_brand):
    form = staff_client.get(reverse("admin:shipments_shipment_add")).context["adminform"].form
    assert list(form.fields["brand"].queryset) == [brand]


def test_changelist_query_count_does_not_grow_with_rows(staff_client, brand, make_shipment):
    url = reverse("admin:shipments_shipment_changelist")

    def queries_for_page():
        with CaptureQueriesContext(connection) as ctx:
            assert staff_client.get(url).status_code == 200
        return len(ctx.captured_queries)

    make_shipment()
    few = queries_for_page()
    for _ in range(40):
        make_shipment()
    assert queries_for_page() == few


@pytest.mark.parametrize("model", ["shipment", "trackingevent", "statuschange", "route", "driver"])
def test_changelists_stay_within_a_fixed_query_budget(
    admin_client, brand, make_shipment, model, django_assert_max_num_queries
):
    driver = Driver.objects.create(brand=brand, ref="d")
    for n in range(30):
        shipment = make_shipment()
        services.record_events(shipment_id=shipment.pk, events=[event("in_transit", n), event("delivered", n + 1)])
        route = Route.objects.create(driver=driver, date=f"2026-10-{n % 28 + 1:02d}") if n < 28 else None
        if route:
            Stop.objects.create(route=route, shipment=shipment, sequence=1)
    with django_assert_max_num_queries(12):
        assert admin_client.get(reverse(f"admin:shipments_{model}_changelist")).status_code == 200


def test_shipment_change_page_query_count_does_not_grow_with_events(admin_client, shipment):
    url = reverse("admin:shipments_shipment_change", args=[shipment.pk])
    services.record_event(shipment_id=shipment.pk, event=event("in_transit", 0))
    with CaptureQueriesContext(connection) as few:
        admin_client.get(url)
    services.record_events(shipment_id=shipment.pk, events=[event("in_transit", n) for n in range(1, 40)])
    with CaptureQueriesContext(connection) as many:
        admin_client.get(url)
    assert len(many.captured_queries) == len(few.captured_queries)


def test_correcting_a_status_in_the_admin_is_audited(admin_client, admin_user, shipment):
    services.record_event(shipment_id=shipment.pk, event=event("delivered", 0))
    url = reverse("admin:shipments_shipment_correct", args=[shipment.pk])
    assert admin_client.get(url).status_code == 200
    response = admin_client.post(url, {"status": "out_for_delivery", "reason": "Left at the wrong door"})
    assert response.status_code == 302
    shipment.refresh_from_db()
    assert shipment.status == "out_for_delivery"
    correction = TrackingEvent.objects.get(shipment=shipment, is_correction=True)
    assert correction.corrected_by == admin_user
    assert correction.correction_reason == "Left at the wrong door"


def test_correction_form_rejects_a_missing_reason(admin_client, shipment):
    url = reverse("admin:shipments_shipment_correct", args=[shipment.pk])
    response = admin_client.post(url, {"status": "delivered", "reason": ""})
    assert response.status_code == 200
    assert response.context["form"].errors["reason"]
    shipment.refresh_from_db()
    assert shipment.status == "pending"
