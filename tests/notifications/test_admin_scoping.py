"""The notifications admin, as a brand-A agent: brand filters and choices
list only A, and nothing is made for brand B."""

import pytest
from django.urls import reverse

from notifications import planning, sending
from notifications.models import MessageTemplate, Notification, Subscription
from shipments import services as shipment_services
from shipments.models import Brand

from ..conftest import event


@pytest.fixture
def third(agent):
    # With one brand of their own, a brand filter isn't shown at all; with
    # two, it is, and B must not be in it.
    third = Brand.objects.create(name="Third Ltd", slug="third")
    third.staff.add(agent)
    return third


def delivered_and_sent(shipment):
    change = shipment_services.record_event(shipment_id=shipment.pk, event=event("delivered", 1)).status_change
    for pk in planning.plan_notifications(status_change_id=change.pk):
        sending.send_notification(notification_id=pk)


@pytest.fixture
def both_brands(make_shipment, other_brand):
    mine = make_shipment()
    theirs = make_shipment(for_brand=other_brand, recipient_email="b@other.example", recipient_phone="+447700900999")
    delivered_and_sent(mine)
    delivered_and_sent(theirs)
    MessageTemplate.objects.create(brand=other_brand, status="delivered", language="en", sms_text="B says hi")
    Subscription.objects.create(shipment=theirs, channel="email", address="b-sub@other.example")
    return mine, theirs


@pytest.mark.parametrize("model", ["notification", "messagetemplate", "subscription", "brandnotificationsettings"])
def test_lists_and_brand_filters_show_only_the_users_brands(
    agent_client, brand, third, other_brand, both_brands, model
):
    response = agent_client.get(reverse(f"admin:notifications_{model}_changelist"))
    assert response.status_code == 200
    html = response.content.decode()
    assert other_brand.name not in html
    assert "b@other.example" not in html and "b-sub@other.example" not in html and "B says hi" not in html
    for spec in response.context["cl"].filter_specs:
        if spec.title == "brand":
            assert sorted(pk for pk, _ in spec.lookup_choices) == sorted([brand.pk, third.pk])


def test_the_brand_choice_when_adding_lists_only_the_users_brands(agent_client, brand, other_brand):
    form = agent_client.get(reverse("admin:notifications_messagetemplate_add")).context["adminform"].form
    assert list(form.fields["brand"].queryset) == [brand]
    settings_form = agent_client.get(reverse("admin:notifications_brandnotificationsettings_add"))
    assert list(settings_form.context["adminform"].form.fields["brand"].queryset) == [brand]


def test_a_template_for_another_brand_is_refused(agent_client, other_brand):
    response = agent_client.post(
        reverse("admin:notifications_messagetemplate_add"),
        {"brand": str(other_brand.pk), "status": "delivered", "language": "en", "sms_text": "Hijacked"},
    )
    assert response.status_code == 200
    assert "brand" in response.context["adminform"].form.errors
    assert not MessageTemplate.objects.filter(brand=other_brand).exists()


def test_another_brands_message_and_its_attempts_stay_hidden(agent_client, both_brands):
    _mine, theirs = both_brands
    theirs_pk = Notification.objects.filter(shipment=theirs).values_list("pk", flat=True).first()
    response = agent_client.get(reverse("admin:notifications_notification_change", args=[theirs_pk]))
    assert response.status_code == 302  # the admin's answer for an object outside the queryset
