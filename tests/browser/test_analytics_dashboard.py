"""The analytics dashboard in Chromium, at a phone's width and at 1,280 px:
nothing pushes the page sideways, the charts draw, axe finds nothing
serious. Screenshots go to test-artifacts/."""

import datetime as dt

import pytest
from axe_playwright_python.sync_playwright import Axe

from analytics import buckets
from analytics.models import DailyRollup
from tests.shipments.admin_helpers import brand_staff

pytestmark = pytest.mark.browser

PASSWORD = "a long test password 42"
D = dt.date(2026, 11, 26)


@pytest.fixture
def month_of_figures(brand):
    """A month of rollup rows whose rates wander, for the charts to draw."""
    rows = []
    for offset in range(30):
        day = D - dt.timedelta(days=29 - offset)
        for driver, carrier, parcels in (("drv-1", "acme-fleet", 40), ("drv-2", "other-carrier", 25), ("", "", 5)):
            delivered = parcels - offset % 4
            rows.append(
                DailyRollup(
                    brand=brand,
                    day=day,
                    driver_ref=driver,
                    carrier=carrier,
                    parcels=parcels,
                    delivered=delivered,
                    with_window=delivered,
                    on_time=max(0, delivered - (offset * 7 + len(driver)) % 9),
                    first_attempt=max(0, delivered - (offset * 3) % 6),
                    rated=delivered // 3,
                    rating_sum=(delivered // 3) * 4,
                    page_views=parcels * 3,
                    support_contacts=offset % 3,
                    notifications_delivered=parcels,
                    notifications_sent=parcels // 2,
                    notifications_failed=1,
                    alerts_late=offset % 5,
                    alerts_stuck=offset % 2,
                    alerts_missed_scan=1,
                    # Medians from 20 to 75 minutes and p90s from 90 to 177, by day.
                    **{buckets.COLUMNS[buckets.bucket_of(20 + offset % 12 * 5)]: parcels // 2},
                    **{buckets.COLUMNS[buckets.bucket_of(80 + offset)]: parcels // 3},
                    **{buckets.COLUMNS[buckets.bucket_of(90 + offset * 3)]: parcels // 6},
                )
            )
    DailyRollup.objects.bulk_create(rows)


def serious_violations(page):
    results = Axe().run(page)
    return [v["id"] for v in results.response["violations"] if v["impact"] in ("serious", "critical")]


@pytest.mark.parametrize(("width", "height", "name"), [(390, 844, "phone"), (1280, 900, "desktop")])
def test_the_dashboard_reads_at_a_phones_width_and_at_1280(
    asgi_server, browser, artifacts, brand, month_of_figures, width, height, name
):
    agent = brand_staff(brand, username="analyst")
    agent.set_password(PASSWORD)
    agent.save()
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    errors = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.goto(f"{asgi_server}/admin/login/?next=/admin/analytics/")
    page.fill("#id_username", "analyst")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{asgi_server}/admin/analytics/")
    page.fill("#id_start", "2026-10-28")
    page.fill("#id_end", "2026-11-26")
    page.get_by_role("button", name="Show").click()
    page.wait_for_load_state()

    assert page.locator("svg.chart").count() == 4
    assert page.locator("svg.chart polyline.on-time").count() >= 1
    assert page.locator("svg.chart rect.bar").count() >= 3
    assert page.locator(".analytics-table tbody tr").count() == 30 + 3 + 3
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    # The charts' lines are styled from the static CSS (no CSP refusal).
    stroke = page.evaluate("getComputedStyle(document.querySelector('polyline.on-time')).stroke")
    assert stroke == "rgb(29, 78, 216)"
    assert not [e for e in errors if "Content Security Policy" in e]
    assert serious_violations(page) == []
    page.screenshot(path=str(artifacts / f"analytics-dashboard-{name}.png"), full_page=True)
    context.close()
