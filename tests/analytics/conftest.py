"""A day of one brand's deliveries whose figures are known (Europe/Paris,
UTC+1 in November; D is 2026-11-26 there):

| parcel | 1st window end | events (UTC, on D unless said)          | day | on time | 1st att. | OFD min | rating |
| A | 13:00             | OFD 08:00, delivered 10:00                     | D   | yes | yes | 120 | 5 |
| B | 11:00 (then 15:00)| OFD 11:30, delivered 12:00                     | D   | no  | yes | 30  | - |
| C | 13:00             | OFD 08:00, failed 09:00, OFD 10:00, del. 10:45 | D   | yes | no  | 45  | 3 |
| D | none              | OFD 22:00, delivered 22:30 (23:30 in Paris)    | D   | -   | yes | 30  | - |
| E | none              | OFD 23:00, delivered 23:30 (00:30 on D+1)      | D+1 | -   | yes | 30  | - |
| F | none              | created 12:00, not delivered                   | D   | -   | -   | -   | - |

Drivers: A and B on drv-1's route, C on drv-2's, D, E, F on none.
Carriers: A, B acme-fleet; the others other-carrier.
"""

import datetime as dt

import pytest

from analytics import rollup
from notifications.models import Notification
from notifications.models import State as NotificationState
from shipments import edits, services
from shipments.alert_models import ActivityAction, Alert, AlertActivity
from shipments.models import DeliveryRating, Driver, Route, Shipment, StatusChange, Stop
from shipments.services import NewEvent
from tests.shipments.conftest import api, other_api  # noqa: F401 (the API tests' key fixtures)
from tracking_portal import counters

D = dt.date(2026, 11, 26)


def at(hour, minute=0, day=D):
    return dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=dt.UTC)


def record(shipment, status, moment, external_id=None):
    services.record_event(
        shipment_id=shipment.pk,
        event=NewEvent(status=status, occurred_at=moment, external_id=external_id or f"{status}-{moment:%H%M}"),
    )


@pytest.fixture(autouse=True)
def counters_forgotten():
    counters.forget_local()
    yield
    counters.forget_local()


@pytest.fixture
def day_of_deliveries(brand, make_shipment):
    brand.default_timezone = "Europe/Paris"
    brand.save()
    parcels = {}
    parcels["A"] = make_shipment("A", carrier="acme-fleet", promised_window_start=at(9), promised_window_end=at(13))
    parcels["B"] = make_shipment("B", carrier="acme-fleet", promised_window_start=at(9), promised_window_end=at(11))
    # A second promise replaces the first: on-time still reads the first.
    edits.edit_shipment(shipment=parcels["B"], fields={"promised_window_end": at(15)})
    parcels["C"] = make_shipment("C", carrier="other-carrier", promised_window_start=at(9), promised_window_end=at(13))
    parcels["D"] = make_shipment("D", carrier="other-carrier")
    parcels["E"] = make_shipment("E", carrier="other-carrier")
    parcels["F"] = make_shipment("F", carrier="other-carrier")
    Shipment.objects.filter(pk=parcels["F"].pk).update(created_at=at(12))
    # The others were created "now"; they count on their delivery day.

    record(parcels["A"], "out_for_delivery", at(8))
    record(parcels["A"], "delivered", at(10))
    record(parcels["B"], "out_for_delivery", at(11, 30))
    record(parcels["B"], "delivered", at(12))
    record(parcels["C"], "out_for_delivery", at(8))
    record(parcels["C"], "failed_attempt", at(9))
    record(parcels["C"], "out_for_delivery", at(10), external_id="ofd-2")
    record(parcels["C"], "delivered", at(10, 45))
    record(parcels["D"], "out_for_delivery", at(22))
    record(parcels["D"], "delivered", at(22, 30))
    record(parcels["E"], "out_for_delivery", at(23))
    record(parcels["E"], "delivered", at(23, 30))

    for ref, names in (("drv-1", "AB"), ("drv-2", "C")):
        route = Route.objects.create(driver=Driver.objects.create(brand=brand, ref=ref), date=D)
        for sequence, name in enumerate(names, 1):
            Stop.objects.create(route=route, shipment=parcels[name], sequence=sequence)

    DeliveryRating.objects.create(shipment=parcels["A"], score=5)
    DeliveryRating.objects.create(shipment=parcels["C"], score=3)

    # Only the alerts and messages of the table: what the rules and the
    # planner made on their own is not what these tests count.
    Alert.objects.all().delete()
    Notification.objects.all().delete()
    late = Alert.objects.create(shipment=parcels["B"], kind="late", opened_at=at(11))
    Alert.objects.create(shipment=parcels["C"], kind="failed_no_retry", opened_at=at(9, 30), state="resolved")
    stuck = Alert.objects.create(shipment=parcels["C"], kind="stuck", opened_at=at(9, 40))
    AlertActivity.objects.create(alert=stuck, action=ActivityAction.CONTACTED)
    AlertActivity.objects.create(alert=late, action=ActivityAction.NOTE)
    change = StatusChange.objects.filter(shipment=parcels["A"]).first()
    for recipient, state in enumerate(
        [NotificationState.DELIVERED, NotificationState.SENT, NotificationState.FAILED, NotificationState.QUEUED]
    ):
        Notification.objects.create(
            status_change=change,
            shipment=parcels["A"],
            channel="sms",
            recipient=f"+4477009001{recipient:02d}",
            state=state,
        )
    return parcels


@pytest.fixture
def rolled_up(day_of_deliveries):
    rollup.refresh()
    return day_of_deliveries
