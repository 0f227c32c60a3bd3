"""Alerts' one writer (shipments/alerts.py): one open alert per kind under
repeated evaluation, the outbox through the real planner, the receiver
after events and beat's task under a replayed clock; each brand's own
thresholds, the audit trail, the reasons resolve_alert takes, two
evaluators at once."""

import os
import threading
from datetime import timedelta

import pytest
import time_machine
from django.db import IntegrityError, connection, transaction
from standardwebhooks.webhooks import Webhook

from shipments import alerts, tasks
from shipments import services as shipment_services
from shipments.alert_models import ActivityAction, BrandAlertSettings, Resolution
from shipments.models import Alert, AlertActivity, AlertState, Notice, NoticeKind, Shipment

from ..conftest import T0, event
from ..notifications.conftest import eager_celery  # noqa: F401 (a fixture)
from ..notifications.test_notices import SECRET, endpoint, local_webhooks  # noqa: F401 (fixtures)

HOUR = timedelta(hours=1)
SECOND = timedelta(seconds=1)


def record(shipment, status, minutes=0, **kw):
    return shipment_services.record_event(shipment_id=shipment.pk, event=event(status, minutes, **kw))


def open_kinds(shipment):
    return set(Alert.objects.filter(shipment=shipment, state=AlertState.OPEN).values_list("kind", flat=True))


def test_stuck_opens_once_however_often_it_is_evaluated(shipment):
    record(shipment, "in_transit")
    version = Shipment.objects.get(pk=shipment.pk).version
    for _ in range(3):
        alerts.evaluate_alerts(shipment_ids=[shipment.pk], now=T0 + 25 * HOUR)
    assert open_kinds(shipment) == {"stuck"}
    assert Notice.objects.filter(shipment=shipment, kind=NoticeKind.ALERT_OPENED).count() == 1
    assert Shipment.objects.get(pk=shipment.pk).version == version + 1
    alert = Alert.objects.get(shipment=shipment)
    assert alert.opened_at == T0 + 25 * HOUR
    assert alert.detail == {"status": "in_transit", "last_event_at": T0.isoformat()}


def test_just_under_the_limit_nothing_opens(shipment):
    record(shipment, "out_for_delivery")
    assert alerts.evaluate_alerts(shipment_ids=[shipment.pk], now=T0 + 4 * HOUR) == (0, 0)
    assert alerts.evaluate_alerts(shipment_ids=[shipment.pk], now=T0 + 4 * HOUR + timedelta(seconds=1)) == (1, 0)


def test_a_new_event_resolves_stuck_and_a_later_one_can_open_it_again(shipment):
    record(shipment, "in_transit")
    alerts.evaluate_alerts(shipment_ids=[shipment.pk], now=T0 + 25 * HOUR)
    record(shipment, "out_for_delivery", 25 * 60)
    assert alerts.evaluate_alerts(shipment_ids=[shipment.pk], now=T0 + 26 * HOUR) == (0, 1)
    assert alerts.evaluate_alerts(shipment_ids=[shipment.pk], now=T0 + 30 * HOUR) == (1, 0)
    assert Alert.objects.filter(shipment=shipment, kind="stuck").count() == 2
    assert open_kinds(shipment) == {"stuck"}


