from django import template

register = template.Library()


@register.filter
def get(mapping, key):
    return mapping.get(key)


@register.filter
def percent(value):
    """A rate from 0 to 1 as a percentage; a dash when it has no denominator."""
    return "—" if value is None else f"{value * 100:.1f}%"
