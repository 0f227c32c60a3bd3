"""Uploaded images (proof of delivery, brand logos): what gets stored is an
image that Pillow decoded and wrote again, never the bytes that were sent.

Whatever the path (admin, API), an upload is refused unless it decodes as a
JPEG, PNG or WebP image within a byte limit and a pixel limit, the pixel
count being read from the header before any pixel is decoded. What is kept
is the first frame, turned upright by its EXIF orientation and re-encoded
without EXIF (GPS), XMP, ICC, text chunks or anything appended to the file,
under a random name with the extension of the format written.

Served (``image_response``, for the pages and the admin alike), a stored
file's type comes from that extension alone (``content_type_for``), with
``nosniff`` and a ``sandbox`` CSP, so that even bytes that are not the image
they claim to be run nothing on the portal's origin.
"""

from __future__ import annotations

import io
import threading
import uuid
from pathlib import PurePosixPath

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db.models.fields.files import FieldFile
from django.http import Http404, HttpResponse
from django.utils.translation import gettext as _
from PIL import Image, ImageOps, UnidentifiedImageError

# A phone's full-size photo or a scanned signature fits well within these.
MAX_IMAGE_BYTES = 5 * 1024 * 1024
MAX_IMAGE_PIXELS = 25_000_000
# A picture at the pixel limit takes a few hundred MB while it is decoded
# and re-encoded: at most this many at once in a process, the rest wait.
DECODING = threading.BoundedSemaphore(2)

# Pillow's format name → (extension, content type, what it is written as).
# Phones write JPEGs with a depth map or a preview as MPO: their first image
# is a JPEG like any other.
FORMATS = {
    "JPEG": ("jpg", "image/jpeg", "JPEG"),
    "MPO": ("jpg", "image/jpeg", "JPEG"),
    "PNG": ("png", "image/png", "PNG"),
    "WEBP": ("webp", "image/webp", "WEBP"),
}
# The decoders tried (the JPEG one also opens MPO): no other format's parser
# ever sees an upload.
OPENED_AS = ("JPEG", "PNG", "WEBP")
CONTENT_TYPES = {extension: content_type for extension, content_type, _written in FORMATS.values()}
ACCEPT = ",".join(sorted(set(CONTENT_TYPES.values())))

# Modes each written format keeps as they are; others are converted.
_WRITABLE_MODES = {"JPEG": {"L", "RGB"}, "PNG": {"1", "L", "LA", "RGB", "RGBA"}, "WEBP": {"RGB", "RGBA"}}
_SAVE_OPTIONS = {"JPEG": {"quality": 85}, "PNG": {}, "WEBP": {"quality": 85}}


class ImageRefused(ValueError):
    """An upload that is not kept; its message is fit to show the sender.
    ``code`` is ``too_large``, ``too_many_pixels`` or ``not_an_image``."""

    def __init__(self, message: str, *, code: str):
        super().__init__(message)
        self.code = code


def content_type_for(name: str) -> str | None:
    """The content type a stored file is served with, from its extension
    only; None for anything that is not one of the image types written."""
    return CONTENT_TYPES.get(PurePosixPath(name).suffix.lower().lstrip("."))


# A shipment's proof of delivery, by the kind named in its URLs.
PROOF_FIELDS = {"photo": "proof_photo", "signature": "proof_signature"}

# The image as a document of its own can do nothing: no scripts, no
# plugins, no requests, no forms, a unique origin.
IMAGE_CSP = "sandbox; default-src 'none'"
# Proof belongs to one recipient: never in a shared cache, and not kept for
# long by the browser once the link may have expired.
PROOF_CACHE_CONTROL = "private, max-age=600"
# A logo's URL changes with each upload (Brand.logo_src), so it can be kept.
LOGO_CACHE_CONTROL = "public, max-age=86400"


