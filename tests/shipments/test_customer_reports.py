"""A customer's report of a problem (shipments/customer.py report_problem)."""

import threading

import pytest
from django.db import connection

from shipments import customer, services
from shipments.customer import ActionRefused, problems_for, report_problem
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
    alert = report_problem(shipment_id=shipment.pk, problem="damaged", text="  Corner torn  ")
    assert alert is not None and alert.kind == "customer_report" and alert.state == "open"
    assert alert.detail == {"problem": "damaged", "text": "  Corner torn  "}  # as given
    notice = Notice.objects.get(shipment=shipment, kind=NoticeKind.ALERT_OPENED)
    assert notice.data["kind"] == "customer_report" and notice.data["detail"] == alert.detail
    assert Shipment.objects.get(pk=shipment.pk).version > version


def test_a_second_report_while_one_is_open_is_none_and_adds_nothing(shipment):
    first = report_problem(shipment_id=shipment.pk, problem="damaged")
    assert report_problem(shipment_id=shipment.pk, problem="other", text="more") is None
    assert list(Alert.objects.filter(shipment=shipment)) == [first]
    assert Notice.objects.filter(shipment=shipment, kind=NoticeKind.ALERT_OPENED).count() == 1


def test_not_received_before_delivery_is_refused(shipment):
    with pytest.raises(ActionRefused, match="not_delivered_yet"):
        report_problem(shipment_id=shipment.pk, problem="not_received")
    assert not Alert.objects.exists()
    services.record_event(shipment_id=shipment.pk, event=event("delivered"))
    assert report_problem(shipment_id=shipment.pk, problem="not_received") is not None


@pytest.mark.parametrize(
    ("problem", "text"), [("lost", ""), ("", ""), ("damaged", "x" * (customer.REPORT_TEXT_MAX_LENGTH + 1))]
)
def test_what_the_form_would_refuse_is_refused_here_too(shipment, problem, text):
    with pytest.raises(ValueError, match=r"problem|characters"):
        report_problem(shipment_id=shipment.pk, problem=problem, text=text)
    assert not Alert.objects.exists()


def test_the_longest_text_is_kept(shipment):
    text = "y" * customer.REPORT_TEXT_MAX_LENGTH
    assert report_problem(shipment_id=shipment.pk, problem="other", text=text).detail["text"] == text


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
    assert sorted(result is None for result in results) == [False, True]
    assert Alert.objects.filter(shipment=shipment, kind="customer_report", state="open").count() == 1
