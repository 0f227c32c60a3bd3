"""What staff do with an alert (shipments/alert_work.py): each change's
effect and its row on the audit trail, and the rules that hold whoever
calls them."""

from datetime import timedelta

import pytest

from shipments import alert_work, alerts, signals
from shipments.alert_models import ActivityAction, ContactTopic, Resolution
from shipments.models import Alert, AlertActivity, AlertState, Notice, NoticeKind
from tests.conftest import T0

from .admin_helpers import brand_staff


@pytest.fixture
def alert(shipment):
    return alerts.open_alert(shipment=shipment, kind="stuck", now=T0)


@pytest.fixture
def other_agent(brand):
    return brand_staff(brand, username="other_agent")


def trail(alert):
    return list(AlertActivity.objects.filter(alert=alert).exclude(action=ActivityAction.OPENED).order_by("at", "pk"))


def test_assign_takes_the_alert_and_says_who_had_it(alert, agent, other_agent):
    assert alert_work.assign(alert=alert, user=agent)
    assert Alert.objects.get(pk=alert.pk).assigned_to == agent
    assert alert_work.assign(alert=alert, user=other_agent)
    rows = trail(alert)
    assert [(r.action, r.user, r.data) for r in rows] == [
        (ActivityAction.ASSIGNED, agent, {"assigned_to": agent.pk, "previous": None}),
        (ActivityAction.ASSIGNED, other_agent, {"assigned_to": other_agent.pk, "previous": agent.pk}),
    ]


def test_assigning_an_alert_to_its_assignee_again_writes_nothing(alert, agent):
    alert_work.assign(alert=alert, user=agent)
    assert not alert_work.assign(alert=alert, user=agent)
    assert len(trail(alert)) == 1


def test_staff_of_another_brand_cannot_be_given_the_alert(alert, other_brand):
    stranger = brand_staff(other_brand, username="stranger")
    with pytest.raises(alert_work.Refused):
        alert_work.assign(alert=alert, user=stranger)
    assert Alert.objects.get(pk=alert.pk).assigned_to is None
    assert trail(alert) == []


def test_unassign_leaves_it_to_nobody_once(alert, agent):
    alert_work.assign(alert=alert, user=agent)
    assert alert_work.unassign(alert=alert, user=agent)
    assert not alert_work.unassign(alert=alert, user=agent)
    assert Alert.objects.get(pk=alert.pk).assigned_to is None
    assert [(r.action, r.data) for r in trail(alert)][-1] == (ActivityAction.UNASSIGNED, {"previous": agent.pk})
    assert len(trail(alert)) == 2


@pytest.mark.parametrize("length", [1, alert_work.NOTE_MAX_LENGTH])
def test_a_note_of_up_to_the_limit_is_kept_whole(alert, agent, length):
    row = alert_work.add_note(alert=alert, user=agent, text="  " + "n" * length + "\n")
    assert (row.action, row.user, row.text) == (ActivityAction.NOTE, agent, "n" * length)


@pytest.mark.parametrize("text", ["", "   \n", "n" * (alert_work.NOTE_MAX_LENGTH + 1)])
def test_a_blank_note_or_one_past_the_limit_is_refused_not_cut(alert, agent, text):
    with pytest.raises(alert_work.Refused):
        alert_work.add_note(alert=alert, user=agent, text=text)
    assert trail(alert) == []


def test_contacting_the_customer_leaves_a_notice_and_a_trail_row_announced_after_commit(
    alert, agent, django_capture_on_commit_callbacks
):
    heard = []

    def receiver(sender, notice_ids, **kwargs):
        heard.extend(notice_ids)

    signals.notices_written.connect(receiver)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            notice = alert_work.contact_customer(
                alert=alert, user=agent, topic=ContactTopic.LOOKING_INTO_IT, channels=["sms", "email", "sms"]
            )
    finally:
        signals.notices_written.disconnect(receiver)
    assert notice.kind == NoticeKind.CUSTOMER_CONTACTED
    assert notice.shipment_id == alert.shipment_id
    assert notice.data == {
        "alert_id": alert.pk,
        "topic": "looking_into_it",
        "channels": ["email", "sms"],
        "user_id": agent.pk,
    }
    assert notice.pk in heard
    [row] = trail(alert)
    assert (row.action, row.user) == (ActivityAction.CONTACTED, agent)
    assert row.data == {"topic": "looking_into_it", "channels": ["email", "sms"], "notice_id": notice.pk}


