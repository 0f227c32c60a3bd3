"""How a brand dresses its customer-facing pages: the tracking page, the
look-up and the notification pages all read it from here."""

from __future__ import annotations

import re

from .models import Brand
from .phones import readable_phone

SAFE_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")
DEFAULT_PRIMARY, DEFAULT_ACCENT = "#1d4ed8", "#0f766e"


def safe_colour(value: str, default: str) -> str:
    """Brand colours go into a style element, so only #rrggbb gets there."""
    return value if value and SAFE_COLOUR.match(value) else default


def brand_context(brand: Brand) -> dict:
    """What every branded public page needs of its brand."""
    return {
        "brand": brand,
        "primary_colour": safe_colour(brand.primary_colour, DEFAULT_PRIMARY),
        "accent_colour": safe_colour(brand.accent_colour, DEFAULT_ACCENT),
        "support_phone": readable_phone(brand.support_phone),
    }
