"""Page views and support clicks, counted without a database write and
folded into it once: a fold run twice, or dying midway, neither loses a
count nor counts one twice. With Redis (REDIS_URL) the hand-over is the
RENAME and the batch id; without it, the in-process counters."""

import os

import pytest

from analytics import folding
from analytics.models import FoldedBatch, ParcelFacts
from pages import counting
from tracking_portal import counters
from tracking_portal.redis import forget_outages, shared_client

pytestmark = pytest.mark.django_db
needs_redis = pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="Redis only with REDIS_URL")


@pytest.fixture(autouse=True)
def clean_counters():
    client = shared_client()
    if client is not None:
        for key in [counters.LIVE_KEY, *client.scan_iter(match=counters.BATCH_PREFIX + "*")]:
            client.delete(key)
    counters.forget_local()
    yield
    counters.forget_local()


def views_of(shipment):
    facts = ParcelFacts.objects.filter(pk=shipment.pk).first()
    return (facts.page_views, facts.support_clicks) if facts else (0, 0)


def test_counts_fold_once(shipment):
    for _ in range(3):
        counting.count_view_of(shipment.public_token)
    counting.count_support_click(shipment.public_token)
    folding.fold_counts()
    folding.fold_counts()
    assert views_of(shipment) == (3, 1)


def test_tokens_of_no_parcel_are_dropped(shipment):
    counting.count_view_of("no-such-token")
    counting.count_view_of(shipment.public_token)
    folding.fold_counts()
    assert ParcelFacts.objects.count() == 1


def test_a_batch_applied_twice_counts_once(shipment):
    counts = {f"view:{shipment.public_token}": 2}
    assert folding.apply_batch("batch-1", counts) is True
    assert folding.apply_batch("batch-1", counts) is False
    assert views_of(shipment) == (2, 0)


def test_a_fold_that_fails_in_the_database_keeps_its_counts(shipment, monkeypatch):
    counting.count_view_of(shipment.public_token)

    def down(batch_id, counts):
        raise RuntimeError("database went away")

    with pytest.raises(RuntimeError):
        counters.take(down)
    counting.count_view_of(shipment.public_token)
    folding.fold_counts()
    assert views_of(shipment) == (2, 0)


@needs_redis
def test_a_fold_that_dies_after_writing_counts_nothing_twice(shipment, monkeypatch):
    client = shared_client()
    counting.count_view_of(shipment.public_token)
    real_delete = type(client).delete

    def dies(self, *keys):
        raise ConnectionResetError("killed before the batch key was deleted")

    monkeypatch.setattr(type(client), "delete", dies)
    with pytest.raises(ConnectionResetError):
        folding.fold_counts()
    monkeypatch.setattr(type(client), "delete", real_delete)
    assert list(client.scan_iter(match=counters.BATCH_PREFIX + "*"))  # left behind
    counting.count_view_of(shipment.public_token)  # a view meanwhile
    folding.fold_counts()
    assert views_of(shipment) == (2, 0)
    assert FoldedBatch.objects.count() == 2
    assert not list(client.scan_iter(match=counters.BATCH_PREFIX + "*"))


@needs_redis
def test_counting_writes_nothing_on_the_request_and_reaches_redis_within_the_flush(shipment, django_assert_num_queries):
    client = shared_client()
    with django_assert_num_queries(0):
        counting.count_view_of(shipment.public_token)
        counting.count_view_of(shipment.public_token)
    counters.flush()
    assert client.hget(counters.LIVE_KEY, f"view:{shipment.public_token}") == b"2"


@needs_redis
def test_counts_wait_in_the_process_while_redis_is_away(shipment, monkeypatch):
    import redis

    counting.count_view_of(shipment.public_token)

    def away(self, *args, **kwargs):
        raise redis.ConnectionError("away")

    monkeypatch.setattr(redis.client.Pipeline, "execute", away)
    with pytest.raises(redis.ConnectionError):
        counters.flush()
    monkeypatch.undo()
    forget_outages()
    folding.fold_counts()
    assert views_of(shipment) == (1, 0)
