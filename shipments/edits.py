"""Staff edits of what the tracking pages show: shipments, brands, routes;
and the one way any change a page shows is written.

Every change a page shows moves the shipment's version on and is announced
after commit (``signals.shipments_changed``), as an event is: open pages
refresh within a second and cached ones are thrown away. Every writer of
such a change (these edits, the customer's actions, proof of delivery, a
driver's route) goes through ``save_and_announce`` (one shipment) or
``bump_and_announce`` (many); only ``services.record_event``, the status
writer, moves the version in its own batched statement. The status is not
among what may be edited here; only ``services.record_event`` (and its staff
correction) writes it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence

from django.db import transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from . import embedding, keys, signals
from .links import with_working_link
from .models import Brand, Driver, Route, Shipment, Stop
from .routes import days_that_may_be_today

log = logging.getLogger(__name__)

# Fields that only the status rules write, or that name the shipment to the
# outside (its link, the API, the carriers).
NOT_EDITABLE = frozenset(
    {
        "id",
        "brand",
        "tracking_number",
        "public_token",
        "status",
        "substatus",
        "status_changed_at",
        "last_event_at",
        "delivered_at",
        "version",
        "created_at",
        "updated_at",
    }
)

# What a tracking page (or the widget framed on the brand's site) shows of
# its brand. Secrets, the webhook endpoint and staff show on no page.
BRAND_PAGE_FIELDS = frozenset(
    {
        "name",
        "slug",
        "logo_url",
        "logo",
        "primary_colour",
        "accent_colour",
        "support_email",
        "support_phone",
        "support_url",
        "default_language",
        "default_timezone",
        "embed_origins",
    }
)

# Secret fields, and where the one they replace goes, when it stays valid
# for a while (signatures made with it are still accepted).
BRAND_SECRETS = {
    "webhook_secret": "webhook_previous_secret",
    "inbound_webhook_secret": "inbound_webhook_previous_secret",
    "easypost_webhook_secret": "",
    "aftership_webhook_secret": "",
    # The widget's order links: the previous one verifies for a day
    # (shipments/embedding.py).
    "embed_secret": "embed_previous_secret",
}


class EditRefused(ValueError):
    """The edit would break a rule; the message says which."""


def save_and_announce(shipment: Shipment, fields: Iterable[str] = (), *, status: str | None = None) -> Shipment:
    """Write a change the shipment's page shows: within the caller's
    transaction, holding the shipment's row lock (so that ``version`` is the
    stored one), move the version on, save these fields with it and
    ``updated_at``, and announce the change after commit. ``status``: the
    stored status, when the instance may not hold it."""
    shipment.version += 1
    shipment.save(update_fields=list(dict.fromkeys([*fields, "version", "updated_at"])))
    current = shipment.status if status is None else status
    signals.announce_on_commit(
        Shipment,
        [
            signals.ShipmentChange(
                shipment.pk, shipment.version, token=shipment.public_token, old_status=current, status=current
            )
        ],
    )
    return shipment


def edit_shipment(*, shipment: Shipment, fields: Mapping[str, object], user=None) -> Shipment:
    """Set these fields of the shipment (ETA, window, recipient, destination,
    proof, ...), move its version on and announce it after commit. The
    status and what names the shipment are refused."""
    refused = set(fields) & NOT_EDITABLE
    if refused:
        raise EditRefused("Not editable here: " + ", ".join(sorted(refused)))
    with transaction.atomic():
        current = Shipment.objects.select_for_update().only("version", "status", "first_window_end").get(pk=shipment.pk)
        for name, value in fields.items():
            setattr(shipment, name, value)
        shipment.version = current.version
        saved = list(fields)
        if current.first_window_end is None and fields.get("promised_window_end"):
            # The first promise is kept for good; later windows don't replace it.
            shipment.first_window_end = fields["promised_window_end"]
            saved.append("first_window_end")
        save_and_announce(shipment, saved, status=current.status)
    _log_edit(user, "shipment", shipment.pk, fields)
    return shipment


def delete_shipment(*, shipment: Shipment, user=None) -> None:
    """Delete a shipment; its page stops at once and the parcels behind it
    on a route stop counting it."""
    with transaction.atomic():
        mates = Shipment.objects.filter(stops__route__stops__shipment=shipment).exclude(pk=shipment.pk)
        mate_ids = list(mates.values_list("pk", flat=True).distinct())
        token, status = shipment.public_token, shipment.status
        shipment_id, version = shipment.pk, shipment.version + 1
        shipment.delete()
        signals.announce_on_commit(
            Shipment, [signals.ShipmentChange(shipment_id, version, token=token, old_status=status, status=status)]
        )
        bump_and_announce(Shipment.objects.filter(pk__in=mate_ids), sender=Shipment)
    _log_edit(user, "shipment (deleted)", shipment_id, {})


# The portal's own estimate of a parcel (shipments.eta writes it, from the
# route the parcel is on).
COMPUTED_ETA_FIELDS = ("computed_eta", "computed_window_start", "computed_window_end", "computed_at", "computed_from")


def drop_computed_eta(shipment_ids: Iterable[int]) -> int:
    """Parcels taken off a route lose the estimate that route gave them:
    no van is bringing them any more, so the page and the API fall back to
    the brand's promise (a route they are put on recomputes theirs)."""
    return (
        Shipment.objects.filter(pk__in=list(shipment_ids), computed_eta__isnull=False)
        .exclude(stops__route__date__in=days_that_may_be_today())
        .update(**dict.fromkeys(COMPUTED_ETA_FIELDS))
    )


