"""The "Needs attention" queue in the admin (shipments/admin_alerts.py):
the list and its filters, an alert's page, each action's effect and trail
row, and who may do what: another brand's staff get a 404 for everything,
view-only staff read and change nothing, every POST needs its CSRF token."""

import re
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from shipments import alert_work, alerts
from shipments.alert_models import ActivityAction
from shipments.models import Alert, AlertActivity, AlertState, BrandAlertSettings, Notice, NoticeKind

from .admin_helpers import brand_staff, change_form_data

LIST = "/admin/shipments/alert/"
ACTIONS = ["assign", "unassign", "note", "contact", "resolve"]
GOOD_POSTS = {
    "assign": {},
    "unassign": {},
    "note": {"text": "Called the depot."},
    "contact": {"topic": "looking_into_it", "channels": ["email"]},
    "resolve": {"reason": "false_alarm", "note": ""},
}


def page(alert):
    return reverse("admin:shipments_alert_change", args=[alert.pk])


def do(alert, action):
    return reverse("admin:shipments_alert_do", args=[alert.pk, action])


def open_alert(shipment, kind="stuck", hours_ago=3):
    return alerts.open_alert(shipment=shipment, kind=kind, now=timezone.now() - timedelta(hours=hours_ago))


@pytest.fixture
def alert(shipment):
    return open_alert(shipment)


@pytest.fixture
def theirs(make_shipment, other_brand):
    return open_alert(make_shipment(tracking_number="THEIRS1", for_brand=other_brand))


def staff_rows(alert):
    return list(AlertActivity.objects.filter(alert=alert).exclude(action=ActivityAction.OPENED).order_by("at", "pk"))


def test_the_queue_is_titled_and_shows_open_alerts_oldest_first_with_their_columns(
    agent_client, make_shipment, theirs, agent
):
    older = open_alert(make_shipment(tracking_number="OLD1"), "late", hours_ago=50)
    newer = open_alert(make_shipment(tracking_number="NEW1"), "missed_scan", hours_ago=3)
    done = open_alert(make_shipment(tracking_number="DONE1"), hours_ago=1)
    alert_work.resolve(alert=done, user=agent, reason="false_alarm")
    alert_work.add_note(alert=newer, user=agent, text="First")
    alert_work.add_note(alert=newer, user=agent, text="Latest word " + "x" * 200)
    response = agent_client.get(LIST)
    assert response.status_code == 200
    assert response.context["title"] == "Needs attention"
    assert [a.pk for a in response.context["cl"].result_list] == [older.pk, newer.pk]
    html = response.content.decode()
    assert "THEIRS1" not in html and "DONE1" not in html
    assert '<span class="badge alert-kind alert-kind-late">Running late</span>' in html
    assert f'href="{reverse("admin:shipments_shipment_change", args=[older.shipment_id])}"' in html
    assert ">2 d<" in html and ">3 h<" in html
    assert "Latest word xx" in html and "x" * 200 not in html
    assert "css/admin.css" in html


def test_the_filters_by_state_assignee_kind_and_brand(agent_client, make_shipment, agent, brand, theirs):
    mine = open_alert(make_shipment(), "stuck")
    nobodys = open_alert(make_shipment(), "late")
    done = open_alert(make_shipment(), "late")
    alert_work.assign(alert=mine, user=agent)
    alert_work.resolve(alert=done, user=agent, reason="other")

    def listed(query):
        return {a.pk for a in agent_client.get(LIST + query).context["cl"].result_list}

    assert listed("?assigned=me") == {mine.pk}
    assert listed("?assigned=nobody") == {nobodys.pk}
    assert listed("?state=resolved") == {done.pk}
    assert listed("?state=all") == {mine.pk, nobodys.pk, done.pk}
    assert listed("?kind__exact=late") == {nobodys.pk}
    assert listed(f"?shipment__brand__id__exact={brand.pk}") == {mine.pk, nobodys.pk}
    # The brand filter offers only the user's own brands.
    assert "Other Co" not in agent_client.get(LIST).content.decode()


