"""The "Needs attention" queue: the alerts in the admin, open ones by
default and oldest first, scoped to the staff user's brands like
everything else.

An alert's page shows its facts, its shipment and its audit trail, with a
form for each thing staff do with it (take it, a note, a message to the
customer, a resolution). Each is a POST of its own, to an alert looked up
in the user's own brands (another brand's is a 404, whatever is asked of
it) by a user with the change permission (view-only staff read, nothing
more); what it does is shipments.alert_work's.
"""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import OuterRef, Subquery
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.text import Truncator
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST

from tracking_portal.admin_scoping import BrandScoped, BrandScopedAdmin, VisibleBrandsFilter, register_brand_path

from . import admin_alert_forms as forms
from . import admin_search, alert_work
from .alert_models import ActivityAction, ContactTopic, Resolution
from .models import Alert, AlertActivity, AlertState, BrandAlertSettings

register_brand_path(Alert, "shipment__brand")
register_brand_path(AlertActivity, "alert__shipment__brand")
register_brand_path(BrandAlertSettings, "brand")

# A bulk action on "all N selected" works through this many at most, so
# one click cannot hold the database for minutes.
BULK_LIMIT = 200


class StateFilter(admin.SimpleListFilter):
    """Open alerts unless asked otherwise: the queue is what is left to do."""

    title = _("state")
    parameter_name = "state"
    ALL = "all"

    def lookups(self, request, model_admin):
        return [*AlertState.choices, (self.ALL, _("All"))]

    def value(self):
        return super().value() or AlertState.OPEN

    def choices(self, changelist):
        for value, label in self.lookup_choices:
            yield {
                "selected": self.value() == str(value),
                "query_string": changelist.get_query_string({self.parameter_name: value}),
                "display": label,
            }

    def queryset(self, request, queryset):
        if self.value() == self.ALL:
            return queryset
        return queryset.filter(state=self.value())


class AssignedFilter(admin.SimpleListFilter):
    title = _("assigned to")
    parameter_name = "assigned"

    def lookups(self, request, model_admin):
        return [("me", _("Me")), ("nobody", _("Nobody"))]

    def queryset(self, request, queryset):
        if self.value() == "me":
            return queryset.filter(assigned_to=request.user)
        if self.value() == "nobody":
            return queryset.filter(assigned_to=None)
        return queryset


class BrandAlertSettingsInline(BrandScoped, admin.StackedInline):
    """A brand's own alert thresholds, on the brand's page; without a row
    the defaults hold."""

    model = BrandAlertSettings
    extra = 1
    max_num = 1
    can_delete = False
    verbose_name_plural = _("Alert thresholds (empty: the defaults)")


