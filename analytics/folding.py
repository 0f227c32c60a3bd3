"""The tracking page's counts (pages.counting, through
tracking_portal.counters) into the database: each batch once, whatever
dies midway (see tracking_portal.counters for the hand-over)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from shipments.models import Shipment
from tracking_portal import counters

from .models import FoldedBatch, ParcelFacts

# The counters' field names, "<what>:<token>" (pages.counting), and the
# ParcelFacts column each adds to.
COLUMNS = {"view": "page_views", "support": "support_clicks"}


def apply_batch(batch_id: str, counts: Mapping[str, int]) -> bool:
    """Write one batch and its id in one transaction; False, writing
    nothing, when the id was written before. Tokens that name no parcel (a
    deleted one) are dropped."""
    by_token: dict[str, Counter] = {}
    for name, amount in counts.items():
        what, _, token = name.partition(":")
        if what in COLUMNS and token and amount > 0:
            by_token.setdefault(token, Counter())[COLUMNS[what]] += amount
    try:
        with transaction.atomic():
            FoldedBatch.objects.create(id=batch_id)
            ids = dict(Shipment.objects.filter(public_token__in=list(by_token)).values_list("public_token", "pk"))
            now = timezone.now()
            ParcelFacts.objects.bulk_create(
                [ParcelFacts(shipment_id=pk) for pk in ids.values()], ignore_conflicts=True, batch_size=2000
            )
            for token, pk in ids.items():
                grow = {column: F(column) + amount for column, amount in by_token[token].items()}
                ParcelFacts.objects.filter(pk=pk).update(counts_changed_at=now, **grow)
    except IntegrityError:
        return False
    return True


def fold_counts() -> int:
    """Fold every counted view and click; returns the batches handed over."""
    return counters.take(apply_batch)