def test_the_queue_reads_a_bounded_number_of_queries(agent_client, make_shipment, agent, django_assert_max_num_queries):
    for index in range(20):
        alert = open_alert(make_shipment(), hours_ago=index + 1)
        alert_work.add_note(alert=alert, user=agent, text=f"note {index}")
    agent_client.get(LIST)
    with django_assert_max_num_queries(12):
        assert agent_client.get(LIST).status_code == 200


def test_the_alerts_page_shows_its_facts_shipment_and_trail_newest_last(agent_client, alert, agent):
    alert_work.add_note(alert=alert, user=agent, text="One")
    alert_work.add_note(alert=alert, user=agent, text="Two")
    response = agent_client.get(page(alert))
    assert response.status_code == 200
    html = response.content.decode()
    assert "LM000001" in html and "status status-pending" in html
    assert html.index("Opened") < html.index(">One") < html.index(">Two")
    for action in ACTIONS[:1] + ACTIONS[2:]:
        assert f'action="{do(alert, action)}"' in html


def test_the_alerts_page_says_what_the_rule_saw(agent_client, shipment):
    alert = alerts.open_alert(
        shipment=shipment, kind="stuck", now=timezone.now(), detail={"last_event_at": "2026-11-26T08:00:00+00:00"}
    )
    html = agent_client.get(page(alert)).content.decode()
    assert "<dt>Last event at</dt><dd>2026-11-26T08:00:00+00:00</dd>" in html


def test_each_action_does_its_thing_and_leaves_its_row(agent_client, alert, agent):
    assert agent_client.post(do(alert, "assign")).status_code == 302
    assert Alert.objects.get(pk=alert.pk).assigned_to == agent
    assert agent_client.post(do(alert, "unassign")).status_code == 302
    assert Alert.objects.get(pk=alert.pk).assigned_to is None
    assert agent_client.post(do(alert, "note"), {"text": "Called the depot."}).status_code == 302
    assert agent_client.post(do(alert, "contact"), GOOD_POSTS["contact"]).status_code == 302
    notice = Notice.objects.get(kind=NoticeKind.CUSTOMER_CONTACTED)
    assert notice.data == {"alert_id": alert.pk, "topic": "looking_into_it", "channels": ["email"], "user_id": agent.pk}
    response = agent_client.post(do(alert, "resolve"), {"reason": "redelivery", "note": "Friday"}, follow=True)
    assert "Resolved." in response.content.decode()
    fresh = Alert.objects.get(pk=alert.pk)
    assert (fresh.state, fresh.resolution, fresh.resolved_by) == (AlertState.RESOLVED, "redelivery", agent)
    assert [(r.action, r.user) for r in staff_rows(alert)] == [
        (ActivityAction.ASSIGNED, agent),
        (ActivityAction.UNASSIGNED, agent),
        (ActivityAction.NOTE, agent),
        (ActivityAction.CONTACTED, agent),
        (ActivityAction.RESOLVED, agent),
    ]
    assert staff_rows(alert)[-1].text == "Friday"
    # Gone from the open list.
    assert alert.pk not in {a.pk for a in agent_client.get(LIST).context["cl"].result_list}


def test_resolving_a_resolved_alert_says_so_and_writes_nothing(agent_client, alert):
    agent_client.post(do(alert, "resolve"), {"reason": "false_alarm"})
    rows = AlertActivity.objects.filter(alert=alert).count()
    response = agent_client.post(do(alert, "resolve"), {"reason": "refunded"}, follow=True)
    assert "This alert was resolved already." in response.content.decode()
    assert AlertActivity.objects.filter(alert=alert).count() == rows
    assert Alert.objects.get(pk=alert.pk).resolution == "false_alarm"


@pytest.mark.parametrize(
    ("action", "data", "error"),
    [
        ("note", {"text": ""}, "This field is required."),
        ("note", {"text": "n" * 2001}, "at most 2000 characters"),
        ("resolve", {"reason": ""}, "This field is required."),
        ("resolve", {"reason": "rule"}, "Select a valid choice."),
        ("contact", {"topic": "late", "channels": ["pigeon"]}, "Select a valid choice."),
        ("contact", {"topic": "free text", "channels": ["email"]}, "Select a valid choice."),
    ],
)
def test_bad_input_is_a_form_error_not_a_change(agent_client, alert, action, data, error):
    response = agent_client.post(do(alert, action), data)
    assert response.status_code == 400
    assert error in response.content.decode()
    assert staff_rows(alert) == []
    assert Alert.objects.get(pk=alert.pk).state == AlertState.OPEN


