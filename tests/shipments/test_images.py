"""Uploads are images only, on every path (shipments/images.py): the check
itself, the admin's change form as a brand's staff member uses it (the
attack of issue 10, item 1, replayed), and the API's proof of delivery."""

import io
import re
import struct
import zlib
from html.parser import HTMLParser

import pytest
from django.contrib.auth.models import Permission
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image

from shipments import images
from shipments.images import ImageRefused, clean_image, content_type_for
from shipments.models import Shipment
from tests.shipments.api_helpers import is_problem, pointers

HTML = b"<html><body><script>fetch('/admin/auth/user/1/change/',{method:'POST'})</script></body></html>"
SCRIPT = b"document.title='pwned';"
GPS = {1: "N", 2: (51.0, 30.0, 2.5), 3: "W", 4: (0.0, 7.0, 39.0)}
STORED_NAME = re.compile(r"^proof/(photos|signatures)/\d{4}/\d{2}/[0-9a-f]{32}\.(jpg|png|webp)$")


def png(size=(40, 30), mode="RGB", colour=(200, 30, 30), **options) -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, colour).save(buffer, "PNG", **options)
    return buffer.getvalue()


def jpeg_with_gps(size=(40, 30), orientation=1) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x8825] = GPS
    buffer = io.BytesIO()
    Image.new("RGB", size, (20, 120, 200)).save(buffer, "JPEG", exif=exif.tobytes())
    return buffer.getvalue()


def jpeg_with_comment(comment: bytes) -> bytes:
    """A JPEG whose COM segment (right after SOI) carries ``comment``."""
    plain = io.BytesIO()
    Image.new("RGB", (16, 16), (0, 0, 0)).save(plain, "JPEG")
    data = plain.getvalue()
    return data[:2] + b"\xff\xfe" + struct.pack(">H", len(comment) + 2) + comment + data[2:]


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims ``width`` by ``height`` pixels and has almost no
    pixel data: decoding it would fail, so a refusal for its size shows the
    size was checked first."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * 64))


def reopened(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


# --- the check -----------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        HTML,
        SCRIPT,
        b"<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>",
        b"GIF89a" + b"\x00" * 32,
        b"\x89PNG\r\n\x1a\n" + b"\x00" * 64,  # the magic bytes the API used to trust
        b"\xff\xd8\xff\xe0" + b"\x00" * 64,
        png()[:60],  # truncated past its header
        b"",
    ],
)
def test_anything_but_a_decodable_jpeg_png_or_webp_is_refused(data):
    with pytest.raises(ImageRefused) as refused:
        clean_image(ContentFile(data, name="x.png"))
    assert refused.value.code == "not_an_image"
    assert "JPEG, PNG or WebP" in str(refused.value)


def test_other_image_formats_are_refused():
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, "GIF")
    with pytest.raises(ImageRefused, match="JPEG, PNG or WebP"):
        clean_image(ContentFile(buffer.getvalue()))


def test_html_appended_to_a_png_or_in_its_text_chunk_is_gone():
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("Comment", HTML.decode())
    polyglot = png(pnginfo=info) + HTML
    assert b"<script>" in polyglot and reopened(polyglot).format == "PNG"
    stored = clean_image(ContentFile(polyglot)).read()
    assert b"<script" not in stored and b"<html" not in stored
    assert reopened(stored).size == (40, 30)


def test_html_in_a_jpeg_comment_is_gone():
    polyglot = jpeg_with_comment(HTML) + SCRIPT
    assert reopened(polyglot).format == "JPEG"
    stored = clean_image(ContentFile(polyglot)).read()
    assert b"<script" not in stored and b"pwned" not in stored


def test_exif_and_its_gps_are_stripped_and_the_orientation_applied():
    original = jpeg_with_gps(size=(40, 30), orientation=6)
    assert reopened(original).getexif().get_ifd(0x8825) == GPS
    clean = clean_image(ContentFile(original))
    stored = clean.read()
    image = reopened(stored)
    assert b"Exif" not in stored
    assert not image.getexif() and not image.getexif().get_ifd(0x8825)
    assert image.size == (30, 40)  # turned upright: orientation 6 is a quarter turn


