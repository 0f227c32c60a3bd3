"""The customer reports a problem from the tracking page (pages/tracking.py
``report``, on the uncached actions page): a customer_report alert, one open
at a time, rate limited, nothing of it leaked."""

import datetime as dt
import re

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from pages.tracking import REPORT_ADDRESS_LIMIT, REPORT_LINK_LIMIT
from shipments import alerts, services
from shipments.models import Alert, Notice, NoticeKind, Shipment
from tests.conftest import event

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fresh_limits")]

PASSED_ON = "We passed your report to the support team at Acme Parcels. They will be in touch."
ALREADY = "You have already reported a problem with this parcel."
SECRETS = ("Example Street", "SW1A", "+447700900123", "ada@example.com", "Lovelace")


def report_url(shipment) -> str:
    return shipment.get_absolute_url() + "report/"


def actions_page(client, shipment, **headers) -> str:
    return client.get(shipment.get_absolute_url() + "actions/", HTTP_ACCEPT_LANGUAGE="en", **headers).content.decode()


def report(client, shipment, problem="damaged", text="", address="10.9.0.1", **data):
    return client.post(
        report_url(shipment),
        {"problem": problem, "text": text, **data},
        HTTP_ACCEPT_LANGUAGE="en",
        REMOTE_ADDR=address,
    )


def open_reports(shipment):
    return list(Alert.objects.filter(shipment=shipment, kind="customer_report", state="open"))


def delivered(shipment):
    services.record_event(shipment_id=shipment.pk, event=event("delivered"))
    return Shipment.objects.get(pk=shipment.pk)


def offered_problems(html: str) -> list[str]:
    return re.findall(r'<input type="radio" name="problem" value="([a-z_]+)" id="problem-\1"', html)


def test_the_form_is_a_real_form_with_labels_and_a_csrf_token(shipment):
    client = Client(enforce_csrf_checks=True)
    html = actions_page(client, shipment)
    form = re.search(r'<section id="report".*?</section>', html, re.S).group(0)
    assert f'<form method="post" action="{report_url(shipment)}"' in form
    assert 'name="csrfmiddlewaretoken"' in form
    assert "<legend>What is wrong?</legend>" in form
    for value in offered_problems(form):
        assert f'<label for="problem-{value}">' in form
    assert '<label for="id_report_text">' in form and 'maxlength="500"' in form
    assert '<button type="submit">Send to support</button>' in form


def test_not_received_is_offered_only_once_delivered(client, shipment):
    assert offered_problems(actions_page(client, shipment)) == ["damaged", "other"]
    shipment = delivered(shipment)
    assert offered_problems(actions_page(client, shipment)) == ["not_received", "damaged", "other"]


def test_the_htmx_forms_carry_the_report_form(client, shipment):
    html = actions_page(client, shipment, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="actions")
    assert "<html" not in html and 'action="' + report_url(shipment) + '"' in html


