import phonenumbers
from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from . import keys, selectors, services
from .models import ApiKey, Brand, DeliveryRating, Driver, Route, Shipment, StatusChange, Stop, TrackingEvent
from .statuses import STATUS_CHOICES


class BrandScopedAdmin(admin.ModelAdmin):
    """Support staff see and pick only the brands they belong to.

    ``brand_path`` is the lookup from this model to its Brand.
    """

    brand_path = "brand"

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        if request.user.is_superuser:
            return qs
        return qs.filter(**{f"{self.brand_path}__staff": request.user})

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.related_model is Brand:
            kwargs["queryset"] = selectors.brands_visible_to(request.user)
        elif db_field.related_model in (Shipment, Driver):
            kwargs["queryset"] = db_field.related_model.objects.filter(
                brand__in=selectors.brands_visible_to(request.user)
            )
        elif db_field.related_model is Route:
            kwargs["queryset"] = Route.objects.filter(
                driver__brand__in=selectors.brands_visible_to(request.user)
            ).select_related("driver")
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


@admin.register(Brand)
class BrandAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "support_email", "default_language", "default_timezone"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    filter_horizontal = ["staff"]
    actions = ["rotate_inbound_webhook_secret"]

    def get_queryset(self, request):
        return selectors.brands_visible_to(request.user)

    @admin.action(description=_("Rotate the inbound webhook secret (the old one stays valid until the next rotation)"))
    def rotate_inbound_webhook_secret(self, request, queryset):
        for brand in queryset:
            brand.inbound_webhook_previous_secret = brand.inbound_webhook_secret
            brand.inbound_webhook_secret = keys.new_webhook_secret()
            brand.save(update_fields=["inbound_webhook_secret", "inbound_webhook_previous_secret"])
        messages.success(request, _("New secrets are on each brand's page; senders should switch to them."))


class TrackingEventInline(admin.TabularInline):
    model = TrackingEvent
    fields = [
        "occurred_at",
        "status",
        "substatus",
        "carrier_code",
        "description",
        "location_city",
        "source",
        "external_id",
        "received_at",
        "corrected_by",
        "correction_reason",
    ]
    readonly_fields = fields
    ordering = selectors.TIMELINE_ORDER
    extra = 0
    can_delete = False
    show_change_link = False
    verbose_name_plural = _("Timeline (newest first)")

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("corrected_by")


class StatusChangeInline(admin.TabularInline):
    model = StatusChange
    fields = ["created_at", "old_status", "new_status", "substatus", "changed_by", "reason", "processed_at"]
    readonly_fields = fields
    ordering = ["-created_at"]
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("changed_by")


