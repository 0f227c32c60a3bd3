"""Staff edits reach the pages as events do: through the real admin, each
page-visible change moves the version on and is announced after commit."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from shipments import edits, services, signals
from shipments.models import Driver, EventSource, Route, Shipment, Stop
from shipments.services import NewEvent

from .admin_helpers import add_inline_form, change_form_data


@pytest.fixture
def announced():
    """Every ShipmentChange announced, in order."""
    changes_seen = []

    def receiver(sender, changes, **kwargs):
        changes_seen.extend(changes)

    signals.shipments_changed.connect(receiver, dispatch_uid="test-edits")
    yield changes_seen
    signals.shipments_changed.disconnect(dispatch_uid="test-edits")


def versions(*shipments):
    return {s.pk: Shipment.objects.get(pk=s.pk).version for s in shipments}


def test_an_admin_edit_of_the_eta_is_announced_after_commit_and_shown(
    agent_client, shipment, announced, django_capture_on_commit_callbacks
):
    url = reverse("admin:shipments_shipment_change", args=[shipment.pk])
    before = shipment.version
    # Tomorrow: the page never shows a time gone by as still to come.
    day = (timezone.now() + timedelta(days=1)).date()
    eta = datetime(day.year, day.month, day.day, 10, 30, tzinfo=UTC)
    # The page is rendered (and, with Redis, cached) before the edit.
    assert f"{day:%Y-%m-%d}T10:30" not in agent_client.get(shipment.get_absolute_url()).content.decode()
    data = change_form_data(agent_client.get(url), eta_0=f"{day:%Y-%m-%d}", eta_1="10:30:00")
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        assert agent_client.post(url, data).status_code == 302
        assert announced == []  # not before the commit
    assert callbacks
    shipment.refresh_from_db()
    assert shipment.eta == eta
    assert shipment.version == before + 1
    assert [(c.shipment_id, c.version) for c in announced] == [(shipment.pk, before + 1)]
    page = agent_client.get(shipment.get_absolute_url()).content.decode()
    assert f'datetime="{eta.isoformat()}"' in page


def test_a_window_and_recipient_edit_is_one_announcement(
    agent_client, shipment, announced, django_capture_on_commit_callbacks
):
    url = reverse("admin:shipments_shipment_change", args=[shipment.pk])
    data = change_form_data(
        agent_client.get(url),
        promised_window_start_0="2026-12-03",
        promised_window_start_1="09:00:00",
        promised_window_end_0="2026-12-03",
        promised_window_end_1="13:00:00",
        recipient_name="Grace Hopper",
    )
    with django_capture_on_commit_callbacks(execute=True):
        agent_client.post(url, data)
    shipment.refresh_from_db()
    assert shipment.recipient_name == "Grace Hopper"
    assert [c.shipment_id for c in announced] == [shipment.pk]
    assert "Grace" in agent_client.get(shipment.get_absolute_url()).content.decode()


def test_the_status_cannot_be_edited_here(shipment):
    with pytest.raises(edits.EditRefused):
        edits.edit_shipment(shipment=shipment, fields={"status": "delivered"})
    shipment.refresh_from_db()
    assert shipment.status == "pending"


def delivered(at):
    return NewEvent(status="delivered", occurred_at=at, source=EventSource.API, external_id=f"delivered-{at:%s}")


@pytest.fixture
def brand_parcels(brand, make_shipment, other_brand):
    """A live parcel, one delivered a day ago, one whose link expired, and
    another brand's."""
    live = make_shipment()
    recent = make_shipment()
    services.record_event(shipment_id=recent.pk, event=delivered(timezone.now() - timedelta(days=1)))
    expired = make_shipment()
    long_ago = timezone.now() - timedelta(days=40)
    with time_machine.travel(long_ago, tick=False):
        services.record_event(shipment_id=expired.pk, event=delivered(long_ago))
    theirs = make_shipment(for_brand=other_brand)
    return live, recent, expired, theirs


def test_a_brand_rename_announces_its_live_shipments_only(
    client, django_user_model, brand, brand_parcels, announced, django_capture_on_commit_callbacks
):
    # Renaming is for superusers (brand staff could make theirs look like
    # another brand on the look-up's choice).
    client.force_login(django_user_model.objects.create_superuser("root", "root@example.com", "pw"))
    live, recent, expired, theirs = brand_parcels
    before = versions(*brand_parcels)
    url = reverse("admin:shipments_brand_change", args=[brand.pk])
    data = change_form_data(client.get(url), name="Acme Renamed")
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(url, data).status_code == 302
    after = versions(*brand_parcels)
    assert {c.shipment_id for c in announced} == {live.pk, recent.pk}
    assert after[live.pk] == before[live.pk] + 1 and after[recent.pk] == before[recent.pk] + 1
    assert after[expired.pk] == before[expired.pk] and after[theirs.pk] == before[theirs.pk]
    assert "Acme Renamed" in client.get(live.get_absolute_url()).content.decode()


