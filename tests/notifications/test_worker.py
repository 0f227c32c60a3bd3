"""Real Celery workers against the real Redis and PostgreSQL.

These start worker processes of their own, kill them with SIGKILL and point
the broker at a closed port, so they run only where DATABASE_URL is
PostgreSQL and REDIS_URL is set (as .ci/run does) and skip on SQLite.
"""

import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.conf import settings
from django.db import connection

from notifications import rules, tasks
from notifications.models import BrandNotificationSettings, Notification, State, WebhookAttempt
from shipments import services as shipment_services
from shipments.models import NoticeKind, StatusChange
from tracking_portal.celery import app as celery_app

from ..conftest import event
from .conftest import free_port

BASE_DIR = Path(settings.BASE_DIR)
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

pytestmark = [
    pytest.mark.skipif(
        not (settings.REDIS_URL and settings.DATABASES["default"]["ENGINE"].endswith("postgresql")),
        reason="needs a real Redis and PostgreSQL (set REDIS_URL and DATABASE_URL, as .ci/run does)",
    ),
    pytest.mark.django_db(transaction=True),
]


def wait_for(condition, timeout=30.0, every=0.05, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(every)
    raise AssertionError(f"Timed out after {timeout}s waiting for {what}.")


class Endpoint:
    """A brand's webhook endpoint on 127.0.0.1. While ``hang`` is set, a
    request is recorded and then left without an answer, as if the network
    stalled mid-send."""

    def __init__(self):
        self.received: list[dict] = []
        self.hang = threading.Event()
        self.release = threading.Event()
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["content-length"]))
                endpoint.received.append({"id": self.headers["webhook-id"], "body": body, "at": time.time()})
                if endpoint.hang.is_set():
                    endpoint.release.wait(60)
                    return
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.port}/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


class Workers:
    """Celery worker processes that see this test's database."""

    def __init__(self, tmp_path):
        self.tmp_path = tmp_path
        self.processes: list[subprocess.Popen] = []

    def env(self, **extra):
        database = urlsplit(os.environ["DATABASE_URL"])
        test_database = urlunsplit(database._replace(path="/" + connection.settings_dict["NAME"]))
        return {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tracking_portal.settings",
            "DATABASE_URL": test_database,
            "DATABASE_POOL_MIN": "1",
            "DATABASE_POOL_MAX": "4",
            "REDIS_URL": settings.REDIS_URL,
            "SMS_BACKEND": "console",
            "LOG_LEVEL": "INFO",
            **extra,
        }

    def start(self, name, **extra) -> subprocess.Popen:
        log = open(self.tmp_path / f"{name}.log", "w")  # noqa: SIM115 - closed with the process
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "tracking_portal",
                "worker",
                "--pool",
                "prefork",
                "--concurrency",
                "2",
                "--without-heartbeat",
                "--without-gossip",
                "--without-mingle",
                "--loglevel",
                "INFO",
                "--hostname",
                f"{name}-{uuid.uuid4().hex[:6]}@%h",
            ],
            cwd=BASE_DIR,
            env=self.env(**extra),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.processes.append(process)
        wait_for(lambda: "ready." in self.log(name), timeout=30, what=f"worker {name} to start")
        return process

    def log(self, name) -> str:
        return (self.tmp_path / f"{name}.log").read_text()

    @staticmethod
    def kill(process: subprocess.Popen) -> None:
        """SIGKILL the whole worker: its main process and its children."""
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)

    def stop_all(self):
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    self.kill(process)


@pytest.fixture
def workers(tmp_path, transactional_db):
    # Tasks that other tests left on the queue with no worker to run them
    # belong to rows that no longer exist; drop them so they don't queue
    # ahead of this test's work.
    tasks.publisher.flush()
    celery_app.control.purge()
    started = Workers(tmp_path)
    yield started
    started.stop_all()


@pytest.fixture
def endpoint():
    served = Endpoint()
    yield served
    served.close()


@pytest.fixture
def webhook_brand(brand, endpoint):
    brand.webhook_url, brand.webhook_secret = endpoint.url, SECRET
    brand.save()
    # These scans are dated days before the wall clock, so the workers'
    # alert evaluation opens `stuck` alerts for them: their webhooks are not
    # what these tests count.
    BrandNotificationSettings.objects.create(
        brand=brand, sms_statuses=[], email_statuses=[], webhook_notices=[NoticeKind.INSTRUCTIONS_UPDATED.value]
    )
    return brand


