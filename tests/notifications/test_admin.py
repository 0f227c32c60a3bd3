import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from notifications import planning, sending
from notifications.models import BrandNotificationSettings, MessageTemplate, Notification, State
from shipments import services as shipment_services

from ..conftest import event


@pytest.fixture
def admin_client(client, db):
    user = get_user_model().objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(user)
    return client


@pytest.fixture
def staff_client(client, brand):
    user = get_user_model().objects.create_user("agent", "agent@example.com", "pw", is_staff=True)
    from django.contrib.auth.models import Permission

    user.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="notifications", codename__startswith="view_")
    )
    brand.staff.add(user)
    client.force_login(user)
    return client


def sent(shipment):
    change = shipment_services.record_event(shipment_id=shipment.pk, event=event("delivered", 1)).status_change
    for pk in planning.plan_notifications(status_change_id=change.pk):
        sending.send_notification(notification_id=pk)
    return Notification.objects.filter(shipment=shipment)


def test_the_log_lists_sent_messages(admin_client, shipment, django_assert_max_num_queries):
    sent(shipment)
    with django_assert_max_num_queries(12):
        response = admin_client.get(reverse("admin:notifications_notification_changelist"))
    assert response.status_code == 200
    html = response.content.decode()
    assert "+447700900123" in html and "ada@example.com" in html
    assert "state-sent" in html


def test_staff_see_only_their_brands_messages(staff_client, make_shipment, other_brand):
    mine = make_shipment()
    theirs = make_shipment(for_brand=other_brand, recipient_phone="+447700900999", recipient_email="x@other.example")
    sent(mine), sent(theirs)
    response = staff_client.get(reverse("admin:notifications_notification_changelist"))
    html = response.content.decode()
    assert "ada@example.com" in html
    assert "x@other.example" not in html and "+447700900999" not in html
    theirs_pk = Notification.objects.filter(shipment=theirs).first().pk
    assert staff_client.get(reverse("admin:notifications_notification_change", args=[theirs_pk])).status_code in (
        302,
        404,
    )


def test_retry_requeues_failed_notifications_and_sends_them(
    admin_client, shipment, eager_celery, memory_sms, django_capture_on_commit_callbacks
):
    rows = sent(shipment)
    memory_sms.clear()
    failed = rows.get(channel="sms")
    Notification.objects.filter(pk=failed.pk).update(state=State.FAILED, last_error="Twilio 500")
    email = rows.get(channel="email")
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            reverse("admin:notifications_notification_changelist"),
            {"action": "retry", "_selected_action": [failed.pk, email.pk]},
            follow=True,
        )
    assert response.status_code == 200
    failed.refresh_from_db()
    assert failed.state == State.SENT
    assert len(memory_sms) == 1
    assert Notification.objects.get(pk=email.pk).state == State.SENT


def test_brand_settings_are_checkboxes_of_statuses(admin_client, brand):
    response = admin_client.post(
        reverse("admin:notifications_brandnotificationsettings_add"),
        {"brand": brand.pk, "notify_recipient": "on", "sms_statuses": ["delivered"], "email_statuses": []},
    )
    assert response.status_code == 302
    saved = BrandNotificationSettings.objects.get(brand=brand)
    assert (saved.sms_statuses, saved.email_statuses, saved.webhook_statuses) == (["delivered"], [], [])


def test_a_template_shows_a_preview_with_made_up_data(admin_client, brand, shipment):
    template = MessageTemplate.objects.create(
        brand=brand, status="delivered", language="de", sms_text="Hallo $first_name – $tracking_number ist da"
    )
    response = admin_client.get(reverse("admin:notifications_messagetemplate_change", args=[template.pk]))
    html = response.content.decode()
    assert "Hallo Ada - LM123456 ist da" in html
    assert "1 segment(s), GSM-7" in html
    assert "Ihr Paket wurde zugestellt" in html  # default subject in German
    preview = admin_client.get(reverse("admin:notifications_messagetemplate_email_preview", args=[template.pk]))
    assert preview.status_code == 200
    assert "Ihr Paket wurde zugestellt" in preview.content.decode()
    assert "unsafe-inline" in preview["Content-Security-Policy"]
    assert shipment.recipient_email not in preview.content.decode()