def age(alert: Alert, now) -> str:
    """How long the alert has been open (or was, once resolved): "45 min",
    "3 h", "2 d"."""
    seconds = max(0, ((alert.resolved_at or now) - alert.opened_at).total_seconds())
    if seconds < 3600:
        return _("%(n)d min") % {"n": seconds // 60}
    if seconds < 48 * 3600:
        return _("%(n)d h") % {"n": seconds // 3600}
    return _("%(n)d d") % {"n": seconds // 86400}


# What the customer sent, as a trail row's data["problem"] says it
# (shipments.customer, shipments.choices).
PROBLEM_LABELS = {
    "not_received": _("Reported: not received"),
    "damaged": _("Reported: damaged"),
    "other": _("Reported: something else"),
    "address_note": _("Address note"),
}


def labelled(activity) -> list[AlertActivity]:
    """The trail's rows with their reason, topic and problem codes in words."""
    reasons, topics = dict(Resolution.choices), dict(ContactTopic.choices)
    rows = list(activity)
    for row in rows:
        row.reason_label = reasons.get(row.data.get("reason"), row.data.get("reason", ""))
        row.topic_label = topics.get(row.data.get("topic"), row.data.get("topic", ""))
        problem = row.data.get("problem", "")
        row.problem_label = PROBLEM_LABELS.get(problem, problem)
    return rows


def kind_badge(alert: Alert) -> str:
    return format_html('<span class="badge alert-kind alert-kind-{}">{}</span>', alert.kind, alert.get_kind_display())


@admin.register(Alert)
class AlertAdmin(BrandScopedAdmin):
    list_display = ["kind_column", "tracking_number", "brand", "age_column", "assigned_to", "latest_note"]
    list_display_links = ["kind_column"]
    list_filter = [StateFilter, "kind", ("shipment__brand", VisibleBrandsFilter), AssignedFilter]
    search_fields = admin_search.search_fields("shipment__")
    search_help_text = admin_search.HELP_TEXT
    list_select_related = ["shipment__brand", "assigned_to"]
    # "open" sorts before "resolved": with both shown, what is open comes first.
    ordering = ["state", "opened_at", "pk"]
    list_per_page = 50
    show_full_result_count = False
    actions = ["assign_to_me", "resolve_as_false_alarm"]

    class Media:
        css = {"all": ["css/admin.css"]}

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_search_results(self, request, queryset, search_term):
        results, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        return admin_search.with_compact_postcodes(queryset, results, search_term, "shipment__"), may_have_duplicates

    def get_queryset(self, request):
        latest_note = AlertActivity.objects.filter(alert=OuterRef("pk"), action=ActivityAction.NOTE).order_by(
            "-at", "-pk"
        )
        return super().get_queryset(request).annotate(latest_note_text=Subquery(latest_note.values("text")[:1]))

    def changelist_view(self, request, extra_context=None):
        return super().changelist_view(request, {"title": _("Needs attention"), **(extra_context or {})})

    @admin.display(description=_("Kind"), ordering="kind")
    def kind_column(self, obj):
        return kind_badge(obj)

    @admin.display(description=_("Tracking number"), ordering="shipment__tracking_number")
    def tracking_number(self, obj):
        url = reverse("admin:shipments_shipment_change", args=[obj.shipment_id])
        return format_html('<a href="{}">{}</a>', url, obj.shipment.tracking_number)

    @admin.display(description=_("Brand"), ordering="shipment__brand__name")
    def brand(self, obj):
        return obj.shipment.brand

    @admin.display(description=_("Age"), ordering="opened_at")
    def age_column(self, obj):
        return age(obj, timezone.now())

    @admin.display(description=_("Latest note"))
    def latest_note(self, obj):
        return Truncator(obj.latest_note_text or "").chars(80) or "—"

    # Bulk actions.

    def _bulk(self, request, queryset):
        chosen = list(queryset.filter(state=AlertState.OPEN).order_by("opened_at", "pk")[: BULK_LIMIT + 1])
        if len(chosen) > BULK_LIMIT:
            messages.warning(
                request, _("Only the oldest %(n)d were changed; run it again for the rest.") % {"n": BULK_LIMIT}
            )
        return chosen[:BULK_LIMIT]

    def _each(self, request, queryset, work) -> int:
        """Do ``work`` to each chosen alert; one that changed under our
        feet (resolved meanwhile) is skipped, not a failed page."""
        done = 0
        for alert in self._bulk(request, queryset):
            try:
                done += work(alert)
            except alert_work.Refused:
                continue
        return done

    @admin.action(description=_("Assign the selected alerts to me"), permissions=["change"])
    def assign_to_me(self, request, queryset):
        done = self._each(request, queryset, lambda alert: alert_work.assign(alert=alert, user=request.user))
        messages.success(
            request, ngettext("%(n)d alert assigned to you.", "%(n)d alerts assigned to you.", done) % {"n": done}
        )

    @admin.action(description=_("Resolve the selected alerts as a false alarm"), permissions=["change"])
    def resolve_as_false_alarm(self, request, queryset):
        done = self._each(
            request,
            queryset,
            lambda alert: alert_work.resolve(alert=alert, user=request.user, reason=Resolution.FALSE_ALARM),
        )
        messages.success(
            request,
            ngettext("%(n)d alert resolved as a false alarm.", "%(n)d alerts resolved as a false alarm.", done)
            % {"n": done},
        )

    # The alert's page and its actions.

    def get_urls(self):
        return [
            path(
                "<int:pk>/do/<slug:action>/",
                self.admin_site.admin_view(require_POST(self.action_view)),
                name="shipments_alert_do",
            ),
            *super().get_urls(),
        ]

    def _visible_alert(self, request, pk) -> Alert:
        try:
            return get_object_or_404(self.get_queryset(request).select_related("shipment__brand"), pk=int(pk))
        except ValueError:
            raise Http404 from None

    def change_view(self, request, object_id, form_url="", extra_context=None):
        alert = self._visible_alert(request, object_id)
        if not self.has_view_or_change_permission(request, alert):
            raise PermissionDenied
        if request.method != "GET":
            # Nothing is changed through the model's form: each action has
            # its own POST (action_view).
            raise PermissionDenied
        return self._render(request, alert)

    def _render(self, request, alert, status=200, **bound):
        shipment = alert.shipment
        available = alert_work.available_channels(shipment)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": _("%(kind)s on %(number)s") % {"kind": alert.get_kind_display(), "number": shipment},
            "alert": alert,
            "shipment": shipment,
            "age": age(alert, timezone.now()),
            "kind_badge": kind_badge(alert),
            # What the rule saw when it opened ("last_event_at": …), as said.
            "detail": [
                (key.replace("_", " ").capitalize(), value)
                for key, value in sorted(alert.detail.items() if isinstance(alert.detail, dict) else [])
            ],
            "activity": labelled(alert.activity.select_related("user").order_by("at", "pk")),
            "can_act": self.has_change_permission(request, alert),
            "is_open": alert.state == AlertState.OPEN,
            "assigned_to_me": alert.assigned_to_id == request.user.pk,
            "note_form": bound.get("note") or forms.NoteForm(),
            "contact_form": bound.get("contact") or forms.ContactForm(available=available),
            "resolve_form": bound.get("resolve") or forms.ResolveForm(),
            "media": self.media,
        }
        return render(request, "admin/shipments/alert/detail.html", context, status=status)

    def action_view(self, request, pk, action):
        alert = self._visible_alert(request, pk)
        if action not in ACTIONS:
            raise Http404
        if not self.has_change_permission(request, alert):
            raise PermissionDenied
        return ACTIONS[action](self, request, alert)

    def _done(self, request, alert, message, level=messages.SUCCESS):
        messages.add_message(request, level, message)
        return redirect(reverse("admin:shipments_alert_change", args=[alert.pk]))

    def _do_assign(self, request, alert):
        try:
            changed = alert_work.assign(alert=alert, user=request.user)
        except alert_work.Refused as refused:
            return self._done(request, alert, refused.message, messages.ERROR)
        return self._done(
            request, alert, _("Assigned to you.") if changed else _("It was yours already."), messages.SUCCESS
        )

    def _do_unassign(self, request, alert):
        try:
            changed = alert_work.unassign(alert=alert, user=request.user)
        except alert_work.Refused as refused:
            return self._done(request, alert, refused.message, messages.ERROR)
        return self._done(request, alert, _("Unassigned.") if changed else _("It had nobody already."))

    def _do_note(self, request, alert):
        form = forms.NoteForm(request.POST)
        if form.is_valid():
            try:
                alert_work.add_note(alert=alert, user=request.user, text=form.cleaned_data["text"])
            except alert_work.Refused as refused:
                form.add_error("text", refused.message)
            else:
                return self._done(request, alert, _("Note added."))
        return self._render(request, alert, status=400, note=form)

    def _do_contact(self, request, alert):
        form = forms.ContactForm(request.POST, available=alert_work.available_channels(alert.shipment))
        if form.is_valid():
            try:
                alert_work.contact_customer(
                    alert=alert,
                    user=request.user,
                    topic=form.cleaned_data["topic"],
                    channels=form.cleaned_data["channels"],
                )
            except alert_work.Refused as refused:
                form.add_error(None, refused.message)
            else:
                return self._done(request, alert, _("The message to the customer is on its way."))
        return self._render(request, alert, status=400, contact=form)

    def _do_resolve(self, request, alert):
        form = forms.ResolveForm(request.POST)
        if form.is_valid():
            resolved = alert_work.resolve(
                alert=alert, user=request.user, reason=form.cleaned_data["reason"], note=form.cleaned_data["note"]
            )
            if not resolved:
                return self._done(request, alert, _("This alert was resolved already."), messages.INFO)
            return self._done(request, alert, _("Resolved."))
        return self._render(request, alert, status=400, resolve=form)


ACTIONS = {
    "assign": AlertAdmin._do_assign,
    "unassign": AlertAdmin._do_unassign,
    "note": AlertAdmin._do_note,
    "contact": AlertAdmin._do_contact,
    "resolve": AlertAdmin._do_resolve,
}
