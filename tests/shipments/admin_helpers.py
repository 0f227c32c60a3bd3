"""Posting the admin's own forms back, as a browser would: what a change
page rendered, with the given fields changed."""

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission


def brand_staff(brand, username="agent", apps=("shipments", "notifications")):
    """A support agent: staff, a member of this brand, with every model
    permission of these apps (what a brand's agent is given)."""
    user = get_user_model().objects.create_user(username, f"{username}@example.com", "pw", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(content_type__app_label__in=apps))
    brand.staff.add(user)
    return user


def _form_fields(form) -> dict:
    data = {}
    for bound in form:
        value = bound.value()
        widget = bound.field.widget
        if isinstance(bound.field, forms.FileField):
            continue
        if isinstance(widget, forms.MultiWidget):
            parts = value if isinstance(value, (list, tuple)) else widget.decompress(value)
            for index, part in enumerate(parts):
                data[f"{bound.html_name}_{index}"] = "" if part is None else str(part)
        elif isinstance(value, bool) or isinstance(bound.field, forms.BooleanField):
            if value:
                data[bound.html_name] = "on"
        elif isinstance(value, (list, tuple)):
            data[bound.html_name] = [str(item) for item in value]
        else:
            data[bound.html_name] = "" if value is None else str(value)
    return data


def change_form_data(response, **changes) -> dict:
    """The POST a change (or add) page would send, inlines included, with
    these fields set instead."""
    context = response.context
    data = _form_fields(context["adminform"].form)
    for inline in context["inline_admin_formsets"]:
        formset = inline.formset
        data.update(_form_fields(formset.management_form))
        for form in formset.forms:
            data.update(_form_fields(form))
    data.update(changes)
    return data


def add_inline_form(data: dict, prefix: str, **fields) -> dict:
    """One more form in the inline formset with this prefix."""
    index = int(data[f"{prefix}-TOTAL_FORMS"])
    data[f"{prefix}-TOTAL_FORMS"] = str(index + 1)
    for name, value in fields.items():
        data[f"{prefix}-{index}-{name}"] = value
    return data
