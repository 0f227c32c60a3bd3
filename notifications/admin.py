from datetime import timedelta

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.db import transaction
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils import timezone
from django.utils.csp import CSP
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.views.decorators.csp import csp_override

from shipments.alert_models import ContactTopic
from shipments.labels import STATUS_CHOICES
from shipments.models import Shipment
from tracking_portal.admin_scoping import BrandScoped, BrandScopedAdmin, VisibleBrandsFilter, register_brand_path

from . import alert_messages, content, rules, sending, tasks
from .models import (
    PROACTIVE_TOPIC_CHOICES,
    WEBHOOK_NOTICE_CHOICES,
    BrandNotificationSettings,
    MessageTemplate,
    Notification,
    SmsOptOut,
    Subscription,
    WebhookAttempt,
)

for _model, _path in [
    (Notification, "shipment__brand"),
    (Subscription, "shipment__brand"),
    (WebhookAttempt, "notification__shipment__brand"),
    (BrandNotificationSettings, "brand"),
    (MessageTemplate, "brand"),
]:
    register_brand_path(_model, _path)


class WebhookAttemptInline(BrandScoped, admin.TabularInline):
    model = WebhookAttempt
    fields = ["attempted_at", "status_code", "succeeded", "duration_ms", "error", "response_body"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class ShipmentNotificationInline(BrandScoped, admin.TabularInline):
    """The messages a shipment caused, on its admin page, so that support
    sees what the customer was told (tracking_portal/admin.py puts it
    there: neither app imports the other's admin)."""

    model = Notification
    fk_name = "shipment"
    fields = ["created_at", "change", "channel", "recipient", "state", "attempts", "sent_at", "last_error"]
    readonly_fields = fields
    ordering = ["-created_at", "-id"]
    extra = 0
    can_delete = False
    show_change_link = True
    verbose_name_plural = _("Messages sent (newest first)")

    @admin.display(description=_("About"))
    def change(self, obj):
        return obj.about

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("status_change", "notice")

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Notification)
class NotificationAdmin(BrandScopedAdmin):
    """The log of every message: what was sent to whom, when, and what the
    provider said. Failed ones can be sent again."""

    list_display = [
        "created_at",
        "shipment",
        "channel",
        "recipient",
        "status",
        "state_badge",
        "attempts",
        "next_attempt_at",
        "sent_at",
        "short_error",
    ]
    list_filter = [
        "state",
        "channel",
        "status_change__new_status",
        "notice__kind",
        ("shipment__brand", VisibleBrandsFilter),
        "created_at",
    ]
    search_fields = ["=shipment__tracking_number", "=recipient", "=provider_message_id"]
    search_help_text = _("Tracking number, phone, email or provider message id (exact).")
    list_select_related = ["shipment", "status_change", "notice"]
    show_full_result_count = False
    date_hierarchy = "created_at"
    actions = ["retry"]
    inlines = [WebhookAttemptInline]
    fields = [
        "shipment",
        "status_change",
        "notice",
        "channel",
        "recipient",
        "language",
        "state",
        "attempts",
        "next_attempt_at",
        "lease_until",
        "provider_message_id",
        "subject",
        "body",
        "segments",
        "last_error",
        "created_at",
        "sent_at",
        "delivered_at",
        "failed_at",
        "requeued_at",
    ]
    readonly_fields = fields

    @admin.display(description=_("About"), ordering="status_change__new_status")
    def status(self, obj):
        return obj.about

    @admin.display(description=_("State"), ordering="state")
    def state_badge(self, obj):
        return format_html('<span class="notification-state state-{}">{}</span>', obj.state, obj.get_state_display())

    @admin.display(description=_("Last error"))
    def short_error(self, obj):
        return (obj.last_error[:80] + "…") if len(obj.last_error) > 80 else obj.last_error

    @admin.action(description=_("Retry the selected failed notifications"))
    def retry(self, request, queryset):
        requeued = sending.retry_failed(notification_ids=queryset.values_list("pk", flat=True))
        transaction.on_commit(lambda: tasks.enqueue_sends(requeued))
        skipped = queryset.exclude(pk__in=requeued).count()
        if requeued:
            messages.success(request, _("%(n)d notification(s) queued again.") % {"n": len(requeued)})
        if skipped:
            messages.warning(request, _("%(n)d were not failed and were left as they are.") % {"n": skipped})

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class BrandNotificationSettingsForm(forms.ModelForm):
    sms_statuses = forms.MultipleChoiceField(
        choices=STATUS_CHOICES, widget=forms.CheckboxSelectMultiple, required=False, label=_("SMS on")
    )
    email_statuses = forms.MultipleChoiceField(
        choices=STATUS_CHOICES, widget=forms.CheckboxSelectMultiple, required=False, label=_("Email on")
    )
    webhook_statuses = forms.MultipleChoiceField(
        choices=STATUS_CHOICES, widget=forms.CheckboxSelectMultiple, required=False, label=_("Webhook on")
    )
    webhook_notices = forms.MultipleChoiceField(
        choices=WEBHOOK_NOTICE_CHOICES,
        widget=forms.CheckboxSelectMultiple,
        required=False,
        label=_("Webhook also on"),
    )
    alert_sms = forms.MultipleChoiceField(
        choices=PROACTIVE_TOPIC_CHOICES,
        widget=forms.CheckboxSelectMultiple,
        required=False,
        label=_("SMS when an alert opens"),
    )
    alert_email = forms.MultipleChoiceField(
        choices=PROACTIVE_TOPIC_CHOICES,
        widget=forms.CheckboxSelectMultiple,
        required=False,
        label=_("Email when an alert opens"),
    )
    # Left empty, the default threshold (a form posted before the setting
    # existed must still save).
    eta_change_minutes = forms.IntegerField(
        min_value=5,
        max_value=24 * 60,
        required=False,
        label=_("Minutes the window must move"),
        help_text=BrandNotificationSettings._meta.get_field("eta_change_minutes").help_text,
    )

    def clean_eta_change_minutes(self):
        value = self.cleaned_data.get("eta_change_minutes")
        return value if value is not None else BrandNotificationSettings._meta.get_field("eta_change_minutes").default

    class Meta:
        model = BrandNotificationSettings
        fields = [
            "brand",
            "notify_recipient",
            "sms_statuses",
            "email_statuses",
            "webhook_statuses",
            "webhook_notices",
            "alert_sms",
            "alert_email",
            "eta_sms",
            "eta_email",
            "eta_change_minutes",
        ]