def test_opt_outs_are_for_superusers_only(staff_client):
    assert staff_client.get(reverse("admin:notifications_smsoptout_changelist")).status_code == 403


def test_the_shipment_page_lists_the_messages_it_caused(admin_client, shipment, make_shipment):
    rows = sent(shipment)
    others = sent(make_shipment())
    response = admin_client.get(reverse("admin:shipments_shipment_change", args=[shipment.pk]))
    html = response.content.decode()
    assert "Messages sent (newest first)" in html
    for row in rows:
        assert reverse("admin:notifications_notification_change", args=[row.pk]) in html
    for row in others:
        assert reverse("admin:notifications_notification_change", args=[row.pk]) not in html


def test_brand_settings_choose_the_alert_messages_and_the_webhook_notices(admin_client, brand):
    add = reverse("admin:notifications_brandnotificationsettings_add")
    html = admin_client.get(add).content.decode()
    assert 'name="alert_sms" value="late"' in html and 'name="alert_email" value="missed_scan"' in html
    assert 'name="webhook_notices" value="alert_opened"' in html
    assert 'value="customer_contacted"' not in html  # not a webhook event
    response = admin_client.post(
        add,
        {
            "brand": brand.pk,
            "notify_recipient": "on",
            "alert_sms": ["missed_scan"],
            "alert_email": ["late", "missed_scan"],
            "webhook_notices": ["alert_opened"],
        },
    )
    assert response.status_code == 302
    saved = BrandNotificationSettings.objects.get(brand=brand)
    assert (saved.alert_sms, saved.alert_email, saved.webhook_notices) == (
        ["missed_scan"],
        ["late", "missed_scan"],
        ["alert_opened"],
    )
    listed = admin_client.get(reverse("admin:notifications_brandnotificationsettings_changelist"))
    assert "missed_scan / late, missed_scan" in listed.content.decode()
    refused = admin_client.post(
        reverse("admin:notifications_brandnotificationsettings_change", args=[saved.pk]),
        {"brand": brand.pk, "alert_sms": ["looking_into_it"], "webhook_notices": ["customer_contacted"]},
    )
    assert refused.status_code == 200  # the form again, with its errors
    assert "Select a valid choice" in refused.content.decode()


def test_the_template_form_offers_the_alert_topics_and_previews_the_late_message(admin_client, brand):
    add = reverse("admin:notifications_messagetemplate_add")
    html = admin_client.get(add).content.decode()
    assert '<optgroup label="Alert messages">' in html
    for topic in ("late", "missed_scan", "looking_into_it", "redelivery"):
        assert f'<option value="{topic}">' in html
    response = admin_client.post(
        add, {"brand": brand.pk, "status": "late", "language": "es", "sms_text": "$first_name: retraso. $window"}
    )
    assert response.status_code == 302
    template = MessageTemplate.objects.get(brand=brand, status="late")
    html = admin_client.get(reverse("admin:notifications_messagetemplate_change", args=[template.pk])).content.decode()
    assert "Ada: retraso. Nueva hora prevista:" in html
    assert "$window" in html  # named among the placeholders
    assert "Tu paquete va con retraso" in html  # the default subject, in Spanish
    preview = admin_client.get(reverse("admin:notifications_messagetemplate_email_preview", args=[template.pk]))
    assert preview.status_code == 200 and "Nueva hora prevista:" in preview.content.decode()
    duplicate = admin_client.post(add, {"brand": brand.pk, "status": "late", "language": "es"})
    assert duplicate.status_code == 200  # one template per topic and language
    assert MessageTemplate.objects.filter(brand=brand, status="late").count() == 1
