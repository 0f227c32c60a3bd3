"""The brand page's secrets: shown masked, made on a POST, and shown once,
on the page that answers it. They are never part of the form, a message or
the session."""

from __future__ import annotations

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import get_object_or_404, render
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from tracking_portal.admin_scoping import mask_secret

from . import edits


def masked(field: str, label):
    def show(self, obj):
        return self.show_secret(obj, field)

    return admin.display(description=label)(show)


class BrandSecrets:
    """For the Brand admin: every secret as a masked, read-only field, with
    a button that makes a new one."""

    readonly_fields = [
        "webhook_secret_masked",
        "webhook_previous_secret_masked",
        "inbound_webhook_secret_masked",
        "inbound_webhook_previous_secret_masked",
        "easypost_webhook_secret_masked",
        "aftership_webhook_secret_masked",
        "embed_secret_masked",
        "embed_previous_secret_masked",
    ]
    webhook_secret_masked = masked("webhook_secret", _("Webhook signing secret"))
    webhook_previous_secret_masked = masked("webhook_previous_secret", _("Previous webhook signing secret"))
    inbound_webhook_secret_masked = masked("inbound_webhook_secret", _("Inbound webhook secret"))
    inbound_webhook_previous_secret_masked = masked(
        "inbound_webhook_previous_secret", _("Previous inbound webhook secret")
    )
    easypost_webhook_secret_masked = masked("easypost_webhook_secret", _("EasyPost webhook secret"))
    aftership_webhook_secret_masked = masked("aftership_webhook_secret", _("AfterShip webhook secret"))
    embed_secret_masked = masked("embed_secret", _("Widget embed secret"))
    embed_previous_secret_masked = masked("embed_previous_secret", _("Previous widget embed secret"))

    def show_secret(self, obj, field):
        value = getattr(obj, field)
        shown = format_html("<code>{}</code>", mask_secret(value))
        if field not in edits.BRAND_SECRETS or obj.pk is None:
            return shown
        # A link to a page that asks first, rather than a button in the
        # change form, which pressing Enter in any field would press.
        return format_html(
            '{} <a class="button" href="{}">{}</a>',
            shown,
            reverse("admin:shipments_brand_new_secret", args=[obj.pk, field]),
            _("Make a new one…") if value else _("Make one…"),
        )

    def response_add(self, request, obj, post_url_continue=None):
        if getattr(request, "new_brand_secrets", None):
            return self.secrets_shown_once(request, request.new_brand_secrets)
        return super().response_add(request, obj, post_url_continue)

    def response_change(self, request, obj):
        if getattr(request, "new_brand_secrets", None):
            return self.secrets_shown_once(request, request.new_brand_secrets)
        return super().response_change(request, obj)

    def secrets_shown_once(self, request, made):
        # Rendered here rather than carried in a message, so a secret is
        # never stored anywhere but its field, not even in the session.
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "made": made,
            "title": _("New secrets"),
        }
        response = render(request, "admin/shipments/brand/secrets_made.html", context)
        response["Cache-Control"] = "no-store"
        return response

    def get_urls(self):
        return [
            path(
                "<int:pk>/new-secret/<str:field>/",
                self.admin_site.admin_view(self.new_secret_view),
                name="shipments_brand_new_secret",
            ),
            *super().get_urls(),
        ]

    def new_secret_view(self, request, pk, field):
        """GET asks whether to make the secret; POST makes it and shows it,
        this once."""
        brand = get_object_or_404(self.get_queryset(request), pk=pk)
        if not self.has_change_permission(request, brand):
            raise PermissionDenied
        if field not in edits.BRAND_SECRETS:
            raise Http404
        label = getattr(type(self), f"{field}_masked").short_description
        if request.method != "POST":
            context = {
                **self.admin_site.each_context(request),
                "opts": self.model._meta,
                "brand": brand,
                "label": label,
                "replaces": bool(getattr(brand, field)),
                "keeps_previous": bool(edits.BRAND_SECRETS[field]),
                # The widget's previous secret verifies for a day, not until
                # the next rotation (shipments/embedding.py).
                "previous_for_a_day": field == "embed_secret",
                "title": _("Make a new secret"),
            }
            return render(request, "admin/shipments/brand/new_secret_confirm.html", context)
        secret = edits.rotate_brand_secret(brand=brand, field=field, user=request.user)
        self.log_change(request, brand, [{"changed": {"fields": [field]}}])
        return self.secrets_shown_once(request, [(brand, label, secret)])

    @admin.action(description=_("Rotate the inbound webhook secret (the old one stays valid until the next rotation)"))
    def rotate_inbound_webhook_secret(self, request, queryset):
        made = []
        for brand in queryset:
            if self.has_change_permission(request, brand):
                secret = edits.rotate_brand_secret(brand=brand, field="inbound_webhook_secret", user=request.user)
                made.append((brand, _("Inbound webhook secret"), secret))
        return self.secrets_shown_once(request, made)
