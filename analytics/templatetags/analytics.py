from django import template

register = template.Library()


@register.filter
def get(mapping, key):
    return mapping.get(key)


@register.filter
def percent(value):
    """A rate from 0 to 1 as a percentage; a dash when it has no denominator."""
    return "—" if value is None else f"{value * 100:.1f}%"


@register.filter
def alert_counts(counts):
    """{kind: n} as "Running late 3, Stuck 1", in the kinds' own words."""
    from shipments.alert_models import ALERT_KIND_LABELS

    return ", ".join(f"{ALERT_KIND_LABELS.get(kind, kind)} {n}" for kind, n in counts.items()) or "0"
