"""The delivered page's own forms (templates/shipments/_after_delivery.html):
rate the delivery, or report it not received or damaged, from the cached
page itself, without JavaScript (a POST and back) and with htmx (the
section swaps in place)."""

import re

import pytest
from django.test import Client

from shipments import services
from shipments.models import Alert, DeliveryRating, Shipment
from tests.conftest import event

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fresh_limits")]


@pytest.fixture
def delivered(shipment):
    services.record_event(shipment_id=shipment.pk, event=event("delivered", 5, description="Left at front door"))
    return Shipment.objects.get(pk=shipment.pk)


def csrf_of(html: str) -> str:
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)


def visitor():
    """A browser that CSRF protection applies to."""
    return Client(enforce_csrf_checks=True, HTTP_ACCEPT_LANGUAGE="en", REMOTE_ADDR="10.9.0.7")


def test_each_visitor_gets_their_own_token_in_the_shared_page(delivered):
    first, second = visitor(), visitor()
    one = csrf_of(first.get(delivered.get_absolute_url()).content.decode())
    two = csrf_of(second.get(delivered.get_absolute_url()).content.decode())
    assert one != two


def test_rating_from_the_page_without_javascript(delivered):
    browser = visitor()
    token = csrf_of(browser.get(delivered.get_absolute_url()).content.decode())
    response = browser.post(
        f"/t/{delivered.public_token}/rating/", {"score": "4", "comment": "Kind driver", "csrfmiddlewaretoken": token}
    )
    assert response.status_code == 303 and response["Location"].endswith("#rating")
    assert DeliveryRating.objects.get(shipment=delivered).score == 4
    html = browser.get(delivered.get_absolute_url()).content.decode()
    assert "You rated this delivery 4 out of 5." in html and 'name="score"' not in html


def test_rating_from_the_page_with_htmx_swaps_its_section(delivered):
    browser = visitor()
    token = csrf_of(browser.get(delivered.get_absolute_url()).content.decode())
    response = browser.post(
        f"/t/{delivered.public_token}/rating/",
        {"score": "5", "csrfmiddlewaretoken": token},
        HTTP_HX_REQUEST="true",
        HTTP_HX_TARGET="rating",
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith('<section id="rating"') and "</html>" not in html
    assert "You rated this delivery 5 out of 5." in html
    # Again: refused, said in place, nothing changed.
    again = browser.post(
        f"/t/{delivered.public_token}/rating/",
        {"score": "1", "csrfmiddlewaretoken": token},
        HTTP_HX_REQUEST="true",
        HTTP_HX_TARGET="rating",
    )
    assert again.status_code == 200 and "5 out of 5" in again.content.decode()
    assert list(DeliveryRating.objects.values_list("score", flat=True)) == [5]


def test_a_bad_rating_is_a_clear_error_in_place(delivered):
    browser = visitor()
    token = csrf_of(browser.get(delivered.get_absolute_url()).content.decode())
    response = browser.post(
        f"/t/{delivered.public_token}/rating/",
        {"score": "9", "csrfmiddlewaretoken": token},
        HTTP_HX_REQUEST="true",
        HTTP_HX_TARGET="rating",
    )
    html = response.content.decode()
    assert response.status_code == 200 and 'aria-invalid="true"' in html and 'class="field-error"' in html
    assert not DeliveryRating.objects.exists()


def test_a_post_without_the_token_is_refused(delivered):
    response = visitor().post(f"/t/{delivered.public_token}/rating/", {"score": "5"})
    assert response.status_code == 403
    assert not DeliveryRating.objects.exists()


@pytest.mark.parametrize("problem", ["not_received", "damaged"])
def test_not_received_or_damaged_opens_one_customer_report(delivered, problem):
    browser = visitor()
    page = browser.get(delivered.get_absolute_url()).content.decode()
    assert f'value="{problem}"' in page
    token = csrf_of(page)
    data = {"problem": problem, "text": "Not at the door", "csrfmiddlewaretoken": token}
    url = f"/t/{delivered.public_token}/report/"
    response = browser.post(url, data, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="report")
    html = response.content.decode()
    assert response.status_code == 200 and html.lstrip().startswith('<section id="report"')
    assert "We passed your report to the support team at Acme Parcels." in html
    [alert] = Alert.objects.filter(shipment=delivered, kind="customer_report", state="open")
    assert alert.detail["problem"] == problem
    # Sent twice: the page says so, and support still has one report.
    again = browser.post(url, data, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="report")
    assert "You have already reported a problem with this parcel." in again.content.decode()
    assert Alert.objects.filter(shipment=delivered, kind="customer_report").count() == 1
    # The page itself now says it was reported, with no form.
    after = browser.get(delivered.get_absolute_url()).content.decode()
    assert "Problem reported" in after and 'name="problem"' not in after


def test_reports_from_the_page_are_rate_limited(delivered):
    from pages.tracking import REPORT_ADDRESS_LIMIT

    browser = visitor()
    token = csrf_of(browser.get(delivered.get_absolute_url()).content.decode())
    url = f"/t/{delivered.public_token}/report/"
    for _ in range(REPORT_ADDRESS_LIMIT.amount):
        browser.post(url, {"problem": "nope", "csrfmiddlewaretoken": token})
    response = browser.post(url, {"problem": "damaged", "csrfmiddlewaretoken": token})
    assert response.status_code == 429 and response["Retry-After"]
    assert not Alert.objects.filter(kind="customer_report").exists()


def _section(html: str, name: str) -> str:
    found = re.search(rf'<section id="{name}".*?</section>', html, re.S).group(0)
    return re.sub(r"\s+", " ", found.replace(csrf_of(html), "TOKEN"))


def test_the_forms_page_shows_the_delivered_page_s_own_rating_and_report_sections(delivered):
    browser = visitor()
    page = browser.get(delivered.get_absolute_url()).content.decode()
    forms = browser.get(delivered.get_absolute_url() + "actions/").content.decode()
    for name in ("rating", "report"):
        assert _section(forms, name) == _section(page, name)
    assert "Not received, or damaged?" in _section(forms, "report")


def test_before_delivery_the_report_is_headed_for_what_it_offers(shipment):
    forms = visitor().get(shipment.get_absolute_url() + "actions/").content.decode()
    report = re.search(r'<section id="report".*?</section>', forms, re.S).group(0)
    assert '<h2 id="report-title">Report a problem</h2>' in report
    assert "Not received" not in report and 'value="not_received"' not in report
    assert 'id="rating"' not in forms
