"""The portal's short day and moment in the active language (shipments.dates)."""

from django import template
from django.template.defaultfilters import date

from shipments.dates import moment_format

register = template.Library()


@register.filter
def short_moment(value):
    """ "Thu 26 Nov, 09:00", "jue 26 nov, 09:00": in the time zone active."""
    return date(value, moment_format())