def test_a_customer_without_phone_or_email_cannot_be_written_to(agent_client, make_shipment):
    alert = open_alert(make_shipment(recipient_phone="", recipient_email=""))
    html = agent_client.get(page(alert)).content.decode()
    assert re.search(r'<button type="submit" class="button" disabled>\s*Send the message', html)
    response = agent_client.post(do(alert, "contact"), {"topic": "late", "channels": ["sms", "email"]})
    assert response.status_code == 400
    assert not Notice.objects.filter(kind=NoticeKind.CUSTOMER_CONTACTED).exists()


def test_a_channel_the_customer_left_nothing_for_is_shown_disabled(agent_client, make_shipment):
    alert = open_alert(make_shipment(recipient_phone=""))
    html = agent_client.get(page(alert)).content.decode()
    assert re.search(r'<input[^>]*value="sms"[^>]*disabled', html)
    assert not re.search(r'<input[^>]*value="email"[^>]*disabled', html)
    assert agent_client.post(do(alert, "contact"), {"topic": "late", "channels": ["sms"]}).status_code == 400


def test_another_brands_staff_get_404_for_the_page_and_every_action(agent_client, theirs):
    assert agent_client.get(page(theirs)).status_code == 404
    for action in ACTIONS:
        assert agent_client.post(do(theirs, action), GOOD_POSTS[action]).status_code == 404, action
    assert agent_client.post(do(theirs, "nonsense")).status_code == 404
    assert staff_rows(theirs) == []
    assert Alert.objects.get(pk=theirs.pk).state == AlertState.OPEN
    assert not Notice.objects.filter(kind=NoticeKind.CUSTOMER_CONTACTED).exists()
    # A page that does not exist looks the same as one that is not theirs.
    assert agent_client.get(f"{LIST}999999/change/").status_code == 404
    assert agent_client.post(f"{LIST}999999/do/assign/").status_code == 404
    assert agent_client.get(f"{LIST}not-a-number/change/").status_code == 404


def test_another_brands_alerts_are_untouched_by_the_bulk_actions(agent_client, alert, theirs, agent):
    for action in ["assign_to_me", "resolve_as_false_alarm"]:
        response = agent_client.post(LIST, {"action": action, "_selected_action": [alert.pk, theirs.pk]})
        assert response.status_code == 302
    fresh = Alert.objects.get(pk=theirs.pk)
    assert (fresh.state, fresh.assigned_to) == (AlertState.OPEN, None)
    mine = Alert.objects.get(pk=alert.pk)
    assert (mine.state, mine.resolution, mine.assigned_to) == (AlertState.RESOLVED, "false_alarm", agent)
    assert [r.action for r in staff_rows(alert)] == [ActivityAction.ASSIGNED, ActivityAction.RESOLVED]


@pytest.fixture
def viewer_client(client, brand):
    viewer = get_user_model().objects.create_user("viewer", "viewer@example.com", "pw", is_staff=True)
    viewer.user_permissions.set(Permission.objects.filter(codename__in=["view_alert", "view_shipment"]))
    brand.staff.add(viewer)
    client.force_login(viewer)
    return client


def test_view_only_staff_read_the_page_but_cannot_act(viewer_client, alert):
    response = viewer_client.get(page(alert))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Audit trail" in html and 'action="' + do(alert, "resolve") not in html
    for action in ACTIONS:
        assert viewer_client.post(do(alert, action), GOOD_POSTS[action]).status_code == 403, action
    listing = viewer_client.get(LIST)
    assert listing.status_code == 200 and "assign_to_me" not in listing.content.decode()
    response = viewer_client.post(LIST, {"action": "resolve_as_false_alarm", "_selected_action": [alert.pk]})
    assert Alert.objects.get(pk=alert.pk).state == AlertState.OPEN
    assert staff_rows(alert) == []


