"""The analytics dashboard in the admin: one brand of the staff user's, a
range of days, charts drawn on the server with their figures in tables.
Read from the rollup (analytics.report), so it answers in well under a
second for a brand of a million parcels (bench/analytics.py)."""

from __future__ import annotations

import datetime as dt

from django import forms
from django.contrib import admin
from django.http import Http404
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.translation import gettext as _t
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_safe

from shipments.alert_models import ALERT_KIND_LABELS
from shipments.selectors import brands_visible_to

from . import charts
from .metrics import brand_zone
from .report import brand_report, check_range

DEFAULT_DAYS = 30


class RangeForm(forms.Form):
    start = forms.DateField(label=_("From"), widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(label=_("To"), widget=forms.DateInput(attrs={"type": "date"}))

    def clean(self):
        data = super().clean()
        if data.get("start") and data.get("end"):
            refusal = check_range(data["start"], data["end"])
            if refusal:
                raise forms.ValidationError(refusal)
        return data


def _percent(value):
    return "—" if value is None else f"{value * 100:.1f}%"


def _charts(report: dict) -> dict:
    days = report["by_day"]
    labels = [row["day"].strftime("%d %b") for row in days]
    kinds = report["alerts_by_kind"]
    minutes = [(row["day"].strftime("%d %b"), row["ofd_to_delivered_minutes"]) for row in days]
    return {
        "rates": charts.line_chart(
            _t("On-time and first-attempt rate by day"),
            labels,
            [
                (_t("On time"), "on-time", [row["on_time_rate"] for row in days]),
                (_t("First attempt"), "first-attempt", [row["first_attempt_rate"] for row in days]),
            ],
        ),
        "alerts": charts.bar_chart(
            _t("Alerts by kind"), [(str(ALERT_KIND_LABELS.get(kind, kind)), n) for kind, n in kinds.items()]
        ),
        "median": charts.bar_chart(
            _t("Median minutes from out for delivery to delivered, by day"),
            [(label, m["median"] or 0) for label, m in minutes],
            css="bar median",
        ),
        "p90": charts.bar_chart(
            _t("p90 minutes from out for delivery to delivered, by day"),
            [(label, m["p90"] or 0) for label, m in minutes],
            css="bar p90",
        ),
    }


@require_safe
def dashboard(request):
    brands = brands_visible_to(request.user).order_by("name")
    slug = request.GET.get("brand")
    brand = brands.filter(slug=slug).first() if slug else brands.first()
    if brand is None:
        # Not one of the user's brands (or they have none): nothing to show.
        raise Http404
    today = timezone.now().astimezone(brand_zone(brand)).date()
    initial = {"start": today - dt.timedelta(days=DEFAULT_DAYS - 1), "end": today}
    given = {"start": request.GET.get("start"), "end": request.GET.get("end")}
    form = RangeForm(given if any(given.values()) else initial)
    context = {
        **admin.site.each_context(request),
        "title": _("Analytics"),
        "brands": brands,
        "brand": brand,
        "form": form,
        "ALERT_KIND_LABELS": ALERT_KIND_LABELS,
    }
    status = 200
    if form.is_valid():
        report = brand_report(brand, form.cleaned_data["start"], form.cleaned_data["end"])
        context.update(
            report=report,
            charts=_charts(report),
            alerts=[(ALERT_KIND_LABELS.get(kind, kind), n) for kind, n in report["alerts_by_kind"].items()],
            on_time=_percent(report["on_time_rate"]),
            first_attempt=_percent(report["first_attempt_rate"]),
        )
    else:
        status = 400
    return TemplateResponse(request, "admin/analytics/dashboard.html", context, status=status)


dashboard_view = admin.site.admin_view(dashboard)
