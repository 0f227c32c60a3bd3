"""What customer emails say and show (notifications/content.py)."""

import io

from django.core.files.base import ContentFile
from PIL import Image

from notifications import content


def png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4), (0, 0, 255)).save(buffer, "PNG")
    return buffer.getvalue()


def html_for(shipment):
    return content.email_html(shipment=shipment, subject="Hi", text="Body", unsubscribe="https://u/", language="en")


def test_an_uploaded_logo_is_shown_from_its_absolute_address(shipment, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    settings.PUBLIC_BASE_URL = "https://track.example.com"
    brand = shipment.brand
    brand.logo_url = "https://cdn.example.com/old.png"
    brand.logo.save("4f1c.png", ContentFile(png()), save=True)
    html = html_for(shipment)
    assert f'src="https://track.example.com/brands/{brand.slug}/logo/?v=' in html
    assert "old.png" not in html


def test_without_an_upload_the_logo_url_is_used_and_without_either_the_name(shipment):
    brand = shipment.brand
    brand.logo_url = "https://cdn.example.com/logo.png"
    assert 'src="https://cdn.example.com/logo.png"' in html_for(shipment)
    brand.logo_url = ""
    html = html_for(shipment)
    assert "<img" not in html and brand.name in html