def test_a_worker_killed_mid_send_loses_nothing(workers, endpoint, webhook_brand, make_shipment):
    """The claim is a lease: when the worker that holds it dies, the lease
    runs out and another worker sends the notification."""
    shipment = make_shipment()
    endpoint.hang.set()
    first = workers.start("first", NOTIFICATION_LEASE_SECONDS="3")

    shipment_services.record_event(shipment_id=shipment.pk, event=event("out_for_delivery", 1))
    wait_for(lambda: endpoint.received, what="the first worker's POST")
    notification = Notification.objects.get(shipment=shipment)
    assert notification.state == State.SENDING

    first_lease_until = notification.lease_until.timestamp()

    workers.kill(first)
    endpoint.hang.clear()
    # The dead worker's claim holds until its lease runs out: a send task
    # delivered before then claims nothing, one after it (or the sweep) sends.
    tasks.enqueue_sends([notification.pk])
    second = workers.start("second", NOTIFICATION_LEASE_SECONDS="3", NOTIFICATION_SWEEP_GRACE_SECONDS="1")
    wait_for(lambda: time.time() > first_lease_until, what="lease expiry")
    tasks.sweep_task.delay()
    wait_for(lambda: Notification.objects.get(pk=notification.pk).state == State.SENT, what="the resend")

    notification.refresh_from_db()
    assert notification.attempts == 2
    assert [r["id"] for r in endpoint.received] == [f"msg_notification_{notification.pk}"] * 2
    assert endpoint.received[1]["at"] >= first_lease_until, "resent while the dead worker's lease still held"
    # The attempt is logged just after the result is recorded, outside the
    # duplicate window.
    wait_for(lambda: WebhookAttempt.objects.filter(notification=notification).exists(), what="the attempt log")
    assert list(WebhookAttempt.objects.filter(notification=notification).values_list("succeeded", "status_code")) == [
        (True, 200)
    ]

    # Delivered twice more, by the sweep and by a duplicate task: no new send.
    tasks.enqueue_sends([notification.pk, notification.pk])
    tasks.sweep_task.delay()
    time.sleep(2)
    assert len(endpoint.received) == 2
    assert second.poll() is None


def test_redis_down_while_events_are_recorded_loses_nothing_and_sends_nothing_twice(
    workers, endpoint, webhook_brand, brand, make_shipment, settings, caplog
):
    BrandNotificationSettings.objects.filter(brand=brand).update(
        sms_statuses=["out_for_delivery", "delivered"], email_statuses=[]
    )
    shipments = [make_shipment(recipient_phone=f"+4477009{n:05d}") for n in range(12)]

    closed_port = free_port()
    real_broker = celery_app.conf.broker_url
    try:
        point_broker_at(f"redis://127.0.0.1:{closed_port}/0")
        for n, shipment in enumerate(shipments):
            status = "delivered" if n % 2 else "out_for_delivery"
            shipment_services.record_event(shipment_id=shipment.pk, event=event(status, 1))
        tasks.publisher.flush()  # what the publisher thread had not sent yet meets the outage too
    finally:
        point_broker_at(real_broker)

    changes = StatusChange.objects.filter(shipment__in=shipments)
    assert changes.count() == 12
    assert not changes.exclude(processed_at=None).exists()
    assert not Notification.objects.exists()
    assert "the sweep will pick them up" in caplog.text

    workers.start("after-outage", NOTIFICATION_SWEEP_GRACE_SECONDS="0")
    # Two sweeps racing each other, as two beat ticks might.
    tasks.sweep_task.delay()
    tasks.sweep_task.delay()
    wait_for(
        lambda: Notification.objects.count() == 24 and not Notification.objects.exclude(state=State.SENT).exists(),
        what="every notification to be sent",
    )
    tasks.sweep_task.delay()
    time.sleep(2)

    webhook_ids = Counter(r["id"] for r in endpoint.received)
    assert len(webhook_ids) == 12
    assert set(webhook_ids.values()) == {1}
    # The console transport prints each SMS; the worker logs its output.
    phones = Counter(re.findall(r"--- SMS to (\+\d+) ", workers.log("after-outage")))
    assert sorted(phones) == sorted(s.recipient_phone for s in shipments)
    assert set(phones.values()) == {1}
    assert not changes.filter(processed_at=None).exists()


def point_broker_at(url: str) -> None:
    """Send this process's tasks to another broker; the pools are rebuilt
    on next use."""
    celery_app.conf.broker_url = url
    celery_app.conf.broker_write_url = url
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


def resent_by_a_second_worker(workers, notification, first_lease_until: float, **env) -> None:
    """Start a second worker, let the dead one's lease run out, sweep, and
    wait for the notification to be sent."""
    workers.start("second", NOTIFICATION_SWEEP_GRACE_SECONDS="1", **env)
    wait_for(lambda: time.time() > first_lease_until, what="lease expiry")
    tasks.sweep_task.delay()
    wait_for(lambda: Notification.objects.get(pk=notification.pk).state == State.SENT, what="the resend")


def planned_again_and_swept(notice) -> None:
    """A redelivered planning task and another sweep, given time to send
    anything they would (they should send nothing new)."""
    tasks.enqueue_notice_plans([notice.pk])
    tasks.sweep_task.delay()
    time.sleep(2)


def test_a_notice_s_webhook_survives_a_killed_worker_and_is_sent_once_more_only(
    workers, endpoint, webhook_brand, make_shipment, settings
):
    """Delivery instructions: planned by a real worker from the Notice the
    page's change wrote, its send cut off by SIGKILL, resent by the sweep
    once the lease ran out, and never again after that."""
    from shipments import customer
    from shipments.models import Notice

    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = True
    shipment = make_shipment()
    endpoint.hang.set()
    first = workers.start("first", NOTIFICATION_LEASE_SECONDS="3", WEBHOOK_ALLOW_PRIVATE_NETWORKS="true")

    customer.leave_delivery_instructions(shipment_id=shipment.pk, instructions="Behind the blue gate")
    wait_for(lambda: endpoint.received, what="the first worker's POST")
    notice = Notice.objects.get(shipment=shipment)
    notification = Notification.objects.get(notice=notice)
    assert notification.state == State.SENDING and notice.processed_at is not None
    first_lease_until = notification.lease_until.timestamp()

    workers.kill(first)
    endpoint.hang.clear()
    resent_by_a_second_worker(
        workers, notification, first_lease_until, NOTIFICATION_LEASE_SECONDS="3", WEBHOOK_ALLOW_PRIVATE_NETWORKS="true"
    )
    planned_again_and_swept(notice)
    assert [r["id"] for r in endpoint.received] == [f"msg_notification_{notification.pk}"] * 2
    assert endpoint.received[0]["body"] == endpoint.received[1]["body"]
    assert b"Behind the blue gate" in endpoint.received[1]["body"]
    assert Notification.objects.filter(notice=notice).count() == 1


def test_an_alert_s_messages_survive_a_killed_worker_each_sent_once_and_the_webhook_resent_under_its_id(
    workers, endpoint, brand, make_shipment, settings
):
    """A late alert opens: a real worker plans the customer's SMS and email
    and the brand's webhook from its Notice and sends them together; it is
    SIGKILLed with the webhook in flight. The customer's messages,
    recorded as sent, are never sent again (by the sweep, a redelivered
    planning task or the next worker); the webhook is resent once its
    lease runs out, under the same webhook-id."""
    from datetime import timedelta

    from django.utils import timezone

    from shipments import alerts
    from shipments.alert_rules import AlertKind
    from shipments.models import Notice

    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = True
    brand.webhook_url, brand.webhook_secret = endpoint.url, SECRET
    brand.save()
    BrandNotificationSettings.objects.create(
        brand=brand, webhook_notices=[NoticeKind.ALERT_OPENED.value, NoticeKind.ALERT_RESOLVED.value]
    )
    # A zone where it is day now: quiet hours would hold the SMS, and this
    # test is about the send.
    zone = next(z for z in ("UTC", "Pacific/Auckland") if not rules.in_quiet_hours(timezone.now(), z))
    shipment = make_shipment(recipient_phone="+447700900555", recipient_timezone=zone)
    endpoint.hang.set()
    worker_env = {"NOTIFICATION_LEASE_SECONDS": "3", "WEBHOOK_ALLOW_PRIVATE_NETWORKS": "true"}
    first = workers.start("first", **worker_env)

    now = timezone.now()
    alerts.open_alert(
        shipment=shipment,
        kind=AlertKind.LATE,
        now=now,
        detail={"window_end": (now - timedelta(hours=1)).isoformat(), "eta": (now + timedelta(hours=2)).isoformat()},
    )
    wait_for(lambda: endpoint.received, what="the first worker's webhook POST")
    notice = Notice.objects.get(shipment=shipment, kind=NoticeKind.ALERT_OPENED)

    def states():
        return dict(Notification.objects.filter(notice=notice).values_list("channel", "state"))

    # Sent beside the webhook, and recorded as they came back.
    wait_for(lambda: states() == {"sms": State.SENT, "email": State.SENT, "webhook": State.SENDING},
             what="the SMS and the email recorded as sent")  # fmt: skip
    webhook = Notification.objects.get(notice=notice, channel="webhook")
    first_lease_until = webhook.lease_until.timestamp()

    workers.kill(first)
    endpoint.hang.clear()
    resent_by_a_second_worker(workers, webhook, first_lease_until, **worker_env)
    planned_again_and_swept(notice)
    logs = workers.log("first") + workers.log("second")
    assert re.findall(r"--- SMS to (\+\d+) ", logs) == ["+447700900555"]
    assert logs.count("Subject: Your parcel is running late") == 1
    assert [r["id"] for r in endpoint.received] == [f"msg_notification_{webhook.pk}"] * 2
    assert endpoint.received[0]["body"] == endpoint.received[1]["body"]
    assert Notification.objects.filter(notice=notice).count() == 3
    assert set(Notification.objects.filter(notice=notice).values_list("state", flat=True)) == {State.SENT}