@admin.register(BrandNotificationSettings)
class BrandNotificationSettingsAdmin(BrandScopedAdmin):
    form = BrandNotificationSettingsForm
    list_display = ["brand", "notify_recipient", "sms_on", "email_on", "webhook_on", "alerts_on"]

    @admin.display(description=_("SMS on"))
    def sms_on(self, obj):
        return ", ".join(obj.sms_statuses)

    @admin.display(description=_("Email on"))
    def email_on(self, obj):
        return ", ".join(obj.email_statuses)

    @admin.display(description=_("Webhook on"))
    def webhook_on(self, obj):
        return ", ".join(obj.webhook_statuses)

    @admin.display(description=_("Alerts told by SMS / email"))
    def alerts_on(self, obj):
        return f"{', '.join(obj.alert_sms) or '-'} / {', '.join(obj.alert_email) or '-'}"


def sample_shipment(brand) -> Shipment:
    """A made-up parcel to preview templates with, never a real customer's."""
    return Shipment(
        brand=brand,
        tracking_number="LM123456",
        recipient_name="Ada Lovelace",
        recipient_language=brand.default_language,
        public_token="preview-token",
    )


# The made-up new time a running-late template is previewed with.
PREVIEW_DELAY = timedelta(hours=3)


@admin.register(MessageTemplate)
class MessageTemplateAdmin(BrandScopedAdmin):
    list_display = ["brand", "status", "language", "sms_preview"]
    list_filter = [("brand", VisibleBrandsFilter), "status", "language"]
    readonly_fields = ["placeholders", "preview"]
    fields = ["brand", "status", "language", "sms_text", "email_subject", "email_text", "placeholders", "preview"]

    @admin.display(description=_("Placeholders"))
    def placeholders(self, obj):
        names = "$first_name, $brand, $tracking_number, $status, $link"
        if obj.status == ContactTopic.LATE:
            return _("%(names)s, $window (a sentence with the new time, or saying one will follow)") % {"names": names}
        return names

    def _texts(self, obj):
        shipment = sample_shipment(obj.brand)
        window = ""
        if obj.status == ContactTopic.LATE:
            window = alert_messages.window_text(shipment, obj.language, timezone.now() + PREVIEW_DELAY)
        return content.render_texts(shipment, obj.status, obj.language, obj, window=window)

    @admin.display(description=_("SMS"))
    def sms_preview(self, obj):
        return self._texts(obj).sms[:80]

    @admin.display(description=_("Preview"))
    def preview(self, obj):
        if not obj.pk:
            return _("Save to see a preview.")
        texts = self._texts(obj)
        sms = rules.prepare_sms(texts.sms)
        return format_html(
            '<div class="template-preview"><h4>{}</h4><pre>{}</pre><p>{}</p>'
            "<h4>{}</h4><p><strong>{}</strong></p><pre>{}</pre>"
            '<p><a href="{}" target="_blank" rel="noopener">{}</a></p></div>',
            _("SMS"),
            sms.text,
            _("%(n)d segment(s), %(enc)s") % {"n": sms.segments, "enc": sms.encoding},
            _("Email"),
            texts.subject,
            texts.email,
            reverse("admin:notifications_messagetemplate_email_preview", args=[obj.pk]),
            _("Open the email as the customer sees it"),
        )

    def get_urls(self):
        return [
            path(
                "<int:pk>/email-preview/",
                self.admin_site.admin_view(self.email_preview_view),
                name="notifications_messagetemplate_email_preview",
            ),
            *super().get_urls(),
        ]

    def email_preview_view(self, request, pk):
        template = get_object_or_404(self.get_queryset(request).select_related("brand"), pk=pk)
        return email_preview(template, self._texts(template))