@pytest.mark.parametrize(
    ("data", "extension", "content_type"),
    [
        (jpeg_with_gps(), "jpg", "image/jpeg"),
        (png(), "png", "image/png"),
        (png(mode="RGBA", colour=(0, 0, 0, 0)), "png", "image/png"),
        (png(mode="P", colour=3, transparency=3), "png", "image/png"),
    ],
)
def test_stored_under_a_random_name_with_the_extension_of_what_was_written(data, extension, content_type):
    first, second = clean_image(ContentFile(data, name="door.html")), clean_image(ContentFile(data, name="door.html"))
    assert re.fullmatch(rf"[0-9a-f]{{32}}\.{extension}", first.name)
    assert first.name != second.name
    assert content_type_for(first.name) == content_type
    assert reopened(first.read()).format == {"jpg": "JPEG", "png": "PNG"}[extension]


def test_webp_stays_webp():
    buffer = io.BytesIO()
    Image.new("RGB", (20, 20), (1, 2, 3)).save(buffer, "WEBP")
    clean = clean_image(ContentFile(buffer.getvalue()))
    assert clean.name.endswith(".webp") and reopened(clean.read()).format == "WEBP"


def test_a_cmyk_jpeg_is_written_as_rgb():
    buffer = io.BytesIO()
    Image.new("CMYK", (20, 20), (0, 50, 100, 0)).save(buffer, "JPEG")
    assert reopened(clean_image(ContentFile(buffer.getvalue())).read()).mode == "RGB"


def test_more_bytes_than_the_limit_are_refused_before_decoding():
    with pytest.raises(ImageRefused) as refused:
        clean_image(ContentFile(png()), max_bytes=64)
    assert refused.value.code == "too_large"
    assert "64" in str(refused.value)


def test_more_pixels_than_the_limit_are_refused_from_the_header():
    with pytest.raises(ImageRefused) as refused:
        clean_image(ContentFile(png_header_only(6000, 5000)))
    assert refused.value.code == "too_many_pixels"
    assert "6000×5000" in str(refused.value)
    # Within the limit, the same truncated file fails to decode instead.
    with pytest.raises(ImageRefused, match="JPEG, PNG or WebP"):
        clean_image(ContentFile(png_header_only(60, 50)))


def test_a_decompression_bomb_is_refused():
    # Past twice Pillow's own limit, Pillow refuses on opening.
    with pytest.raises(ImageRefused) as refused:
        clean_image(ContentFile(png_header_only(50_000, 50_000)), max_pixels=10**10)
    assert refused.value.code == "too_many_pixels"


def test_only_image_extensions_have_a_content_type():
    assert content_type_for("proof/photos/2026/12/abc.JPG") == "image/jpeg"
    for name in ("x.html", "x.js", "x.svg", "x.png.html", "x", "png"):
        assert content_type_for(name) is None


# --- the admin: the attack replayed through the real change form -----------------


class FormFields(HTMLParser):
    """The fields of a page's form as a browser would submit them."""

    def __init__(self, form_id: str):
        super().__init__()
        self.form_id, self.inside, self.data = form_id, False, {}
        self._select = self._textarea = None
        self._multiple = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.inside = attrs.get("id") == self.form_id
        if not self.inside or ("name" not in attrs and tag != "option"):
            return
        if tag == "input" and attrs.get("type") not in ("file", "submit", "checkbox"):
            self.data[attrs["name"]] = attrs.get("value", "")
        elif tag == "input" and attrs.get("type") == "checkbox" and "checked" in attrs:
            self.data[attrs["name"]] = attrs.get("value", "on")
        elif tag == "select":
            self._select, self._multiple = attrs["name"], "multiple" in attrs
            if not self._multiple:
                self.data.setdefault(self._select, "")
        elif tag == "option" and self._select and "selected" in attrs:
            if self._multiple:
                self.data.setdefault(self._select, []).append(attrs.get("value", ""))
            else:
                self.data[self._select] = attrs.get("value", "")
        elif tag == "textarea":
            self._textarea = attrs["name"]
            self.data[self._textarea] = ""

    def handle_data(self, data):
        if self._textarea:
            self.data[self._textarea] += data

    def handle_endtag(self, tag):
        if tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None
        elif tag == "form":
            self.inside = False