def test_the_tracking_page_links_to_the_form_without_holding_one(client, shipment):
    html = client.get(shipment.get_absolute_url(), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert f'href="{shipment.get_absolute_url()}actions/#report">Report a problem</a>' in html
    assert "<form" not in html


def test_a_report_opens_a_customer_report_alert_and_the_page_says_support_has_it(client, shipment):
    shipment = delivered(shipment)
    before = Shipment.objects.get(pk=shipment.pk).version
    response = report(client, shipment, "not_received", "Nothing at the door, nothing with the neighbours.")
    assert response.status_code == 303 and response["Location"] == shipment.get_absolute_url() + "#report"
    (alert,) = open_reports(shipment)
    assert alert.detail == {"problem": "not_received", "text": "Nothing at the door, nothing with the neighbours."}
    assert Notice.objects.filter(shipment=shipment, kind=NoticeKind.ALERT_OPENED).count() == 1
    # The page shows it (live pages refresh on the version).
    assert Shipment.objects.get(pk=shipment.pk).version > before
    page = client.get(shipment.get_absolute_url(), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert PASSED_ON in page and "Report a problem</a>" not in page
    html = actions_page(client, shipment)
    assert PASSED_ON in html and 'name="problem"' not in html


def test_a_second_report_while_one_is_open_adds_nothing_and_says_so(client, shipment):
    assert report(client, shipment, "damaged", "Box crushed").status_code == 303
    again = report(client, shipment, "other", "Also this")
    assert again.status_code == 200
    html = again.content.decode()
    assert ALREADY in html and "will be in touch" in html and 'role="alert"' not in html
    (alert,) = open_reports(shipment)
    assert alert.detail == {"problem": "damaged", "text": "Box crushed"}
    assert Notice.objects.filter(shipment=shipment, kind=NoticeKind.ALERT_OPENED).count() == 1


def test_once_staff_resolve_it_the_customer_can_report_again(client, shipment):
    report(client, shipment)
    (alert,) = open_reports(shipment)
    alerts.resolve_alert(alert=alert, now=timezone.now(), reason="customer_contacted")
    assert 'name="problem"' in actions_page(client, shipment)
    assert report(client, shipment, "other", "It happened again").status_code == 303
    assert Alert.objects.filter(shipment=shipment, kind="customer_report").count() == 2


def test_the_slot_reloads_the_forms_when_a_report_opens(client, shipment):
    def state():
        html = client.get(shipment.get_absolute_url(), HTTP_ACCEPT_LANGUAGE="en").content.decode()
        return re.search(r'data-actions="([^"]*)"', html).group(1)

    before = state()
    report(client, shipment)
    assert state() != before


@pytest.mark.parametrize(
    "data",
    [
        {"problem": "exploded"},
        {"problem": ""},
        {"problem": "not_received"},  # not offered before delivery
        {"problem": ["damaged", "<script>"]},
    ],
    ids=["unknown", "missing", "not yet delivered", "two values"],
)
def test_a_bad_choice_is_a_form_error(client, shipment, data):
    response = client.post(report_url(shipment), {"text": "x", **data}, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 400
    html = response.content.decode()
    assert 'id="problem-error"' in html and 'aria-invalid="true"' in html
    assert "<script>" not in html
    assert open_reports(shipment) == []


def test_text_up_to_500_characters_and_a_clear_error_beyond(client, shipment):
    too_long = report(client, shipment, text="x" * 501)
    assert too_long.status_code == 400
    assert "at most 500 characters (it has 501)" in too_long.content.decode()
    assert 'id="report-text-error"' in too_long.content.decode()
    assert open_reports(shipment) == []
    assert report(client, shipment, text="x" * 500).status_code == 303
    assert open_reports(shipment)[0].detail["text"] == "x" * 500


def test_a_browsers_line_breaks_count_as_one_character_each(client, shipment):
    # 250 lines in a textarea whose maxlength is 500: the browser sends CRLF.
    text = "\r\n".join(["x"] * 250) + "y" * 1
    assert len(text.replace("\r\n", "\n")) == 500
    assert report(client, shipment, text=text).status_code == 303
    assert open_reports(shipment)[0].detail["text"] == text.replace("\r\n", "\n")


def test_a_nul_character_is_a_form_error_not_a_500(client, shipment):
    assert report(client, shipment, text="bad\x00byte").status_code == 400


def test_markup_is_kept_as_given_and_never_rendered(client, shipment):
    text = '<script>alert("hi")</script><img src=x onerror=alert(1)> & more'
    report(client, shipment, text=text)
    assert open_reports(shipment)[0].detail["text"] == text
    for html in (
        client.get(shipment.get_absolute_url(), HTTP_ACCEPT_LANGUAGE="en").content.decode(),
        actions_page(client, shipment),
        report(client, shipment, text=text).content.decode(),
    ):
        assert "<script>alert" not in html and "onerror=alert" not in html


def test_a_form_error_shows_the_text_back_escaped(client, shipment):
    html = report(client, shipment, problem="nope", text="<b>bold</b>").content.decode()
    assert "&lt;b&gt;bold&lt;/b&gt;" in html and "<b>bold</b>" not in html


def test_no_address_or_phone_on_any_answer(client, shipment):
    answers = [report(client, shipment, "damaged", "dented"), report(client, shipment), report(client, shipment, "x")]
    answers.append(client.get(shipment.get_absolute_url(), HTTP_ACCEPT_LANGUAGE="en"))
    for response in answers:
        html = response.content.decode()
        for secret in SECRETS:
            assert secret not in html


def test_without_a_csrf_token_it_is_refused(shipment):
    response = Client(enforce_csrf_checks=True).post(report_url(shipment), {"problem": "damaged"})
    assert response.status_code == 403
    assert open_reports(shipment) == []


def test_unknown_token_404_and_get_is_not_allowed(client, shipment):
    assert client.post("/t/" + "z" * 43 + "/report/", {"problem": "damaged"}).status_code == 404
    assert client.get(report_url(shipment)).status_code == 405


def test_an_expired_link_refuses(client, shipment):
    shipment = delivered(shipment)
    with time_machine.travel(timezone.now() + dt.timedelta(days=400), tick=False):
        assert report(client, shipment, "not_received").status_code == 410
    assert open_reports(shipment) == []


def test_reports_from_one_address_are_limited(client, make_shipment):
    parcels = [make_shipment() for _ in range(REPORT_ADDRESS_LIMIT.amount + 1)]
    answers = [report(client, parcel, address="10.9.1.1").status_code for parcel in parcels]
    assert answers == [303] * REPORT_ADDRESS_LIMIT.amount + [429]
    limited = report(client, parcels[-1], address="10.9.1.1")
    assert limited.status_code == 429 and int(limited["Retry-After"]) >= 1
    assert "Too many reports" in limited.content.decode()
    assert open_reports(parcels[-1]) == []
    # Another address is not held up.
    assert report(client, parcels[-1], address="10.9.1.2").status_code == 303


def test_reports_on_one_link_are_limited_whatever_the_address(client, shipment):
    answers = [report(client, shipment, address=f"10.9.2.{n}").status_code for n in range(REPORT_LINK_LIMIT.amount + 1)]
    # The first opens the report; the others, while it is open, add nothing.
    assert answers == [303] + [200] * (REPORT_LINK_LIMIT.amount - 1) + [429]
    assert len(open_reports(shipment)) == 1


ADDED = "We added your report to your earlier message to the support team at Acme Parcels. They will be in touch."


def noted_on_the_way_then_delivered(client, shipment):
    """The customer sent an address note while the parcel was on its way
    (an open customer_report alert); then it was delivered."""
    services.record_event(shipment_id=shipment.pk, event=event("in_transit"))
    noted = client.post(shipment.get_absolute_url() + "address-note/", {"note": "Flat 3 is round the back"})
    assert noted.status_code == 200 and len(open_reports(shipment)) == 1
    services.record_event(shipment_id=shipment.pk, event=event("delivered", 30))
    return Shipment.objects.get(pk=shipment.pk)


def test_an_open_address_note_does_not_read_as_a_report_on_the_delivered_page(client, shipment):
    shipment = noted_on_the_way_then_delivered(client, shipment)
    page = client.get(shipment.get_absolute_url(), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert PASSED_ON not in page and "Problem reported" not in page
    assert offered_problems(page) == ["not_received", "damaged", "other"]


@pytest.mark.parametrize("problem", ["not_received", "damaged"])
def test_a_report_after_an_address_note_is_recorded_and_the_page_says_it_was_added(client, shipment, problem):
    shipment = noted_on_the_way_then_delivered(client, shipment)
    response = report(client, shipment, problem, "Nothing at the door")
    assert response.status_code == 200
    html = response.content.decode()
    assert ADDED in html and ALREADY not in html
    (alert,) = open_reports(shipment)
    assert alert.activity.filter(action="note", data__problem=problem, text="Nothing at the door").count() == 1
    # The page now shows the report as with support, and no form.
    page = client.get(shipment.get_absolute_url(), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert PASSED_ON in page and 'name="problem"' not in page


def test_a_report_added_to_an_address_note_in_place_with_htmx(client, shipment):
    shipment = noted_on_the_way_then_delivered(client, shipment)
    response = client.post(
        report_url(shipment),
        {"problem": "damaged", "text": "Box crushed"},
        HTTP_ACCEPT_LANGUAGE="en",
        HTTP_HX_REQUEST="true",
        HTTP_HX_TARGET="report",
    )
    html = response.content.decode()
    assert response.status_code == 200 and html.lstrip().startswith('<section id="report"')
    assert ADDED in html


def test_the_same_report_twice_after_an_address_note_is_already_reported_and_changes_nothing(client, shipment):
    shipment = noted_on_the_way_then_delivered(client, shipment)
    report(client, shipment, "damaged", "Box crushed")
    (alert,) = open_reports(shipment)
    lines = alert.activity.count()
    version = Shipment.objects.get(pk=shipment.pk).version
    again = report(client, shipment, "damaged", "Box crushed")
    assert again.status_code == 200
    assert ALREADY in again.content.decode() and ADDED not in again.content.decode()
    assert alert.activity.count() == lines
    assert Shipment.objects.get(pk=shipment.pk).version == version