def test_a_brand_edit_no_page_shows_announces_nothing(
    brand, brand_parcels, announced, django_capture_on_commit_callbacks
):
    brand.webhook_url = "http://127.0.0.1:9/hooks"
    with django_capture_on_commit_callbacks(execute=True):
        edits.edit_brand(brand=brand, fields=["webhook_url"])
    assert announced == []


def test_a_brand_edit_costs_the_same_queries_for_many_shipments(
    brand, make_shipment, django_capture_on_commit_callbacks
):
    def queries():
        brand.primary_colour = "#123456"
        with CaptureQueriesContext(connection) as ctx:
            edits.edit_brand(brand=brand, fields=["primary_colour"])
        return len(ctx.captured_queries)

    make_shipment()
    few = queries()
    for _ in range(25):
        make_shipment()
    assert queries() == few


@pytest.fixture
def route(brand, make_shipment):
    driver = Driver.objects.create(brand=brand, ref="drv-a")
    route = Route.objects.create(driver=driver, date=timezone.now().date())
    first, second = make_shipment(), make_shipment()
    Stop.objects.create(route=route, shipment=first, sequence=1)
    Stop.objects.create(route=route, shipment=second, sequence=2)
    return route, first, second


def test_a_stop_change_announces_the_shipments_that_were_and_are_on_the_route(
    agent_client, route, make_shipment, announced, django_capture_on_commit_callbacks
):
    route, first, second = route
    third = make_shipment()
    before = versions(first, second, third)
    url = reverse("admin:shipments_route_change", args=[route.pk])
    data = change_form_data(agent_client.get(url))
    data["stops-0-DELETE"] = "on"  # the first stop goes
    add_inline_form(data, "stops", sequence="3", shipment=str(third.pk), completed_at_0="", completed_at_1="")
    with django_capture_on_commit_callbacks(execute=True):
        assert agent_client.post(url, data).status_code == 302
    assert list(route.stops.values_list("shipment_id", flat=True)) == [second.pk, third.pk]
    assert {c.shipment_id for c in announced} == {first.pk, second.pk, third.pk}
    after = versions(first, second, third)
    assert all(after[pk] == before[pk] + 1 for pk in before)


def test_deleting_a_route_announces_its_parcels(agent_client, route, announced, django_capture_on_commit_callbacks):
    route, first, second = route
    url = reverse("admin:shipments_route_delete", args=[route.pk])
    with django_capture_on_commit_callbacks(execute=True):
        assert agent_client.post(url, {"post": "yes"}).status_code == 302
    assert not Route.objects.filter(pk=route.pk).exists()
    assert {c.shipment_id for c in announced} == {first.pk, second.pk}


def test_the_service_refuses_another_brands_parcel_on_a_route(route, other_brand, make_shipment):
    route = route[0]
    theirs = make_shipment(for_brand=other_brand)
    with pytest.raises(edits.EditRefused):
        edits.edit_route_stops(route=route, save=[Stop(route=route, shipment=theirs, sequence=3)])
    assert not Stop.objects.filter(shipment=theirs).exists()


def test_save_and_announce_moves_the_version_saves_and_announces_after_commit(
    shipment, announced, django_capture_on_commit_callbacks
):
    from django.db import transaction

    before = shipment.version
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        locked = Shipment.objects.select_for_update().get(pk=shipment.pk)
        locked.recipient_name = "Grace Hopper"
        locked.destination_city = "not saved: not named"
        edits.save_and_announce(locked, ["recipient_name"])
        assert announced == []
    stored = Shipment.objects.get(pk=shipment.pk)
    assert (stored.version, stored.recipient_name, stored.destination_city) == (
        before + 1,
        "Grace Hopper",
        shipment.destination_city,
    )
    assert stored.updated_at >= shipment.updated_at
    assert announced == [
        signals.ShipmentChange(
            shipment.pk, before + 1, token=shipment.public_token, old_status=shipment.status, status=shipment.status
        )
    ]


def test_a_posted_route_moves_the_versions_of_its_parcels_as_a_staff_edit_does(
    brand, make_shipment, announced, django_capture_on_commit_callbacks
):
    from shipments import drivers

    first, second, third = make_shipment(), make_shipment(), make_shipment()
    day = timezone.localdate()
    drivers.set_route(brand=brand, driver_ref="d1", date=day, tracking_numbers=[first.tracking_number])
    before = versions(first, second, third)
    with django_capture_on_commit_callbacks(execute=True):
        drivers.set_route(
            brand=brand, driver_ref="d1", date=day, tracking_numbers=[second.tracking_number, third.tracking_number]
        )
    after = versions(first, second, third)
    assert {pk: after[pk] - before[pk] for pk in before} == {first.pk: 1, second.pk: 1, third.pk: 1}
    assert {c.shipment_id: c.version for c in announced} == after
