"""The "Needs attention" queue in Chromium: an agent logs in, opens the
queue, takes an alert, leaves a note and resolves it with a reason, and
the alert leaves the open list. And the shipments' list at 1,280 px:
nothing pushes the page sideways."""

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from shipments import alerts, services
from shipments.models import Alert, AlertState
from tests.conftest import event
from tests.shipments.admin_helpers import brand_staff

pytestmark = pytest.mark.browser

PASSWORD = "a long test password 42"
STATUSES = ["in_transit", "out_for_delivery", "failed_attempt", "exception", "delivered", "info_received"]


@pytest.fixture
def agent_with_password(brand):
    agent = brand_staff(brand, username="queue_agent")
    agent.set_password(PASSWORD)
    agent.save()
    return agent


def log_in(page, base_url, username):
    page.goto(f"{base_url}/admin/login/?next=/admin/shipments/alert/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{base_url}/admin/shipments/alert/")


def test_an_agent_takes_notes_and_resolves_an_alert_from_the_queue(
    asgi_server, browser, artifacts, make_shipment, agent_with_password
):
    parcel = make_shipment(tracking_number="LMQUEUE1")
    alert = alerts.open_alert(shipment=parcel, kind="stuck", now=timezone.now() - timedelta(hours=5))
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    log_in(page, asgi_server, agent_with_password.username)

    assert page.locator("h1").inner_text() == "Needs attention"
    row = page.locator("#result_list tbody tr", has_text="LMQUEUE1")
    assert row.locator(".alert-kind-stuck").inner_text() == "Stuck"
    assert "5 h" in row.inner_text()
    page.screenshot(path=str(artifacts / "alert-queue-1280.png"))
    assert page.evaluate("(r => r.scrollWidth <= r.clientWidth)(document.querySelector('.results'))")
    row.locator("th a").click()

    page.get_by_role("button", name="Assign to me").click()
    assert "Assigned to you." in page.locator(".messagelist").inner_text()
    assert page.locator(".alert-assignee").inner_text() == agent_with_password.username

    page.fill("#note-form textarea", "Depot says it is on tomorrow's van.")
    page.get_by_role("button", name="Add the note").click()
    assert "Depot says it is on tomorrow's van." in page.locator(".alert-activity").inner_text()

    page.select_option("#resolve-form select[name=reason]", "carrier_confirmed")
    page.get_by_role("button", name="Resolve the alert").click()
    assert "Resolved." in page.locator(".messagelist").inner_text()
    page.screenshot(path=str(artifacts / "alert-page-1280.png"), full_page=True)

    trail = page.locator(".alert-activity li").all_inner_texts()
    assert "Resolved" in trail[-1] and "Carrier or driver confirmed it" in trail[-1]
    fresh = Alert.objects.get(pk=alert.pk)
    assert (fresh.state, fresh.resolution, fresh.resolved_by) == (
        AlertState.RESOLVED,
        "carrier_confirmed",
        agent_with_password,
    )

    page.goto(f"{asgi_server}/admin/shipments/alert/")
    assert page.locator("#result_list tbody tr", has_text="LMQUEUE1").count() == 0
    context.close()


def test_the_shipment_list_is_readable_at_1280_px(asgi_server, browser, artifacts, other_brand, make_shipment):
    # Two brands, so the superuser's list has its brand column too.
    for index in range(24):
        shipment = make_shipment(
            for_brand=other_brand if index % 4 == 0 else None,
            eta=timezone.now() + timedelta(hours=index),
            tracking_number=f"LM{index:04d}XYZ-{index * 7919:08d}",
            order_ref=f"ORDER-{index:06d}-GB",
            recipient_name=["Ada Lovelace", "Bartholomew Fitzwilliam-Montgomery", "Li Wei"][index % 3],
            destination_city=["London", "Newcastle upon Tyne", "Bath"][index % 3],
            carrier="acme-express",
        )
        services.record_event(shipment_id=shipment.pk, event=event(STATUSES[index % len(STATUSES)], index))
    get_user_model().objects.create_superuser("root", "root@example.com", PASSWORD)
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.goto(f"{asgi_server}/admin/login/?next=/admin/shipments/shipment/")
    page.fill("#id_username", "root")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{asgi_server}/admin/shipments/shipment/")
    page.screenshot(path=str(artifacts / "shipment-list-1280.png"))

    # Nothing wider than the window: no sideways scrolling to reach a column.
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280
    assert page.evaluate("document.querySelector('#result_list').getBoundingClientRect().right") <= 1280
    # And the table within its box: no column cut off behind a scroll bar.
    assert page.evaluate("(r => r.scrollWidth <= r.clientWidth)(document.querySelector('.results'))")
    badge = page.locator("#result_list .status-exception").first
    assert badge.inner_text() == "Needs attention"  # the status exception, as staff read it
    colours = badge.evaluate("b => [getComputedStyle(b).color, getComputedStyle(b).backgroundColor]")
    assert colours == ["rgb(127, 29, 29)", "rgb(254, 226, 226)"]
    # Each badge sits on one line.
    heights = page.locator("#result_list .status").evaluate_all("els => els.map(e => e.getClientRects().length)")
    assert set(heights) == {1}
    context.close()