def normalise_phone_query(term: str) -> str | None:
    """'07700 900123' or '+44 7700-900123' → '+447700900123', so staff can
    search a phone number the way the caller reads it out."""
    digits = "".join(ch for ch in term if ch.isdigit() or ch == "+")
    if len(digits.lstrip("+")) < 7:
        return None
    for region in (None, "GB", "US", "DE", "ES"):
        try:
            number = phonenumbers.parse(term, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_possible_number(number):
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return None


@admin.register(Shipment)
class ShipmentAdmin(BrandScopedAdmin):
    list_display = [
        "tracking_number",
        "brand",
        "status_badge",
        "carrier",
        "order_ref",
        "recipient_name",
        "destination_city",
        "eta",
        "updated_at",
    ]
    list_filter = ["brand", "status", "carrier", "substatus"]
    search_fields = ["=tracking_number", "=order_ref", "=recipient_phone", "=recipient_email"]
    search_help_text = _("Tracking number, order reference, phone or email (exact).")
    list_select_related = ["brand"]
    list_per_page = 50
    show_full_result_count = False
    date_hierarchy = "created_at"
    inlines = [TrackingEventInline, StatusChangeInline]
    readonly_fields = [
        "status",
        "substatus",
        "status_changed_at",
        "last_event_at",
        "delivered_at",
        "version",
        "public_token",
        "tracking_link",
        "created_at",
        "updated_at",
    ]
    fieldsets = [
        (None, {"fields": ["brand", "tracking_number", "carrier", "order_ref", "tracking_link"]}),
        (
            _("Status"),
            {
                "fields": [
                    "status",
                    "substatus",
                    "status_changed_at",
                    "last_event_at",
                    "delivered_at",
                    "eta",
                    "promised_window_start",
                    "promised_window_end",
                ]
            },
        ),
        (
            _("Recipient"),
            {
                "fields": [
                    "recipient_name",
                    "recipient_phone",
                    "recipient_email",
                    "recipient_language",
                    "recipient_timezone",
                ]
            },
        ),
        (
            _("Destination"),
            {
                "classes": ["collapse"],
                "fields": [
                    "destination_line1",
                    "destination_line2",
                    "destination_city",
                    "destination_postcode",
                    "destination_country",
                    "destination_lat",
                    "destination_lng",
                ],
            },
        ),
        (
            _("Proof of delivery"),
            {"classes": ["collapse"], "fields": ["proof_received_by", "proof_photo", "proof_signature"]},
        ),
        (_("Record"), {"classes": ["collapse"], "fields": ["public_token", "version", "created_at", "updated_at"]}),
    ]

    def get_readonly_fields(self, request, obj=None):
        # A shipment stays with its brand and tracking number: the public
        # link, the API and the carriers all know it by them.
        fields = list(super().get_readonly_fields(request, obj))
        return [*fields, "brand", "tracking_number"] if obj else fields

    @admin.display(description=_("Status"), ordering="status")
    def status_badge(self, obj):
        return format_html('<span class="status status-{}">{}</span>', obj.status, obj.get_status_display())

    @admin.display(description=_("Tracking link"))
    def tracking_link(self, obj):
        if not obj.pk:
            return "—"
        return format_html(
            '<a href="{}" target="_blank" rel="noopener">{}</a>', obj.get_absolute_url(), _("Open the customer's page")
        )

    def get_search_results(self, request, queryset, search_term):
        phone = normalise_phone_query(search_term) if search_term else None
        if phone and phone != search_term:
            return queryset.filter(recipient_phone=phone), False
        return super().get_search_results(request, queryset, search_term.strip())

    def get_urls(self):
        return [
            path(
                "<int:pk>/correct/",
                self.admin_site.admin_view(self.correct_status_view),
                name="shipments_shipment_correct",
            ),
            *super().get_urls(),
        ]

    def correct_status_view(self, request, pk):
        shipment = get_object_or_404(self.get_queryset(request), pk=pk)
        if not self.has_change_permission(request, shipment):
            raise PermissionDenied
        form = StatusCorrectionForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            recorded = services.correct_status(
                shipment_id=shipment.pk,
                status=form.cleaned_data["status"],
                user=request.user,
                reason=form.cleaned_data["reason"],
            )
            if recorded.status_change:
                messages.success(request, _("Status corrected to %(s)s.") % {"s": recorded.status_change.new_status})
            else:
                messages.info(
                    request, _("The status was already %(s)s; the note is in the timeline.") % {"s": shipment.status}
                )
            return redirect(reverse("admin:shipments_shipment_change", args=[shipment.pk]))
        context = {
            **self.admin_site.each_context(request),
            "form": form,
            "shipment": shipment,
            "opts": self.model._meta,
            "title": _("Correct the status of %(t)s") % {"t": shipment},
        }
        return render(request, "admin/shipments/shipment/correct_status.html", context)


class StatusCorrectionForm(forms.Form):
    status = forms.ChoiceField(choices=STATUS_CHOICES)
    reason = forms.CharField(
        max_length=500, widget=forms.Textarea(attrs={"rows": 3}), help_text=_("Kept in the timeline with your name.")
    )


class AppendOnlyAdmin(BrandScopedAdmin):
    """Records that are history (events, status changes): staff read them;
    nobody adds, edits or deletes them here."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(TrackingEvent)
class TrackingEventAdmin(AppendOnlyAdmin):
    brand_path = "shipment__brand"
    list_display = ["shipment", "status", "occurred_at", "received_at", "source", "carrier_code", "description"]
    list_filter = ["status", "source", "shipment__brand"]
    search_fields = ["=shipment__tracking_number", "=external_id", "=carrier_code"]
    list_select_related = ["shipment"]
    show_full_result_count = False


@admin.register(StatusChange)
class StatusChangeAdmin(AppendOnlyAdmin):
    brand_path = "shipment__brand"
    list_display = ["shipment", "old_status", "new_status", "substatus", "created_at", "changed_by", "processed_at"]
    list_filter = ["new_status", "shipment__brand"]
    search_fields = ["=shipment__tracking_number"]
    list_select_related = ["shipment", "changed_by"]
    show_full_result_count = False


@admin.register(Driver)
class DriverAdmin(BrandScopedAdmin):
    list_display = ["ref", "name", "brand", "last_position_at"]
    list_filter = ["brand"]
    search_fields = ["=ref", "name"]
    list_select_related = ["brand"]
    readonly_fields = ["last_lat", "last_lng", "last_heading_deg", "last_speed_mps", "last_position_at"]


class StopInline(admin.TabularInline):
    model = Stop
    fields = ["sequence", "shipment", "completed_at"]
    raw_id_fields = ["shipment"]
    extra = 0
    ordering = ["sequence"]


@admin.register(Route)
class RouteAdmin(BrandScopedAdmin):
    brand_path = "driver__brand"
    list_display = ["driver", "date", "stop_count"]
    list_filter = ["date", "driver__brand"]
    search_fields = ["=driver__ref"]
    list_select_related = ["driver"]
    inlines = [StopInline]

    @admin.display(description=_("Stops"), ordering="stop_total")
    def stop_count(self, obj):
        return obj.stop_total

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(stop_total=Count("stops"))


@admin.register(DeliveryRating)
class DeliveryRatingAdmin(BrandScopedAdmin):
    brand_path = "shipment__brand"
    list_display = ["shipment", "score", "comment", "created_at"]
    list_filter = ["score", "shipment__brand"]
    search_fields = ["=shipment__tracking_number"]
    list_select_related = ["shipment"]
    readonly_fields = ["shipment", "score", "comment", "created_at"]

    def has_add_permission(self, request):
        return False


@admin.register(ApiKey)
class ApiKeyAdmin(BrandScopedAdmin):
    """Keys to the API. A new key is shown once, on the page that answers
    its creation; only its hash is kept. Keys are revoked, not edited."""

    list_display = ["prefix", "name", "brand", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["brand", ("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["=prefix", "name"]
    list_select_related = ["brand"]
    actions = ["revoke"]

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["brand", "name"]
        return ["brand", "name", "prefix", "created_at", "last_used_at", "revoked_at"]

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else ["brand", "prefix", "created_at", "last_used_at", "revoked_at"]

    def save_model(self, request, obj, form, change):
        if not change:
            request.new_api_key = keys.issue_key(obj)
        super().save_model(request, obj, form, change)

    def response_add(self, request, obj, post_url_continue=None):
        # Rendered here rather than carried in a message, so the key is never
        # stored anywhere, not even in the session.
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "api_key": obj,
            "raw_key": request.new_api_key,
            "title": _("New API key for %(brand)s") % {"brand": obj.brand},
        }
        return render(request, "admin/shipments/apikey/created.html", context)

    @admin.action(description=_("Revoke the selected keys"))
    def revoke(self, request, queryset):
        live = list(queryset.filter(revoked_at=None))
        for api_key in live:
            keys.revoke_api_key(api_key=api_key)
        messages.success(request, _("%(count)d keys revoked.") % {"count": len(live)})
