"""A customer's report of a problem (shipments/customer.py report_problem)."""

import threading

import pytest
from django.db import connection
from django.utils import timezone

from shipments import alerts, customer, services
from shipments.choices import leave_address_note
from shipments.customer import ActionRefused, Reported, has_open_report, problems_for, report_problem
from shipments.models import Alert, Notice, NoticeKind, Shipment
from shipments.statuses import Status
from tests.conftest import event

pytestmark = pytest.mark.django_db(transaction=True)


def test_not_received_only_once_delivered():
    assert problems_for(Status.DELIVERED) == ("not_received", "damaged", "other")
    for status in Status:
        if status != Status.DELIVERED:
            assert "not_received" not in problems_for(status)
            assert problems_for(status) == ("damaged", "other")


def test_a_report_opens_one_customer_report_alert_with_its_outbox_row(shipment):
    version = Shipment.objects.get(pk=shipment.pk).version
    outcome = report_problem(shipment_id=shipment.pk, problem="damaged", text="  Corner torn  ")
    alert = outcome.alert
    assert outcome.result == Reported.OPENED and alert.kind == "customer_report" and alert.state == "open"
    assert alert.detail == {"problem": "damaged", "text": "  Corner torn  "}  # as given
    notice = Notice.objects.get(shipment=shipment, kind=NoticeKind.ALERT_OPENED)
    assert notice.data["kind"] == "customer_report" and notice.data["detail"] == alert.detail
    assert Shipment.objects.get(pk=shipment.pk).version > version


def test_a_second_report_while_one_is_open_is_already_and_adds_nothing(shipment):
    first = report_problem(shipment_id=shipment.pk, problem="damaged").alert
    version = Shipment.objects.get(pk=shipment.pk).version
    again = report_problem(shipment_id=shipment.pk, problem="other", text="more")
    assert again.result == Reported.ALREADY and again.alert == first
    assert list(Alert.objects.filter(shipment=shipment)) == [first]
    assert not first.activity.filter(action="note").exists()
    assert Shipment.objects.get(pk=shipment.pk).version == version
    assert Notice.objects.filter(shipment=shipment, kind=NoticeKind.ALERT_OPENED).count() == 1


def test_not_received_before_delivery_is_refused(shipment):
    with pytest.raises(ActionRefused, match="not_delivered_yet"):
        report_problem(shipment_id=shipment.pk, problem="not_received")
    assert not Alert.objects.exists()
    services.record_event(shipment_id=shipment.pk, event=event("delivered"))
    assert report_problem(shipment_id=shipment.pk, problem="not_received").result == Reported.OPENED


@pytest.mark.parametrize(
    ("problem", "text"), [("lost", ""), ("", ""), ("damaged", "x" * (customer.REPORT_TEXT_MAX_LENGTH + 1))]
)
def test_what_the_form_would_refuse_is_refused_here_too(shipment, problem, text):
    with pytest.raises(ValueError, match=r"problem|characters"):
        report_problem(shipment_id=shipment.pk, problem=problem, text=text)
    assert not Alert.objects.exists()


def test_the_longest_text_is_kept(shipment):
    text = "y" * customer.REPORT_TEXT_MAX_LENGTH
    assert report_problem(shipment_id=shipment.pk, problem="other", text=text).alert.detail["text"] == text


@pytest.mark.skipif(connection.vendor != "postgresql", reason="concurrent writers need PostgreSQL")
def test_two_reports_at_once_open_one_alert(shipment):
    results, errors = [], []
    start = threading.Barrier(2)

    def send(problem):
        try:
            start.wait()
            results.append(report_problem(shipment_id=shipment.pk, problem=problem))
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=send, args=(problem,)) for problem in ("damaged", "other")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(outcome.result for outcome in results) == [Reported.ALREADY, Reported.OPENED]
    assert Alert.objects.filter(shipment=shipment, kind="customer_report", state="open").count() == 1


def noted_then_delivered(shipment, note="Flat 3 is round the back"):
    """A parcel whose customer sent an address note on the way (an open
    customer_report alert), then delivered."""
    services.record_event(shipment_id=shipment.pk, event=event("in_transit"))
    assert leave_address_note(shipment_id=shipment.pk, text=note)
    services.record_event(shipment_id=shipment.pk, event=event("delivered", 30))
    (alert,) = Alert.objects.filter(shipment=shipment, kind="customer_report", state="open")
    return alert


@pytest.mark.parametrize("problem", ["not_received", "damaged"])
def test_a_report_after_an_address_note_goes_on_the_open_alert_with_its_own_trail_line(shipment, problem):
    noted = noted_then_delivered(shipment)
    assert not has_open_report(shipment.pk)
    version = Shipment.objects.get(pk=shipment.pk).version
    outcome = report_problem(shipment_id=shipment.pk, problem=problem, text="Nothing here")
    assert outcome.result == Reported.ADDED and outcome.alert == noted
    # One open alert per (shipment, kind): the same one, still open.
    assert list(Alert.objects.filter(shipment=shipment, kind="customer_report")) == [noted]
    line = noted.activity.get(action="note", data__problem=problem)
    assert line.text == "Nothing here" and line.user is None
    assert has_open_report(shipment.pk)
    assert Shipment.objects.get(pk=shipment.pk).version > version


def test_the_same_report_again_after_an_address_note_is_already_and_adds_nothing(shipment):
    noted = noted_then_delivered(shipment)
    report_problem(shipment_id=shipment.pk, problem="damaged", text="Corner torn")
    lines = noted.activity.count()
    version = Shipment.objects.get(pk=shipment.pk).version
    again = report_problem(shipment_id=shipment.pk, problem="damaged", text="Corner torn")
    assert again.result == Reported.ALREADY
    assert noted.activity.count() == lines
    assert Shipment.objects.get(pk=shipment.pk).version == version


def test_an_address_note_alone_is_no_report_and_a_resolved_report_is_none(shipment):
    noted = noted_then_delivered(shipment)
    assert not has_open_report(shipment.pk)
    report_problem(shipment_id=shipment.pk, problem="damaged")
    assert has_open_report(shipment.pk)
    alerts.resolve_alert(alert=noted, now=timezone.now(), reason="customer_contacted")
    assert not has_open_report(shipment.pk)