# An email's HTML carries its styles inline, as mail clients need; this one
# page allows them (and the brand's logo from its own host).
@csp_override(
    {
        "default-src": [CSP.NONE],
        "style-src": [CSP.UNSAFE_INLINE],
        "img-src": [CSP.SELF, "https:", "data:"],
        "frame-ancestors": [CSP.SELF],
    }
)
def email_preview(template: MessageTemplate, texts) -> HttpResponse:
    shipment = sample_shipment(template.brand)
    html = content.email_html(
        shipment=shipment,
        subject=texts.subject,
        text=texts.email,
        unsubscribe=settings.PUBLIC_BASE_URL + "/unsubscribe/preview/",
        language=template.language,
    )
    return HttpResponse(html)


@admin.register(Subscription)
class SubscriptionAdmin(BrandScopedAdmin):
    list_display = ["shipment", "channel", "address", "source", "active", "created_at", "unsubscribed_at"]
    list_filter = ["channel", "source", "active", ("shipment__brand", VisibleBrandsFilter)]
    search_fields = ["=shipment__tracking_number", "=address"]
    list_select_related = ["shipment"]
    readonly_fields = ["shipment", "channel", "address", "source", "created_at", "unsubscribed_at"]

    def has_add_permission(self, request):
        return False


@admin.register(SmsOptOut)
class SmsOptOutAdmin(admin.ModelAdmin):
    """STOP replies cover every brand, so only superusers see the list."""

    list_display = ["phone", "created_at"]
    search_fields = ["=phone"]

    def has_module_permission(self, request):
        return request.user.is_superuser

    def has_view_permission(self, request, obj=None):
        return request.user.is_superuser

    def has_add_permission(self, request):
        return request.user.is_superuser

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser
