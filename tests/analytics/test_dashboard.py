"""The admin's analytics dashboard: the staff user's brands only, the
range checked, charts with their figures in tables."""

import pytest
from django.contrib.auth import get_user_model

from tests.shipments.admin_helpers import brand_staff

pytestmark = pytest.mark.django_db
URL = "/admin/analytics/"


def test_the_brands_dashboard(agent_client, brand, rolled_up, django_assert_max_num_queries):
    with django_assert_max_num_queries(12):
        response = agent_client.get(URL, {"brand": "acme", "start": "2026-11-26", "end": "2026-11-27"})
    assert response.status_code == 200
    html = response.content.decode()
    assert html.count('<svg class="chart"') == 4
    assert 'role="img"' in html
    assert "66.7%" in html  # on time, in the totals and the day's row
    assert "drv-1" in html and "acme-fleet" in html
    # Nothing styled inline: the admin's CSP would block it.
    charts = html.split('<div class="analytics-charts">', 1)[1].split("</figure>\n  </div>", 1)[0]
    assert "style=" not in charts and "<style" not in charts


def test_another_brands_dashboard_is_404(agent_client, other_brand, rolled_up):
    assert agent_client.get(URL, {"brand": "other"}).status_code == 404


def test_staff_of_no_brand_see_404(client, db):
    user = get_user_model().objects.create_user("nobody", password="x", is_staff=True)
    client.force_login(user)
    assert client.get(URL).status_code == 404


def test_a_member_of_the_other_brand_sees_only_its_figures(client, other_brand, rolled_up):
    client.force_login(brand_staff(other_brand, username="other-agent"))
    response = client.get(URL, {"start": "2026-11-26", "end": "2026-11-27"})
    assert response.status_code == 200
    assert "drv-1" not in response.content.decode()
    assert [b.slug for b in response.context["brands"]] == ["other"]


@pytest.mark.parametrize(
    "query",
    [
        {"start": "2026-11-27", "end": "2026-11-26"},
        {"start": "2025-11-26", "end": "2026-11-27"},
        {"start": "26/11/2026", "end": "2026-11-27"},
        {"start": "2026-11-26"},
    ],
)
def test_bad_dates_are_a_form_error(agent_client, brand, query):
    response = agent_client.get(URL, {"brand": "acme", **query})
    assert response.status_code == 400
    assert 'class="errornote"' in response.content.decode()


def test_the_default_is_the_last_thirty_days(agent_client, brand):
    response = agent_client.get(URL)
    assert response.status_code == 200
    form = response.context["form"]
    assert (form.cleaned_data["end"] - form.cleaned_data["start"]).days == 29


def test_anonymous_goes_to_the_login(client, db):
    response = client.get(URL)
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