def test_the_actions_are_posts_and_the_model_form_changes_nothing(agent_client, alert):
    assert agent_client.get(do(alert, "assign")).status_code == 405
    assert agent_client.post(page(alert), {"state": "resolved"}).status_code == 403
    assert Alert.objects.get(pk=alert.pk).state == AlertState.OPEN


def test_every_action_needs_its_csrf_token(agent, alert):
    client = Client(enforce_csrf_checks=True)
    client.force_login(agent)
    for action in ACTIONS:
        assert client.post(do(alert, action), GOOD_POSTS[action]).status_code == 403, action
    assert staff_rows(alert) == []
    html = client.get(page(alert)).content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)
    assert client.post(do(alert, "assign"), {"csrfmiddlewaretoken": token}).status_code == 302
    assert Alert.objects.get(pk=alert.pk).assigned_to == agent


def test_the_queue_searches_names_postcodes_and_email_prefixes(agent_client, make_shipment):
    ada = open_alert(make_shipment(recipient_name="Ada Lovelace", destination_postcode="SW1A 1AA"))
    open_alert(
        make_shipment(
            recipient_name="Grace Hopper", recipient_email="grace@navy.example", destination_postcode="N1 9GU"
        )
    )

    def found(term):
        return [a.pk for a in agent_client.get(LIST, {"q": term}).context["cl"].result_list]

    assert found("lovel") == [ada.pk]
    assert found("sw1a") == [ada.pk]
    assert found("ada@") == [ada.pk]
    assert found("navy.example") == []  # the start of the address, not any part


def test_brand_alert_settings_are_an_inline_on_the_brand_scoped_to_its_staff(agent_client, brand, other_brand):
    url = reverse("admin:shipments_brand_change", args=[brand.pk])
    response = agent_client.get(url)
    assert response.status_code == 200
    assert "alert_settings-0-stuck_in_transit_hours" in response.content.decode()
    assert agent_client.get(reverse("admin:shipments_brand_change", args=[other_brand.pk])).status_code in (302, 404)

    # Just past a bound is a form error; at it, saved.
    too_many = change_form_data(response, **{"alert_settings-0-stuck_in_transit_hours": "337"})
    refused = agent_client.post(url, too_many)
    assert "less than or equal to 336" in refused.content.decode()
    assert not BrandAlertSettings.objects.filter(brand=brand).exists()
    at_most = change_form_data(response, **{"alert_settings-0-stuck_in_transit_hours": "336"})
    assert agent_client.post(url, at_most).status_code == 302
    assert BrandAlertSettings.objects.get(brand=brand).stuck_in_transit_hours == 336
    assert not BrandAlertSettings.objects.filter(brand=other_brand).exists()


def test_a_stranger_with_every_permission_cannot_bulk_assign_another_brands_alert(client, alert, other_brand):
    client.force_login(brand_staff(other_brand, username="stranger"))
    client.post(LIST, {"action": "assign_to_me", "_selected_action": [alert.pk]})
    assert Alert.objects.get(pk=alert.pk).assigned_to is None


def test_an_alerts_page_reads_a_bounded_number_of_queries(agent_client, alert, agent, django_assert_max_num_queries):
    for index in range(15):
        alert_work.add_note(alert=alert, user=agent, text=f"note {index}")
    agent_client.get(page(alert))
    with django_assert_max_num_queries(12):
        assert agent_client.get(page(alert)).status_code == 200


def test_a_bulk_action_works_through_the_oldest_up_to_its_limit(agent_client, make_shipment, agent, monkeypatch):
    from shipments import admin_alerts

    monkeypatch.setattr(admin_alerts, "BULK_LIMIT", 2)
    chosen = [open_alert(make_shipment(), hours_ago=hours) for hours in (1, 3, 2)]
    response = agent_client.post(
        LIST, {"action": "assign_to_me", "_selected_action": [a.pk for a in chosen]}, follow=True
    )
    html = response.content.decode()
    assert "2 alerts assigned to you." in html and "Only the oldest 2 were changed" in html
    assert {a.pk for a in Alert.objects.filter(assigned_to=agent)} == {chosen[1].pk, chosen[2].pk}
    response = agent_client.post(LIST, {"action": "assign_to_me", "_selected_action": [chosen[0].pk]}, follow=True)
    assert "1 alert assigned to you." in response.content.decode()