def bump_and_announce(queryset: QuerySet[Shipment], *, sender, times_only: bool = False) -> int:
    """Move the version of every shipment in the queryset on, in one UPDATE,
    and announce them all in one announcement after commit (``times_only``:
    what changed is only when they are expected)."""
    with transaction.atomic():
        ids = list(queryset.values_list("pk", flat=True))
        if not ids:
            return 0
        Shipment.objects.filter(pk__in=ids).update(version=F("version") + 1)
        rows = Shipment.objects.filter(pk__in=ids).values_list("pk", "version", "public_token", "status")
        signals.announce_on_commit(
            sender,
            [
                signals.ShipmentChange(
                    pk, version, token=token, old_status=status, status=status, times_only=times_only
                )
                for pk, version, token, status in rows
            ],
        )
    return len(ids)


def edit_brand(*, brand: Brand, fields: Iterable[str], user=None) -> Brand:
    """Save these fields of the brand. When one of them shows on the pages
    (name, logo, colours, support contact, ...), every live shipment of the
    brand moves its version on and is announced, so open and cached pages
    show the new look; expired links are left as they are."""
    fields = list(fields)
    with transaction.atomic():
        if brand.pk is None:
            brand.save()
        elif fields:
            brand.save(update_fields=fields)
        if BRAND_PAGE_FIELDS & set(fields):
            bump_and_announce(with_working_link(Shipment.objects.filter(brand=brand)), sender=Brand)
    _log_edit(user, "brand", brand.pk, fields)
    return brand


def rotate_brand_secret(*, brand: Brand, field: str, user=None) -> str:
    """Give the brand a new secret in this field and return it, the only
    time it is seen. Where the field has a previous one, the secret it
    replaces moves there and stays valid until the next rotation."""
    if field not in BRAND_SECRETS:
        raise EditRefused(f"{field} is not a secret of the brand.")
    new_secret = embedding.new_embed_secret() if field == "embed_secret" else keys.new_webhook_secret()
    with transaction.atomic():
        locked = Brand.objects.select_for_update().get(pk=brand.pk)
        update = [field]
        previous = BRAND_SECRETS[field]
        if previous:
            setattr(locked, previous, getattr(locked, field))
            update.append(previous)
        if field == "embed_secret":
            # The previous one's day of grace starts now.
            locked.embed_secret_rotated_at = timezone.now()
            update.append("embed_secret_rotated_at")
        setattr(locked, field, new_secret)
        locked.save(update_fields=update)
    for name in update:
        setattr(brand, name, getattr(locked, name))
    _log_edit(user, "brand secret", brand.pk, [field])
    return new_secret


def edit_driver(*, driver: Driver, fields: Iterable[str], user=None) -> Driver:
    """Save these fields of the driver and announce the live shipments on
    the driver's routes, whose pages show the driver."""
    fields = list(fields)
    with transaction.atomic():
        if driver.pk is None:
            driver.save()
        else:
            if fields:
                driver.save(update_fields=fields)
            bump_and_announce(
                with_working_link(Shipment.objects.filter(stops__route__driver=driver).distinct()), sender=Driver
            )
    _log_edit(user, "driver", driver.pk, fields)
    return driver


def check_stop_brand(route: Route, shipment: Shipment) -> None:
    """A stop's parcel belongs to the brand of the route's driver: a page
    shows the driver and the stops ahead of the brand's own parcel only."""
    if shipment.brand_id != route.driver.brand_id:
        raise EditRefused(f"{shipment} is not a parcel of {route.driver}'s brand.")


def edit_route_stops(*, route: Route, save: Sequence[Stop] = (), delete: Sequence[Stop] = (), user=None) -> Route:
    """Change a route's stops: delete these, then save these (new or
    changed), every one a parcel of the driver's brand, or nothing changes.
    The shipments on the route before and after are announced, as
    ``drivers.set_route`` does: their pages show the driver and the stops
    ahead."""
    with transaction.atomic():
        route = Route.objects.select_for_update().select_related("driver").get(pk=route.pk)
        for stop in save:
            check_stop_brand(route, stop.shipment)
        before = set(route.stops.values_list("shipment_id", flat=True))
        for stop in delete:
            stop.delete()
        for stop in save:
            stop.route = route
            stop.save()
        after = set(route.stops.values_list("shipment_id", flat=True))
        drop_computed_eta(before - after)
        bump_and_announce(Shipment.objects.filter(pk__in=before | after), sender=Route)
    _log_edit(user, "route stops", route.pk, [str(len(save)), str(len(delete))])
    return route


def delete_route(*, route: Route, user=None) -> None:
    """Delete a route; the parcels that were on it are announced."""
    with transaction.atomic():
        on_route = list(route.stops.values_list("shipment_id", flat=True))
        route_id = route.pk
        route.delete()
        drop_computed_eta(on_route)
        bump_and_announce(Shipment.objects.filter(pk__in=on_route), sender=Route)
    _log_edit(user, "route (deleted)", route_id, [])


def _log_edit(user, what: str, pk, fields) -> None:
    # The admin's own LogEntry says what changed for people; this says it
    # for whoever reads the logs of a page that changed unexpectedly.
    log.info("Staff edit of %s %s by %s: %s", what, pk, getattr(user, "pk", None), ", ".join(map(str, fields)))
