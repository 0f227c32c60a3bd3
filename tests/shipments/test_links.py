"""When a tracking link stops working (shipments/links.py), for one shipment
and as a query, which must agree."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from shipments.links import is_expired, link_expires_at, with_working_link
from shipments.models import Shipment
from shipments.statuses import Status

pytestmark = pytest.mark.django_db

DAYS = timedelta(days=settings.TRACKING_LINK_DAYS_AFTER_DELIVERY)


def test_a_journey_that_goes_on_never_expires(shipment):
    assert link_expires_at(shipment) is None
    assert not is_expired(shipment)


@pytest.mark.parametrize(
    ("delivered", "changed", "expected_from"),
    [(True, True, "delivered_at"), (False, True, "status_changed_at"), (False, False, "updated_at")],
)
def test_the_link_ends_some_days_after_the_journey_ended(shipment, delivered, changed, expected_from):
    long_ago = timezone.now() - DAYS - timedelta(hours=1)
    Shipment.objects.filter(pk=shipment.pk).update(
        status=Status.DELIVERED,
        delivered_at=long_ago if delivered else None,
        status_changed_at=long_ago - timedelta(hours=1) if changed else None,
    )
    shipment.refresh_from_db()
    assert link_expires_at(shipment) == getattr(shipment, expected_from) + DAYS
    assert is_expired(shipment) == (expected_from != "updated_at")
    working = with_working_link(Shipment.objects.filter(pk=shipment.pk)).exists()
    assert working == (not is_expired(shipment))
