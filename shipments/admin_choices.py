"""Staff actions on a customer's delivery choice and a parcel's pickup
hold, from the shipment's admin page: cancel the choice, extend or end the
hold. Each is a page of its own with a form (CSRF, as every admin form),
scoped to the staff user's brands (another brand's parcel: 404), refused
without the right to change shipments (403), done through one service of
shipments.choices and written to the shipment's admin history."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from . import choices
from .recipients import recipient_zone


class StaffReasonForm(forms.Form):
    reason = forms.CharField(
        label=_("Reason"),
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("Kept in the shipment's history with your name."),
    )


class ExtendHoldForm(forms.Form):
    collect_by = forms.DateField(
        label=_("Collect by"), widget=forms.DateInput(attrs={"type": "date"}), input_formats=["%Y-%m-%d"]
    )


class ChoiceStaffActions:
    """Mixed into ShipmentAdmin: its pages for the choice and the hold."""

    def choice_urls(self) -> list:
        views = [
            ("choice/cancel/", self.cancel_choice_view, "shipments_shipment_cancel_choice"),
            ("hold/extend/", self.extend_hold_view, "shipments_shipment_extend_hold"),
            ("hold/end/", self.end_hold_view, "shipments_shipment_end_hold"),
        ]
        return [path(f"<int:pk>/{route}", self.admin_site.admin_view(view), name=name) for route, view, name in views]

    def _changeable(self, request, pk: int):
        # Scoped first: another brand's parcel is not found, whoever asks.
        shipment = get_object_or_404(self.get_queryset(request), pk=pk)
        if not self.has_change_permission(request, shipment):
            raise PermissionDenied
        return shipment

    def _back(self, shipment):
        return redirect(reverse("admin:shipments_shipment_change", args=[shipment.pk]))

    def _action_page(self, request, shipment, form, *, title, intro, submit, status=200):
        context = {
            **self.admin_site.each_context(request),
            "form": form,
            "shipment": shipment,
            "opts": self.model._meta,
            "title": title,
            "intro": intro,
            "submit": submit,
        }
        return render(request, "admin/shipments/shipment/choice_action.html", context, status=status)

    def _reason_action(self, request, pk, *, found, act, audit, done, missing, title, intro, submit):
        """A staff action that takes a reason: ``found(shipment)`` is what it
        acts on (None: nothing to do, said and sent nowhere), ``act`` does
        it through its service (None: done already, by another tab)."""
        shipment = self._changeable(request, pk)
        thing = found(shipment)
        if thing is None:
            messages.info(request, missing)
            return self._back(shipment)
        form = StaffReasonForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            reason = form.cleaned_data["reason"]
            acted = act(shipment_id=shipment.pk, user=request.user, reason=reason)
            if acted is None:
                messages.info(request, missing)
            else:
                self.log_change(request, shipment, f"{audit(acted)}: {reason}")
                messages.success(request, done)
            return self._back(shipment)
        status = 400 if form.is_bound else 200
        return self._action_page(
            request, shipment, form, title=title % {"t": shipment}, intro=intro(thing), submit=submit, status=status
        )

    def cancel_choice_view(self, request, pk):
        return self._reason_action(
            request,
            pk,
            found=choices.choice_of,
            act=choices.cancel_delivery_choice,
            audit=lambda choice: f"Cancelled the customer's delivery choice ({choice.kind})",
            done=_("The customer's delivery choice was cancelled and the brand told."),
            missing=_("There is no delivery choice to cancel; nothing was sent."),
            title=_("Cancel the delivery choice of %(t)s"),
            intro=lambda choice: (
                _(
                    "The customer chose: %(kind)s. Cancelling drops it from their page and the driver's manifest, "
                    "tells the brand, and lets the customer choose again."
                )
                % {"kind": choice.get_kind_display()}
            ),
            submit=_("Cancel the choice"),
        )

    def extend_hold_view(self, request, pk):
        shipment = self._changeable(request, pk)
        hold = choices.hold_of(shipment)
        if hold is None:
            messages.info(request, _("The parcel is not held at a pickup point."))
            return self._back(shipment)
        form = ExtendHoldForm(request.POST or None, initial={"collect_by": hold.collect_by})
        if request.method == "POST" and form.is_valid():
            collect_by = form.cleaned_data["collect_by"]
            today = timezone.localdate(timezone=recipient_zone(shipment))
            try:
                changed = choices.extend_pickup_hold(
                    shipment_id=shipment.pk, collect_by=collect_by, today=today, user=request.user
                )
            except choices.ChoiceInvalid as invalid:
                if str(invalid) == "no_hold":
                    messages.info(request, _("The parcel is not held at a pickup point."))
                    return self._back(shipment)
                form.add_error("collect_by", _("Choose a day after today and after the current one."))
            else:
                if changed:
                    self.log_change(request, shipment, f"Extended the pickup hold to {collect_by.isoformat()}")
                    messages.success(request, _("The parcel can now be collected until %(d)s.") % {"d": collect_by})
                else:
                    messages.info(request, _("The hold already ran to that day; nothing changed."))
                return self._back(shipment)
        return self._action_page(
            request,
            shipment,
            form,
            title=_("Extend the pickup hold of %(t)s") % {"t": shipment},
            intro=_("Waiting at %(point)s, to be collected by %(d)s.")
            % {"point": hold.pickup_point, "d": hold.collect_by or "—"},
            submit=_("Extend the hold"),
            status=400 if form.is_bound else 200,
        )

    def end_hold_view(self, request, pk):
        return self._reason_action(
            request,
            pk,
            found=choices.hold_of,
            act=choices.end_pickup_hold,
            audit=lambda hold: f"Ended the pickup hold at {hold.pickup_point}",
            done=_("The pickup hold was ended."),
            missing=_("The parcel is not held at a pickup point."),
            title=_("End the pickup hold of %(t)s"),
            intro=lambda hold: (
                _("Waiting at %(point)s. Ending the hold takes the point and the code off the customer's page.")
                % {"point": hold.pickup_point}
            ),
            submit=_("End the hold"),
        )
