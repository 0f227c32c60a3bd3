"""Drivers and their routes in the admin. A stop's parcel is always one of
the brand of the route's driver, and every change of a route's stops is
announced to the pages of the parcels that were and are on it."""

from __future__ import annotations

from django.contrib import admin
from django.db import transaction
from django.db.models import Count
from django.forms.models import BaseInlineFormSet
from django.utils.translation import gettext_lazy as _

from tracking_portal.admin_scoping import BrandScoped, BrandScopedAdmin, VisibleBrandsFilter, model_fields

from . import edits
from .models import Driver, Route, Stop


@admin.register(Driver)
class DriverAdmin(BrandScopedAdmin):
    list_display = ["ref", "name", "brand", "last_position_at"]
    list_filter = [("brand", VisibleBrandsFilter)]
    search_fields = ["=ref", "name"]
    list_select_related = ["brand"]
    readonly_fields = ["last_lat", "last_lng", "last_heading_deg", "last_speed_mps", "last_position_at"]

    def get_readonly_fields(self, request, obj=None):
        # A driver's routes and stops are the brand's parcels: the driver
        # stays with the brand.
        fields = list(super().get_readonly_fields(request, obj))
        return [*fields, "brand"] if obj else fields

    def save_model(self, request, obj, form, change):
        edits.edit_driver(driver=obj, fields=model_fields(form) if change else [], user=request.user)

    def delete_model(self, request, obj):
        with transaction.atomic():
            for route in obj.routes.all():
                edits.delete_route(route=route, user=request.user)
            obj.delete()


class StopFormSet(BaseInlineFormSet):
    """A stop's parcel is one of the brand of the route's driver."""

    def clean(self):
        super().clean()
        route = self.instance
        brand_id = route.driver.brand_id if route.driver_id else None
        for form in self.forms:
            if form in self.deleted_forms or not hasattr(form, "cleaned_data"):
                continue
            shipment = form.cleaned_data.get("shipment")
            if shipment is not None and brand_id is not None and shipment.brand_id != brand_id:
                form.add_error("shipment", _("This parcel is not one of the brand of the route's driver."))


class StopInline(BrandScoped, admin.TabularInline):
    model = Stop
    formset = StopFormSet
    fields = ["sequence", "shipment", "completed_at"]
    raw_id_fields = ["shipment"]
    extra = 0
    ordering = ["sequence"]


@admin.register(Route)
class RouteAdmin(BrandScopedAdmin):
    list_display = ["driver", "date", "stop_count"]
    list_filter = ["date", ("driver__brand", VisibleBrandsFilter)]
    search_fields = ["=driver__ref"]
    list_select_related = ["driver"]
    inlines = [StopInline]

    def save_formset(self, request, form, formset, change):
        if formset.model is not Stop:
            return super().save_formset(request, form, formset, change)
        stops = formset.save(commit=False)
        if stops or formset.deleted_objects or form.has_changed():
            edits.edit_route_stops(route=form.instance, save=stops, delete=formset.deleted_objects, user=request.user)
        formset.save_m2m()

    def delete_model(self, request, obj):
        edits.delete_route(route=obj, user=request.user)

    def delete_queryset(self, request, queryset):
        with transaction.atomic():
            for route in queryset:
                edits.delete_route(route=route, user=request.user)

    @admin.display(description=_("Stops"), ordering="stop_total")
    def stop_count(self, obj):
        return obj.stop_total

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(stop_total=Count("stops"))