def test_late_failed_no_retry_exception_and_delivered_away(make_shipment):
    late = make_shipment(promised_window_end=T0 + HOUR)
    record(late, "out_for_delivery")
    failed = make_shipment()
    record(failed, "failed_attempt")
    broken = make_shipment()
    record(broken, "exception")
    away = make_shipment()
    record(away, "delivered", location_lat=51.52, location_lng=-0.1276)
    near = make_shipment()
    record(near, "delivered", location_lat=51.5035, location_lng=-0.1276)
    ids = [s.pk for s in (late, failed, broken, away, near)]
    alerts.evaluate_alerts(shipment_ids=ids, now=T0 + 2 * HOUR)
    assert open_kinds(late) == {"late"}
    assert open_kinds(failed) == set()
    assert open_kinds(broken) == {"carrier_exception"}
    assert open_kinds(away) == {"delivered_away"}
    assert open_kinds(near) == set()
    alerts.evaluate_alerts(shipment_ids=ids, now=T0 + 25 * HOUR)
    assert open_kinds(failed) == {"failed_no_retry"}
    # Delivered: late resolves, delivered_away stays for staff.
    record(late, "delivered", 26 * 60)
    record(broken, "in_transit", 26 * 60)
    alerts.evaluate_alerts(shipment_ids=ids, now=T0 + 27 * HOUR)
    assert open_kinds(late) == set()
    assert open_kinds(broken) == set()
    assert open_kinds(away) == {"delivered_away"}


def test_open_and_resolve_are_idempotent(shipment):
    first = alerts.open_alert(shipment=shipment, kind="customer_report", now=T0, detail={"what": "damaged"})
    assert alerts.open_alert(shipment=shipment, kind="customer_report", now=T0 + HOUR) is None
    assert alerts.resolve_alert(alert=first, now=T0 + HOUR, reason="refunded")
    assert not alerts.resolve_alert(alert=first, now=T0 + 2 * HOUR)
    first.refresh_from_db()
    assert (first.state, first.resolved_at, first.resolution) == (AlertState.RESOLVED, T0 + HOUR, "refunded")
    kinds = list(Notice.objects.filter(shipment=shipment).values_list("kind", flat=True))
    assert kinds == [NoticeKind.ALERT_OPENED, NoticeKind.ALERT_RESOLVED]


def test_the_database_refuses_a_second_open_alert_of_a_kind(shipment):
    Alert.objects.create(shipment=shipment, kind="late", opened_at=T0)
    Alert.objects.create(shipment=shipment, kind="late", opened_at=T0, state=AlertState.RESOLVED)
    with pytest.raises(IntegrityError), transaction.atomic():
        Alert.objects.create(shipment=shipment, kind="late", opened_at=T0)


def test_one_opened_and_one_resolved_webhook_per_alert_through_the_planner(
    shipment,
    endpoint,  # noqa: F811
    eager_celery,  # noqa: F811
    django_capture_on_commit_callbacks,
):
    # Recorded without its after-commit work: only beat will see it.
    record(shipment, "in_transit")
    with time_machine.travel(T0 + 25 * HOUR, tick=False):
        for _ in range(2):
            with django_capture_on_commit_callbacks(execute=True):
                tasks.evaluate_alerts_task.apply()
        with django_capture_on_commit_callbacks(execute=True):
            record(shipment, "out_for_delivery", 25 * 60)
        with django_capture_on_commit_callbacks(execute=True):
            tasks.evaluate_alerts_task.apply()
        payloads = [Webhook(SECRET).verify(body, headers) for _path, headers, body in endpoint.received]
    alert_payloads = [p for p in payloads if p["type"].startswith("shipment.alert_")]
    assert [p["type"] for p in alert_payloads] == ["shipment.alert_opened", "shipment.alert_resolved"]
    opened, resolved = (p["data"] for p in alert_payloads)
    assert opened["kind"] == resolved["kind"] == "stuck"
    assert opened["tracking_number"] == shipment.tracking_number
    assert opened["opened_at"] == resolved["opened_at"] == (T0 + 25 * HOUR).isoformat()
    assert opened["resolved_at"] is None
    assert resolved["resolved_at"] == (T0 + 25 * HOUR).isoformat()
    assert opened["detail"] == {"status": "in_transit", "last_event_at": T0.isoformat()}


def test_an_event_opens_an_alert_after_commit(
    shipment,
    django_capture_on_commit_callbacks,
    eager_celery,  # noqa: F811
):
    with django_capture_on_commit_callbacks(execute=True):
        record(shipment, "exception")
    assert open_kinds(shipment) == {"carrier_exception"}