def form_data(html: str, form_id: str) -> dict:
    parser = FormFields(form_id)
    parser.feed(html)
    return parser.data


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    return tmp_path


@pytest.fixture
def agent(client, django_user_model, brand):
    """A brand's support agent: staff, not superuser, allowed to change
    shipments, of this brand only."""
    user = django_user_model.objects.create_user("agent", password="pw", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=["view_shipment", "change_shipment"]))
    brand.staff.add(user)
    client.force_login(user)
    return client


def stored_files(root):
    return [path for path in root.rglob("*") if path.is_file()]


def submit_change_form(client, shipment, **files):
    url = reverse("admin:shipments_shipment_change", args=[shipment.pk])
    page = client.get(url)
    assert page.status_code == 200
    data = form_data(page.text, "shipment_form")
    assert "recipient_name" in data and "proof_received_by" in data
    return client.post(url, {**data, **files})


def test_html_and_script_uploaded_as_proof_in_the_admin_are_refused(agent, shipment, media):
    response = submit_change_form(
        agent,
        shipment,
        proof_photo=SimpleUploadedFile("x.html", HTML, content_type="text/html"),
        proof_signature=SimpleUploadedFile("x.js", SCRIPT, content_type="text/javascript"),
    )
    assert response.status_code == 200  # the form again, with its errors
    errors = response.context["adminform"].form.errors
    assert "JPEG, PNG or WebP" in errors["proof_photo"][0]
    assert "JPEG, PNG or WebP" in errors["proof_signature"][0]
    shipment.refresh_from_db()
    assert not shipment.proof_photo and not shipment.proof_signature
    assert stored_files(media) == []


