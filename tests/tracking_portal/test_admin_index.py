"""The admin's front page leads support staff to the queue and the figures."""

import pytest
from django.contrib.auth.models import User

pytestmark = pytest.mark.django_db


def test_an_agent_sees_the_queue_and_the_analytics_first(agent_client):
    page = agent_client.get("/admin/").content.decode()
    assert page.index('href="/admin/shipments/alert/"') < page.index('id="content-main"')
    assert 'href="/admin/analytics/"' in page


def test_staff_without_the_alerts_are_not_shown_the_queue(client):
    client.force_login(User.objects.create_user("bare", is_staff=True))
    page = client.get("/admin/").content.decode()
    assert 'href="/admin/shipments/alert/"' not in page
    assert 'href="/admin/analytics/"' in page
