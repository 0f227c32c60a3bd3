"""CSV export of admin lists: what the list shows after its filters and
search, within the staff user's brands, streamed.

Two ways in, one writer: the "Export as CSV" action on any list (the
selected rows, or all of the filtered list with "select all"), and the
"Export CSV" link of the lists that carry it (``add_export_link``), which
exports the list as filtered by its query string. Both read the model
admin's own queryset, so the brand scoping of tracking_portal.admin_scoping
holds, and ``lookup_allowed`` keeps secrets out of filters.

What is never exported: signing secrets and key hashes (``is_secret_field``),
passwords, public tracking tokens (each opens a parcel's page: a list of
them is a list of keys), and uploaded files. A cell that a spreadsheet would
run as a formula (starting with = + - @, a tab or a carriage return) is
prefixed with an apostrophe; numbers are written as numbers.

The rows are read in chunks through a server-side cursor and written as
they are read: under ASGI from an async iterator, since Django collects a
sync one into a list first (and so the whole export into memory).
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import AsyncIterator, Iterator

from asgiref.sync import sync_to_async
from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import PermissionDenied
from django.core.handlers.asgi import ASGIRequest
from django.db.models import FileField, ForeignKey, Model, QuerySet
from django.http import HttpResponseBadRequest, StreamingHttpResponse
from django.urls import path
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from tracking_portal.admin_scoping import is_secret_field

NEVER_EXPORTED = frozenset({"password", "public_token"})
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# Rows per read from the database and per piece of the response.
CHUNK = 2_000


def exported_fields(model: type[Model]) -> list:
    return [
        f
        for f in model._meta.concrete_fields
        if not is_secret_field(f.name) and f.name not in NEVER_EXPORTED and not isinstance(f, FileField)
    ]


def safe_cell(value) -> str | int | float:
    """A value as a CSV cell that no spreadsheet runs as a formula."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return value
    if isinstance(value, dt.datetime):
        return value.isoformat()
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


class _Echo:
    """A file whose write returns what was written, for csv.writer."""

    def write(self, value: str) -> str:
        return value


def csv_chunks(queryset: QuerySet) -> Iterator[str]:
    """The header, then the rows, CHUNK at a time, as CSV text (with a BOM
    so that spreadsheets read it as UTF-8)."""
    fields = exported_fields(queryset.model)
    relations = [f.name for f in fields if isinstance(f, ForeignKey)]
    writer = csv.writer(_Echo())
    yield "\ufeff" + writer.writerow([f.name for f in fields])
    rows = queryset.select_related(*relations) if relations else queryset
    piece: list[str] = []
    for obj in rows.iterator(chunk_size=CHUNK):
        piece.append(writer.writerow([safe_cell(_value(obj, f)) for f in fields]))
        if len(piece) >= CHUNK:
            yield "".join(piece)
            piece = []
    if piece:
        yield "".join(piece)


def _value(obj: Model, field):
    if isinstance(field, ForeignKey):
        related = getattr(obj, field.name)
        return str(related) if related is not None else None
    return getattr(obj, field.attname)


async def _async_chunks(chunks: Iterator[str]) -> AsyncIterator[str]:
    # Each chunk is read in the thread that holds the request's database
    # connection (thread_sensitive), so the cursor stays on one connection.
    done = object()
    while (chunk := await sync_to_async(next)(chunks, done)) is not done:
        yield chunk


def csv_response(request, queryset: QuerySet) -> StreamingHttpResponse:
    chunks = csv_chunks(queryset)
    content = _async_chunks(chunks) if isinstance(request, ASGIRequest) else chunks
    response = StreamingHttpResponse(content, content_type="text/csv; charset=utf-8")
    name = f"{queryset.model._meta.model_name}-{timezone.now():%Y%m%d-%H%M%S}.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    response["Cache-Control"] = "no-store"
    return response


@admin.action(description=_("Export as CSV"), permissions=["view"])
def export_as_csv(model_admin, request, queryset):
    """The selected rows (or the whole filtered list, with "select all")."""
    return csv_response(request, queryset)


def export_view(model_admin):
    """The list as its query string filters and searches it, all pages."""

    def view(request):
        if not model_admin.has_view_permission(request):
            raise PermissionDenied
        try:
            changelist = model_admin.get_changelist_instance(request)
        except IncorrectLookupParameters:
            return HttpResponseBadRequest(_("These filters do not apply to this list."))
        return csv_response(request, changelist.queryset)

    return view


def add_export_link(admin_class: type[admin.ModelAdmin], template: str = "admin/shipments/import/change_list.html"):
    """Give a list an "Export CSV" link (and its export/ URL)."""
    if getattr(admin_class, "_csv_export_link", False):
        return
    original_urls = admin_class.get_urls

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        return [
            path("export/", self.admin_site.admin_view(export_view(self)), name="{}_{}_export".format(*info)),
            *original_urls(self),
        ]

    admin_class.get_urls = get_urls
    admin_class.change_list_template = template
    admin_class._csv_export_link = True