def test_a_worker_killed_mid_sms_loses_none_of_an_alert_s_messages(workers, endpoint, brand, make_shipment, tmp_path):
    """The same, with the worker killed while the provider holds the SMS:
    the email and the webhook, claimed with it and sent beside it, are
    sent once; the SMS, whose fate the dead worker never learned, is tried
    again by the next worker once its lease runs out."""

    from django.utils import timezone

    from shipments import alerts
    from shipments.alert_rules import AlertKind
    from shipments.models import Notice

    brand.webhook_url, brand.webhook_secret = endpoint.url, SECRET
    brand.save()
    BrandNotificationSettings.objects.create(brand=brand, webhook_notices=[NoticeKind.ALERT_OPENED.value])
    zone = next(z for z in ("UTC", "Pacific/Auckland") if not rules.in_quiet_hours(timezone.now(), z))
    shipment = make_shipment(recipient_phone="+447700900556", recipient_timezone=zone)
    hang = tmp_path / "hang-sms"
    hang.touch()
    worker_env = {
        "NOTIFICATION_LEASE_SECONDS": "3",
        "WEBHOOK_ALLOW_PRIVATE_NETWORKS": "true",
        "SMS_BACKEND": "tests.notifications.hanging_sms.HangingSmsTransport",
        "HANG_SMS_FILE": str(hang),
    }
    first = workers.start("first", **worker_env)

    alerts.open_alert(shipment=shipment, kind=AlertKind.MISSED_SCAN, now=timezone.now(), detail={})
    wait_for(lambda: "--- SMS asked for" in workers.log("first"), what="the first worker's SMS")
    notice = Notice.objects.get(shipment=shipment, kind=NoticeKind.ALERT_OPENED)

    def states():
        return dict(Notification.objects.filter(notice=notice).values_list("channel", "state"))

    wait_for(lambda: states() == {"sms": State.SENDING, "email": State.SENT, "webhook": State.SENT},
             what="the email and the webhook sent beside the hanging SMS")  # fmt: skip
    by_channel = {n.channel: n for n in Notification.objects.filter(notice=notice)}
    first_lease_until = by_channel["sms"].lease_until.timestamp()

    workers.kill(first)
    hang.unlink()
    resent_by_a_second_worker(workers, by_channel["sms"], first_lease_until, **worker_env)
    wait_for(
        lambda: set(Notification.objects.filter(notice=notice).values_list("state", flat=True)) == {State.SENT},
        what="every message to be sent",
    )
    planned_again_and_swept(notice)

    logs = workers.log("first") + workers.log("second")
    assert re.findall(r"--- SMS asked for (\+\d+)", logs) == ["+447700900556"] * 2
    assert re.findall(r"--- SMS to (\+\d+) ", logs) == ["+447700900556"]
    assert logs.count("Subject: We're checking on your parcel") == 1
    assert [r["id"] for r in endpoint.received] == [f"msg_notification_{by_channel['webhook'].pk}"]
    assert Notification.objects.get(pk=by_channel["sms"].pk).attempts == 2