def test_a_polyglot_and_a_located_photo_are_stored_clean_under_random_names(agent, shipment, media):
    polyglot = png() + HTML
    response = submit_change_form(
        agent,
        shipment,
        proof_photo=SimpleUploadedFile("door.jpg", jpeg_with_gps(), content_type="image/jpeg"),
        proof_signature=SimpleUploadedFile("sig.png.html", polyglot, content_type="image/png"),
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    shipment.refresh_from_db()
    assert STORED_NAME.match(shipment.proof_photo.name) and shipment.proof_photo.name.endswith(".jpg")
    assert STORED_NAME.match(shipment.proof_signature.name) and shipment.proof_signature.name.endswith(".png")
    photo, signature = shipment.proof_photo.read(), shipment.proof_signature.read()
    assert b"Exif" not in photo and not reopened(photo).getexif()
    assert b"<script" not in signature and b"<html" not in signature
    assert len(stored_files(media)) == 2


def test_an_image_with_too_many_pixels_is_refused_in_the_admin(agent, shipment, media):
    response = submit_change_form(
        agent, shipment, proof_photo=SimpleUploadedFile("big.png", png_header_only(6000, 5000), "image/png")
    )
    assert response.status_code == 200
    assert "6000×5000" in response.context["adminform"].form.errors["proof_photo"][0]
    assert stored_files(media) == []


def test_the_change_form_links_the_proof_through_the_admin_view(agent, shipment, media):
    submit_change_form(agent, shipment, proof_photo=SimpleUploadedFile("a.png", png(), "image/png"))
    html = agent.get(reverse("admin:shipments_shipment_change", args=[shipment.pk])).text
    assert reverse("admin:shipments_shipment_proof", args=[shipment.pk, "photo"]) in html
    assert "/media/" not in html
    assert 'accept="image/jpeg,image/png,image/webp"' in html


def test_a_brand_logo_upload_is_checked_too(admin_client, brand, media):
    url = reverse("admin:shipments_brand_change", args=[brand.pk])
    data = form_data(admin_client.get(url).text, "brand_form")
    refused = admin_client.post(url, {**data, "logo": SimpleUploadedFile("logo.html", HTML, "text/html")})
    assert refused.status_code == 200
    assert "JPEG, PNG or WebP" in refused.context["adminform"].form.errors["logo"][0]
    assert stored_files(media) == []
    accepted = admin_client.post(url, {**data, "logo": SimpleUploadedFile("logo.png", png() + HTML, "image/png")})
    assert accepted.status_code == 302
    brand.refresh_from_db()
    assert re.fullmatch(r"brands/logos/[0-9a-f]{32}\.png", brand.logo.name)
    assert b"<script" not in brand.logo.read()


# --- the API's proof of delivery -------------------------------------------------------


def deliver(api, tracking_number, **files):
    form = {"occurred_at": "2026-11-26T10:30:00Z", "external_id": "pod-1", "received_by": "Ada", **files}
    return api.client.post(f"/api/v1/shipments/{tracking_number}/proof-of-delivery", form, **api.headers())


@pytest.mark.parametrize(
    ("upload", "field"),
    [
        (SimpleUploadedFile("x.html", HTML, content_type="text/html"), "photo"),
        (SimpleUploadedFile("x.js", SCRIPT, content_type="text/javascript"), "signature"),
        # The magic bytes the API used to trust, with HTML after them.
        (SimpleUploadedFile("x.png", b"\x89PNG\r\n\x1a\n" + HTML, content_type="image/png"), "photo"),
        (SimpleUploadedFile("x.png", png(), content_type="image/jpeg"), "photo"),
    ],
)
def test_the_api_refuses_what_is_not_an_image(api, make_shipment, media, upload, field):
    make_shipment(tracking_number="LM1")
    problem = is_problem(deliver(api, "LM1", **{field: upload}), 415)
    assert f"#/{field}" in pointers(problem)
    assert stored_files(media) == []
    assert Shipment.objects.get(tracking_number="LM1").status == "pending"


def test_the_api_stores_a_polyglot_and_a_located_photo_clean(api, make_shipment, media):
    make_shipment(tracking_number="LM1")
    response = deliver(
        api,
        "LM1",
        photo=SimpleUploadedFile("door.jpg", jpeg_with_comment(HTML) + HTML, content_type="image/jpeg"),
        signature=SimpleUploadedFile("sig.png", png() + SCRIPT, content_type="application/octet-stream"),
    )
    assert response.status_code == 200, response.content
    shipment = Shipment.objects.get(tracking_number="LM1")
    assert STORED_NAME.match(shipment.proof_photo.name) and STORED_NAME.match(shipment.proof_signature.name)
    photo, signature = shipment.proof_photo.read(), shipment.proof_signature.read()
    assert b"<script" not in photo and b"pwned" not in signature


def test_the_api_strips_gps_from_a_photo(api, make_shipment, media):
    make_shipment(tracking_number="LM1")
    assert deliver(api, "LM1", photo=SimpleUploadedFile("d.jpg", jpeg_with_gps(), "image/jpeg")).status_code == 200
    photo = Shipment.objects.get(tracking_number="LM1").proof_photo.read()
    assert b"Exif" not in photo and not reopened(photo).getexif()


def test_the_api_answers_413_for_too_many_pixels_or_bytes(api, make_shipment, media, monkeypatch):
    make_shipment(tracking_number="LM1")
    big = SimpleUploadedFile("big.png", png_header_only(6000, 5000), content_type="image/png")
    problem = is_problem(deliver(api, "LM1", photo=big), 413)
    assert "#/photo" in pointers(problem) and problem["errors"][0]["code"] == "too_many_pixels"
    from shipments.api import shipments as endpoints

    monkeypatch.setattr(endpoints, "MAX_IMAGE_BYTES", 32)
    problem = is_problem(deliver(api, "LM1", signature=SimpleUploadedFile("s.png", png(), "image/png")), 413)
    assert "#/signature" in pointers(problem) and problem["errors"][0]["code"] == "too_large"
    assert stored_files(media) == []


def test_the_limits_are_the_modules_own():
    assert images.MAX_IMAGE_PIXELS <= Image.MAX_IMAGE_PIXELS
    assert images.ACCEPT == "image/jpeg,image/png,image/webp"


def test_decoding_takes_one_of_two_slots_per_process(monkeypatch):
    # A picture at the pixel limit costs a few hundred MB while decoded:
    # the decode and re-encode run holding one of the process's two slots.
    from shipments import images

    slots = images.DECODING
    free_while_decoding = []
    writable = images._writable

    def watching(image, written):
        free_while_decoding.append(slots._value)
        return writable(image, written)

    monkeypatch.setattr(images, "_writable", watching)
    assert slots._value == 2
    images.clean_image(ContentFile(png(), name="door.png"))
    assert free_while_decoding == [1]
    assert slots._value == 2