def test_a_channel_the_customer_left_nothing_for_is_refused(make_shipment, agent):
    no_phone = make_shipment(recipient_phone="")
    alert = alerts.open_alert(shipment=no_phone, kind="late", now=T0)
    assert alert_work.available_channels(no_phone) == ["email"]
    with pytest.raises(alert_work.Refused):
        alert_work.contact_customer(alert=alert, user=agent, topic="late", channels=["sms", "email"])
    assert not Notice.objects.filter(kind=NoticeKind.CUSTOMER_CONTACTED).exists()
    assert trail(alert) == []


@pytest.mark.parametrize(
    ("topic", "channels"),
    [("nonsense", ["email"]), ("late", []), ("late", ["pigeon"])],
    ids=["topic", "none", "pigeon"],
)
def test_an_unknown_topic_or_channel_is_refused(alert, agent, topic, channels):
    with pytest.raises(alert_work.Refused):
        alert_work.contact_customer(alert=alert, user=agent, topic=topic, channels=channels)
    assert not Notice.objects.filter(kind=NoticeKind.CUSTOMER_CONTACTED).exists()


@pytest.mark.parametrize(("after", "sent"), [(timedelta(minutes=10), False), (timedelta(minutes=10, seconds=1), True)])
def test_the_same_message_again_is_refused_within_ten_minutes(alert, agent, after, sent):
    alert_work.contact_customer(alert=alert, user=agent, topic="late", channels=["email"], now=T0)
    again = dict(alert=alert, user=agent, topic="late", channels=["email"], now=T0 + after)
    if sent:
        alert_work.contact_customer(**again)
    else:
        with pytest.raises(alert_work.Refused):
            alert_work.contact_customer(**again)
    assert Notice.objects.filter(kind=NoticeKind.CUSTOMER_CONTACTED).count() == (2 if sent else 1)
    # Another topic is another message.
    alert_work.contact_customer(alert=alert, user=agent, topic="redelivery", channels=["email"], now=T0 + after)


def test_resolving_records_the_reason_the_user_and_the_note_once(alert, agent):
    assert alert_work.resolve(alert=alert, user=agent, reason=Resolution.REDELIVERY, note=" Booked for Friday ")
    fresh = Alert.objects.get(pk=alert.pk)
    assert (fresh.state, fresh.resolution, fresh.resolved_by) == (AlertState.RESOLVED, "redelivery", agent)
    resolved = [r for r in trail(alert) if r.action == ActivityAction.RESOLVED]
    assert len(resolved) == 1
    assert "Booked for Friday" in [r.text for r in trail(alert)]
    # Again: nothing more.
    count = AlertActivity.objects.filter(alert=alert).count()
    assert not alert_work.resolve(alert=alert, user=agent, reason=Resolution.FALSE_ALARM)
    assert AlertActivity.objects.filter(alert=alert).count() == count
    assert Alert.objects.get(pk=alert.pk).resolution == "redelivery"
    assert Notice.objects.filter(kind=NoticeKind.ALERT_RESOLVED, shipment_id=alert.shipment_id).count() == 1


@pytest.mark.parametrize("reason", ["", "rule", "because"])
def test_a_reason_that_is_not_the_staffs_is_refused(alert, agent, reason):
    with pytest.raises(alert_work.Refused):
        alert_work.resolve(alert=alert, user=agent, reason=reason)
    assert Alert.objects.get(pk=alert.pk).state == AlertState.OPEN


def test_a_resolved_alert_is_not_taken_nor_its_customer_written_to_but_takes_notes(alert, agent):
    alert_work.resolve(alert=alert, user=agent, reason=Resolution.FALSE_ALARM)
    with pytest.raises(alert_work.Refused):
        alert_work.assign(alert=alert, user=agent)
    with pytest.raises(alert_work.Refused):
        alert_work.contact_customer(alert=alert, user=agent, topic="late", channels=["email"])
    alert_work.add_note(alert=alert, user=agent, text="The customer called back: all fine.")
    assert trail(alert)[-1].action == ActivityAction.NOTE
