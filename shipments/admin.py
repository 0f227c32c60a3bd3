import phonenumbers
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from tracking_portal.admin_scoping import BrandScoped, BrandScopedAdmin, VisibleBrandsFilter, model_fields

from . import (
    admin_alerts,  # registers the alerts' queue
    admin_columns,
    admin_forms,
    admin_media,
    admin_routes,  # noqa: F401  (registers the drivers' and routes' pages)
    admin_search,
    edits,
    keys,
    selectors,
    services,
)
from .admin_choices import ChoiceStaffActions
from .admin_secrets import BrandSecrets
from .models import ApiKey, Brand, DeliveryRating, Notice, Shipment, StatusChange, TrackingEvent


@admin.register(Brand)
class BrandAdmin(BrandSecrets, BrandScopedAdmin):
    """Brands. Secrets are never in the form: the page shows them masked,
    and a new one is shown once, on the page that answers its making.
    Only superusers add brands or change who their staff are."""

    form = admin_forms.BrandAdminForm
    list_display = ["name", "slug", "support_email", "default_language", "default_timezone"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    filter_horizontal = ["staff"]
    actions = ["rotate_inbound_webhook_secret"]
    inlines = [admin_alerts.BrandAlertSettingsInline]

    def get_fieldsets(self, request, obj=None):
        embed_secrets = ["embed_secret_masked", "embed_previous_secret_masked"]
        hooks = ["webhook_url", *(name for name in self.readonly_fields if name not in embed_secrets)]
        hooks = hooks if obj is not None else ["webhook_url"]
        widget = ["embed_origins", *embed_secrets] if obj is not None else ["embed_origins"]
        fieldsets = [
            (None, {"fields": ["name", "slug", "logo", "logo_url", "primary_colour", "accent_colour"]}),
            (
                _("Support and defaults"),
                {
                    "fields": [
                        "support_email",
                        "support_phone",
                        "support_url",
                        "default_language",
                        "default_timezone",
                        "delivery_days",
                    ]
                },
            ),
            (_("Status widget"), {"fields": widget}),
            (_("Webhooks"), {"fields": hooks}),
        ]
        if request.user.is_superuser:
            fieldsets.append((_("Staff"), {"fields": ["staff"]}))
        return fieldsets

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if obj is not None and not request.user.is_superuser:
            # What a customer tells brands apart by on the look-up's "which
            # company?" choice: a brand's staff must not make theirs look
            # like another's.
            fields += ["name", "slug"]
        return fields

    def get_prepopulated_fields(self, request, obj=None):
        return self.prepopulated_fields if obj is None or request.user.is_superuser else {}

    def has_add_permission(self, request):
        return getattr(request.user, "is_superuser", False)

    def has_delete_permission(self, request, obj=None):
        return getattr(request.user, "is_superuser", False)

    def save_model(self, request, obj, form, change):
        fields = model_fields(form)
        if obj.webhook_url and not obj.webhook_secret:
            # A webhook endpoint is never left without a signing secret.
            obj.webhook_secret = keys.new_webhook_secret()
            fields.append("webhook_secret")
            request.new_brand_secrets = [(obj, _("Webhook signing secret"), obj.webhook_secret)]
        edits.edit_brand(brand=obj, fields=fields if change else [], user=request.user)


class NoticeInline(BrandScoped, admin.TabularInline):
    """Changes other than a status change that the brand is told of."""

    model = Notice
    fields = ["created_at", "kind", "data", "processed_at"]
    readonly_fields = fields
    ordering = ["-created_at", "-id"]
    extra = 0
    can_delete = False
    verbose_name_plural = _("Notices to the brand (newest first)")

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class HasInstructionsFilter(admin.SimpleListFilter):
    title = _("delivery instructions")
    parameter_name = "has_instructions"

    def lookups(self, request, model_admin):
        return [("yes", _("Left by the customer")), ("no", _("None"))]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.exclude(delivery_instructions="")
        if self.value() == "no":
            return queryset.filter(delivery_instructions="")
        return queryset


class TrackingEventInline(BrandScoped, admin.TabularInline):
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


class StatusChangeInline(BrandScoped, admin.TabularInline):
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
class ShipmentAdmin(ChoiceStaffActions, BrandScopedAdmin):
    form = admin_forms.ShipmentAdminForm
    list_display = admin_columns.SHIPMENT_COLUMNS
    list_filter = [("brand", VisibleBrandsFilter), "status", "carrier", "substatus", HasInstructionsFilter]
    search_fields = admin_search.search_fields()
    search_help_text = admin_search.HELP_TEXT
    list_select_related = ["brand"]
    list_per_page = 50
    show_full_result_count = False
    date_hierarchy = "created_at"
    inlines = [TrackingEventInline, StatusChangeInline, NoticeInline]

    class Media:
        css = {"all": ["css/admin.css"]}

    readonly_fields = [
        "delivery_instructions",
        "delivery_instructions_at",
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
        (_("Delivery instructions"), {"fields": ["delivery_instructions", "delivery_instructions_at"]}),
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

    def save_model(self, request, obj, form, change):
        if change:
            edits.edit_shipment(
                shipment=obj, fields={name: getattr(obj, name) for name in model_fields(form)}, user=request.user
            )
        else:
            obj.save()  # a new shipment: no page of it is open yet

    def delete_model(self, request, obj):
        edits.delete_shipment(shipment=obj, user=request.user)

    def delete_queryset(self, request, queryset):
        with transaction.atomic():
            for shipment in queryset:
                edits.delete_shipment(shipment=shipment, user=request.user)

    @admin.display(description=_("Tracking link"))
    def tracking_link(self, obj):
        if not obj.pk:
            return "—"
        return format_html(
            '<a href="{}" target="_blank" rel="noopener">{}</a>', obj.get_absolute_url(), _("Open the customer's page")
        )

    def get_list_display(self, request):
        return admin_columns.shipment_columns(request)

    def get_search_results(self, request, queryset, search_term):
        phone = normalise_phone_query(search_term) if search_term else None
        if phone and phone != search_term:
            return queryset.filter(recipient_phone=phone), False
        results, may_have_duplicates = super().get_search_results(request, queryset, search_term.strip())
        return admin_search.with_compact_postcodes(queryset, results, search_term), may_have_duplicates

    def get_urls(self):
        return [
            path(
                "<int:pk>/correct/",
                self.admin_site.admin_view(self.correct_status_view),
                name="shipments_shipment_correct",
            ),
            path(
                "<int:pk>/proof/<str:kind>/",
                self.admin_site.admin_view(admin_media.admin_proof_view(self)),
                name="shipments_shipment_proof",
            ),
            *self.choice_urls(),
            *super().get_urls(),
        ]

    def correct_status_view(self, request, pk):
        shipment = get_object_or_404(self.get_queryset(request), pk=pk)
        if not self.has_change_permission(request, shipment):
            raise PermissionDenied
        form = admin_forms.StatusCorrectionForm(request.POST or None)
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
    list_display = ["shipment", "status", "occurred_at", "received_at", "source", "carrier_code", "description"]
    list_filter = ["status", "source", ("shipment__brand", VisibleBrandsFilter)]
    search_fields = ["=shipment__tracking_number", "=external_id", "=carrier_code"]
    list_select_related = ["shipment"]
    show_full_result_count = False


@admin.register(StatusChange)
class StatusChangeAdmin(AppendOnlyAdmin):
    list_display = ["shipment", "old_status", "new_status", "substatus", "created_at", "changed_by", "processed_at"]
    list_filter = ["new_status", ("shipment__brand", VisibleBrandsFilter)]
    search_fields = ["=shipment__tracking_number"]
    list_select_related = ["shipment", "changed_by"]
    show_full_result_count = False


@admin.register(DeliveryRating)
class DeliveryRatingAdmin(BrandScopedAdmin):
    list_display = ["shipment", "score", "comment", "created_at"]
    list_filter = ["score", ("shipment__brand", VisibleBrandsFilter)]
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
    list_filter = [("brand", VisibleBrandsFilter), ("revoked_at", admin.EmptyFieldListFilter)]
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
