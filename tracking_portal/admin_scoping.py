"""What keeps support staff inside their own brands in the admin: every
list, filter, inline, choice and raw-id picker goes through here.

Superusers see everything; everyone else sees the objects of the brands
they are members of (``selectors.brands_visible_to``), and nothing of a
model this module doesn't know the brand of.

It lives with the config, which composes the admin (tracking_portal/admin.py),
so that both apps' admins build on it and neither imports the other's.
"""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.widgets import ForeignKeyRawIdWidget
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db.models import Model, QuerySet
from django.db.models.constants import LOOKUP_SEP
from django.utils.translation import gettext_lazy as _

from shipments import selectors
from shipments.models import (
    ApiKey,
    Brand,
    DeliveryRating,
    Driver,
    Notice,
    Route,
    Shipment,
    StatusChange,
    Stop,
    TrackingEvent,
)

# The lookup from each model to its brand; other apps add theirs with
# register_brand_path.
BRAND_PATHS: dict[type[Model], str] = {
    Shipment: "brand",
    Driver: "brand",
    ApiKey: "brand",
    Route: "driver__brand",
    Stop: "route__driver__brand",
    TrackingEvent: "shipment__brand",
    StatusChange: "shipment__brand",
    DeliveryRating: "shipment__brand",
    Notice: "shipment__brand",
}


def register_brand_path(model: type[Model], path: str) -> None:
    BRAND_PATHS[model] = path


def visible(queryset: QuerySet, user) -> QuerySet:
    """The part of the queryset this user may see and pick."""
    if user.is_superuser:
        return queryset
    model = queryset.model
    if model is Brand:
        return queryset.filter(pk__in=selectors.brands_visible_to(user).values("pk"))
    path = BRAND_PATHS.get(model)
    if path is None:
        # Users, and anything not tied to a brand: nothing to pick.
        return queryset.none()
    return queryset.filter(**{f"{path}__in": selectors.brands_visible_to(user).values("pk")})


class ScopedRawIdWidget(ForeignKeyRawIdWidget):
    """The raw-id input whose label is looked up in the field's own
    (scoped) queryset: another brand's id shows no label, so it leaks
    neither its tracking number nor that it exists."""

    def __init__(self, rel, admin_site, queryset: QuerySet, attrs=None, using=None):
        super().__init__(rel, admin_site, attrs=attrs, using=using)
        self.queryset = queryset

    def label_and_url_for_value(self, value):
        key = self.rel.get_related_field().name
        try:
            self.queryset.get(**{key: value})
        except (ValueError, TypeError, self.queryset.model.DoesNotExist, ValidationError):
            return "", ""
        return super().label_and_url_for_value(value)


class VisibleBrandsFilter(admin.RelatedFieldListFilter):
    """A brand filter listing only the brands the user may see."""

    def field_choices(self, field, request, model_admin):
        return [(brand.pk, str(brand)) for brand in selectors.brands_visible_to(request.user)]


class BrandScoped:
    """For ModelAdmins and inlines alike: querysets and foreign-key choices
    (raw-id fields included) limited to the user's brands."""

    def get_queryset(self, request):
        return visible(super().get_queryset(request), request.user)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        related = db_field.related_model
        queryset = kwargs.get("queryset")
        if queryset is None:
            queryset = related._default_manager.using(kwargs.get("using"))
            if related is Route:
                queryset = queryset.select_related("driver")
        kwargs["queryset"] = visible(queryset, request.user)
        if db_field.name in self.raw_id_fields:
            kwargs["widget"] = ScopedRawIdWidget(
                db_field.remote_field, self.admin_site, kwargs["queryset"], using=kwargs.get("using")
            )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if db_field.related_model is get_user_model() and not request.user.is_superuser:
            kwargs["queryset"] = db_field.related_model._default_manager.none()
        elif "queryset" not in kwargs:
            kwargs["queryset"] = visible(db_field.related_model._default_manager.all(), request.user)
        return super().formfield_for_manytomany(db_field, request, **kwargs)


def model_fields(form) -> list[str]:
    """The changed fields the model stores in its own row (not many-to-many),
    for the services the admin saves through."""
    concrete = {f.name for f in form._meta.model._meta.concrete_fields}
    return [name for name in form.changed_data if name in concrete]


def is_secret_field(name: str) -> bool:
    """Signing secrets and key hashes: masked on every page."""
    return name.endswith("_secret") or name == "key_hash"


class BrandScopedAdmin(BrandScoped, admin.ModelAdmin):
    """Support staff see and pick only the brands they belong to."""

    def lookup_allowed(self, lookup, value, request):
        # The admin lets a list be filtered by any of the model's own
        # fields from the query string; on a secret, a filter like
        # ?webhook_secret__startswith=whsec_a answers yes or no, and reads
        # the masked secret back a character at a time.
        if any(is_secret_field(part) for part in lookup.split(LOOKUP_SEP)):
            return False
        return super().lookup_allowed(lookup, value, request)


def mask_secret(secret: str) -> str:
    """``whsec_…Xy12``: enough to tell secrets apart, never enough to use one."""
    if not secret:
        return str(_("not set"))
    prefix = secret.split("_", 1)[0] + "_" if "_" in secret[:12] else ""
    return f"{prefix}…{secret[-4:]}"