def image_response(file: FieldFile | None, *, cache_control: str) -> HttpResponse:
    """The stored image, from the default storage, with the headers that
    keep it an image; 404 for no file, a missing file or a name whose
    extension is not one of the image types written."""
    if not file or not file.name:
        raise Http404
    content_type = content_type_for(file.name)
    if content_type is None:
        raise Http404
    try:
        with default_storage.open(file.name, "rb") as stored:
            content = stored.read()
    except (FileNotFoundError, OSError):
        raise Http404 from None
    response = HttpResponse(content, content_type=content_type)
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = IMAGE_CSP
    response["Content-Disposition"] = "inline"
    response["Referrer-Policy"] = "no-referrer"
    response["Cache-Control"] = cache_control
    return response


def _not_an_image() -> ImageRefused:
    return ImageRefused(_("The file is not a JPEG, PNG or WebP image."), code="not_an_image")


def _read_within(upload, max_bytes: int) -> bytes:
    size = getattr(upload, "size", None)
    if size is not None and size > max_bytes:
        raise _too_large(size, max_bytes)
    upload.seek(0)
    data = upload.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise _too_large(len(data), max_bytes)
    return data


def _too_large(size: int, max_bytes: int) -> ImageRefused:
    return ImageRefused(
        _("The file is %(size)d bytes; images of at most %(limit)d bytes are accepted.")
        % {"size": size, "limit": max_bytes},
        code="too_large",
    )


def clean_image(upload, *, max_bytes: int = MAX_IMAGE_BYTES, max_pixels: int = MAX_IMAGE_PIXELS) -> ContentFile:
    """The upload (a Django File, or anything with read/seek) as a freshly
    encoded image under a random name, or ImageRefused saying why not."""
    data = _read_within(upload, max_bytes)
    # Pillow warns past its own limit (and refuses past twice it): kept at
    # most that, ours refuses whatever it would only warn about.
    max_pixels = min(max_pixels, Image.MAX_IMAGE_PIXELS or max_pixels)
    try:
        image = Image.open(io.BytesIO(data), formats=OPENED_AS)
    except Image.DecompressionBombError:
        raise _too_many_pixels(None, max_pixels) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError):
        raise _not_an_image() from None
    with image:
        if image.format not in FORMATS:
            raise _not_an_image()
        width, height = image.size
        if width * height > max_pixels:
            raise _too_many_pixels((width, height), max_pixels)
        extension, _content_type, written = FORMATS[image.format]
        try:
            with DECODING:
                image.load()
                upright = ImageOps.exif_transpose(image)
                clean = _writable(upright, written)
                # Nothing of the original's metadata goes with the pixels.
                clean.info = {}
                output = io.BytesIO()
                clean.save(output, format=written, **_SAVE_OPTIONS[written])
        except Image.DecompressionBombError:
            raise _too_many_pixels((width, height), max_pixels) from None
        except Exception:
            # Truncated or corrupt data past a valid header makes Pillow's
            # decoders raise all sorts (OSError, struct.error, IndexError...):
            # each is a file that is not an image, never a server error.
            raise _not_an_image() from None
    return ContentFile(output.getvalue(), name=f"{uuid.uuid4().hex}.{extension}")


def _writable(image: Image.Image, written: str) -> Image.Image:
    if image.mode in _WRITABLE_MODES[written]:
        return image
    has_alpha = "A" in image.getbands() or "transparency" in image.info
    if written == "JPEG":
        return image.convert("RGB")
    return image.convert("RGBA" if has_alpha else "RGB")


def _too_many_pixels(size: tuple[int, int] | None, max_pixels: int) -> ImageRefused:
    if size is None:
        message = _("The image has too many pixels; at most %(limit)d are accepted.") % {"limit": max_pixels}
    else:
        message = _("The image is %(width)d×%(height)d pixels; at most %(limit)d pixels are accepted.") % {
            "width": size[0],
            "height": size[1],
            "limit": max_pixels,
        }
    return ImageRefused(message, code="too_many_pixels")