def test_a_failing_evaluation_never_reaches_the_request(
    shipment,
    monkeypatch,
    django_capture_on_commit_callbacks,
    eager_celery,  # noqa: F811
):
    def broken(**kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(alerts, "evaluate_alerts", broken)
    with django_capture_on_commit_callbacks(execute=True):
        record(shipment, "exception")
    assert Shipment.objects.get(pk=shipment.pk).status == "exception"
    assert not Alert.objects.exists()


def test_beat_evaluates_the_shipments_time_can_change_under_a_replayed_clock(make_shipment):
    moving = make_shipment()
    record(moving, "in_transit")
    done = make_shipment(promised_window_end=T0 + HOUR)
    record(done, "delivered")
    with time_machine.travel(T0 + 25 * HOUR, tick=False):
        assert tasks.evaluate_alerts_task.apply().get() == (1, 0)
    replayed = Alert.objects.get()
    # What a live evaluation at that moment opens, the replay opened.
    assert (replayed.shipment_id, replayed.kind, replayed.opened_at) == (moving.pk, "stuck", T0 + 25 * HOUR)
    live = make_shipment()
    record(live, "in_transit")
    alerts.evaluate_alerts(shipment_ids=[live.pk], now=T0 + 25 * HOUR)
    assert Alert.objects.get(shipment=live).opened_at == replayed.opened_at


def test_evaluation_reads_a_bounded_number_of_queries(make_shipment, django_assert_max_num_queries):
    ids = []
    for _ in range(20):
        s = make_shipment()
        record(s, "in_transit")
        ids.append(s.pk)
    # Per batch: the shipments, their brands' thresholds, open alerts, the
    # alerts, notices and audit rows written, the versions moved on.
    with django_assert_max_num_queries(13):
        assert alerts.evaluate_alerts(shipment_ids=ids, now=T0 + 25 * HOUR) == (20, 0)


def test_a_brands_own_limit_opens_just_over_it_and_another_brand_keeps_the_default(brand, other_brand, make_shipment):
    BrandAlertSettings.objects.create(brand=brand, stuck_out_for_delivery_hours=2)
    mine = make_shipment()
    theirs = make_shipment(for_brand=other_brand)
    record(mine, "out_for_delivery")
    record(theirs, "out_for_delivery")
    ids = [mine.pk, theirs.pk]
    assert alerts.evaluate_alerts(shipment_ids=ids, now=T0 + 2 * HOUR - SECOND) == (0, 0)
    assert alerts.evaluate_alerts(shipment_ids=ids, now=T0 + 2 * HOUR + SECOND) == (1, 0)
    assert open_kinds(mine) == {"stuck"}
    assert open_kinds(theirs) == set()
    assert alerts.evaluate_alerts(shipment_ids=ids, now=T0 + 4 * HOUR + SECOND) == (1, 0)
    assert open_kinds(theirs) == {"stuck"}


def test_a_brands_own_failed_attempt_and_delivered_away_limits(brand, make_shipment):
    BrandAlertSettings.objects.create(brand=brand, failed_no_retry_hours=3, delivered_away_m=1000)
    failed = make_shipment()
    record(failed, "failed_attempt")
    away = make_shipment()
    record(away, "delivered", location_lat=51.512, location_lng=-0.1276)  # 956 m north
    farther = make_shipment()
    record(farther, "delivered", location_lat=51.513, location_lng=-0.1276)  # 1,067 m north
    ids = [failed.pk, away.pk, farther.pk]
    alerts.evaluate_alerts(shipment_ids=ids, now=T0 + 3 * HOUR)
    assert open_kinds(failed) == set()
    assert open_kinds(away) == set()
    assert open_kinds(farther) == {"delivered_away"}
    alerts.evaluate_alerts(shipment_ids=ids, now=T0 + 3 * HOUR + SECOND)
    assert open_kinds(failed) == {"failed_no_retry"}


def test_the_rules_leave_an_audit_trail(shipment):
    record(shipment, "in_transit")
    alerts.evaluate_alerts(shipment_ids=[shipment.pk], now=T0 + 25 * HOUR)
    record(shipment, "out_for_delivery", 25 * 60)
    alerts.evaluate_alerts(shipment_ids=[shipment.pk], now=T0 + 26 * HOUR)
    alert = Alert.objects.get(shipment=shipment)
    assert (alert.resolution, alert.resolved_by) == (Resolution.RULE, None)
    trail = list(AlertActivity.objects.filter(alert=alert).values_list("action", "user", "at", "data"))
    assert trail == [
        (ActivityAction.OPENED, None, T0 + 25 * HOUR, {}),
        (ActivityAction.RESOLVED, None, T0 + 26 * HOUR, {"reason": Resolution.RULE}),
    ]


def test_resolving_by_staff_names_them_their_reason_and_note(shipment, django_user_model):
    agent = django_user_model.objects.create_user(username="agent", password="x", is_staff=True)
    alert = alerts.open_alert(shipment=shipment, kind="customer_report", now=T0)
    assert alerts.resolve_alert(
        alert=alert, now=T0 + HOUR, user=agent, reason=Resolution.REFUNDED, note="Sent a new one."
    )
    row = AlertActivity.objects.get(alert=alert, action=ActivityAction.RESOLVED)
    assert (row.user, row.text, row.data, row.at) == (agent, "Sent a new one.", {"reason": "refunded"}, T0 + HOUR)
    opened = AlertActivity.objects.get(alert=alert, action=ActivityAction.OPENED)
    assert (opened.user, opened.at) == (None, T0)
    # Resolving again writes nothing more.
    assert not alerts.resolve_alert(alert=alert, now=T0 + 2 * HOUR, user=agent, reason=Resolution.OTHER)
    assert AlertActivity.objects.filter(alert=alert).count() == 2


@pytest.mark.parametrize("reason", ["", "bogus", "RULE", None])
def test_resolve_refuses_a_reason_it_does_not_know(shipment, reason):
    alert = alerts.open_alert(shipment=shipment, kind="customer_report", now=T0)
    with pytest.raises(ValueError):
        alerts.resolve_alert(alert=alert, now=T0 + HOUR, reason=reason)
    alert.refresh_from_db()
    assert alert.state == AlertState.OPEN
    assert not Notice.objects.filter(shipment=shipment, kind=NoticeKind.ALERT_RESOLVED).exists()


def test_beat_resolves_what_the_evaluation_after_a_scan_missed(make_shipment):
    late = make_shipment(promised_window_end=T0 + HOUR)
    record(late, "out_for_delivery")
    alerts.evaluate_open_shipments(now=T0 + 2 * HOUR)
    assert open_kinds(late) == {"late"}
    # Delivered (terminal), its own evaluation lost: beat still closes it.
    record(late, "delivered", 3 * 60)
    assert alerts.evaluate_open_shipments(now=T0 + 4 * HOUR) == (0, 1)
    assert open_kinds(late) == set()


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(not os.environ.get("DATABASE_URL", "").startswith("postgres"), reason="row locks need PostgreSQL")
def test_two_evaluators_at_once_open_one_alert_per_kind(make_shipment):
    shipments = [make_shipment() for _ in range(30)]
    for s in shipments:
        record(s, "exception")
    ids = [s.pk for s in shipments]
    barrier = threading.Barrier(2)
    results, errors = [], []

    def evaluate(order):
        try:
            barrier.wait()
            results.append(alerts.evaluate_alerts(shipment_ids=order, now=T0 + 25 * HOUR))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=evaluate, args=(order,)) for order in (ids, list(reversed(ids)))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sum(opened for opened, _ in results) == 30
    assert Alert.objects.filter(state=AlertState.OPEN, kind="carrier_exception").count() == 30
    assert Notice.objects.filter(kind=NoticeKind.ALERT_OPENED).count() == 30
