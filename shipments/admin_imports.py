"""The admin's CSV import of shipments: upload, column mapping, a dry run,
the import, its progress and results (shipments.imports does the work,
shipments.import_jobs runs it as a job).

Staff import only into their own brands (the brand choice lists those,
and the upload is refused for any other), with the permission to add
shipments. A job is seen only by who started it: another user's job id
is a 404, as an unknown one.
"""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect, render
from django.template.defaultfilters import filesizeformat
from django.urls import path, reverse
from django.utils.translation import gettext_lazy as _

from tracking_portal.admin_scoping import visible

from . import import_jobs, imports
from .models import Brand

IGNORE = ""
COLUMN_CHOICES = [(IGNORE, _("— ignore —")), *((name, name) for name in imports.STANDARD_COLUMNS)]
# Refused rows a results page lists (the count is whole).
LISTED_ON_PAGE = 500


def upload_limit() -> int:
    """The largest file the admin takes: the import's own limit, or less
    where the server reads no bigger admin upload (tracking_portal.body_limit
    answers 413 above ADMIN_MAX_IMPORT_BYTES before any view runs)."""
    return min(imports.MAX_BYTES, settings.ADMIN_MAX_IMPORT_BYTES)


class UploadForm(forms.Form):
    brand = forms.ModelChoiceField(queryset=Brand.objects.none(), label=_("Brand"))
    file = forms.FileField(label=_("CSV file"))

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["brand"].queryset = visible(Brand.objects.all(), user)
        self.fields["file"].help_text = _("UTF-8, header on the first line, at most %(size)s and %(rows)s rows.") % {
            "size": filesizeformat(upload_limit()),
            "rows": f"{imports.MAX_ROWS:,}",
        }

    def clean_file(self):
        upload = self.cleaned_data["file"]
        try:
            self.header = imports.check_file(upload.file, max_bytes=upload_limit())
        except imports.FileRefused as refused:
            raise forms.ValidationError(str(refused)) from None
        return upload


class MappingForm(forms.Form):
    """One choice per column of the file's header: the standard column it
    fills, or none."""

    def __init__(self, *args, header: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.header = header
        taken: set[str] = set()
        for index, name in enumerate(header):
            standard = name.strip().casefold()
            initial = standard if standard in imports.STANDARD_COLUMNS and standard not in taken else IGNORE
            taken.add(initial)
            self.fields[f"column_{index}"] = forms.ChoiceField(
                label=name or _("(no name)"), choices=COLUMN_CHOICES, required=False, initial=initial
            )

    def clean(self):
        cleaned = super().clean()
        self.mapping = {name: cleaned.get(f"column_{index}", IGNORE) for index, name in enumerate(self.header)}
        try:
            imports.columns_for(self.header, self.mapping)
        except imports.FileRefused as refused:
            raise forms.ValidationError(str(refused)) from None
        return cleaned


def add_import_pages(admin_class) -> None:
    """Give the shipments' admin its import pages."""
    if getattr(admin_class, "_csv_import_pages", False):
        return
    original_urls = admin_class.get_urls

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("import/", wrap(upload_view(self)), name="shipments_shipment_import"),
            path("import/<str:job_id>/", wrap(job_view(self)), name="shipments_shipment_import_job"),
            *original_urls(self),
        ]

    admin_class.get_urls = get_urls
    admin_class.change_list_template = "admin/shipments/import/shipment_change_list.html"
    admin_class._csv_import_pages = True


def _context(model_admin, request, **extra) -> dict:
    return {**model_admin.admin_site.each_context(request), "opts": model_admin.model._meta, **extra}


def upload_view(model_admin):
    def view(request):
        if not model_admin.has_add_permission(request):
            raise PermissionDenied
        form = UploadForm(request.POST or None, request.FILES or None, user=request.user)
        if request.method == "POST" and form.is_valid():
            job_id = import_jobs.new_job(
                user=request.user,
                brand=form.cleaned_data["brand"],
                upload=form.cleaned_data["file"],
                header=form.header,
            )
            return redirect(reverse("admin:shipments_shipment_import_job", args=[job_id]))
        context = _context(model_admin, request, form=form, title=_("Import shipments from CSV"))
        context["columns"] = list(imports.STANDARD_COLUMNS)
        return render(request, "admin/shipments/import/upload.html", context)

    return view


def job_view(model_admin):
    def view(request, job_id):
        if not model_admin.has_add_permission(request):
            raise PermissionDenied
        job = import_jobs.load(job_id)
        if job is None or job.user_id != request.user.pk:
            raise Http404
        brand = visible(Brand.objects.filter(pk=job.brand_id), request.user).first()
        if brand is None:
            raise Http404  # no longer one of the user's brands
        form = None
        if request.method == "POST" and import_jobs.can_start(job):
            form = MappingForm(request.POST, header=job.header)
            if form.is_valid():
                import_jobs.start(job_id, mapping=form.mapping, dry_run="dry_run" in request.POST)
                return redirect(request.path)
        job = import_jobs.load(job_id)
        if form is None and import_jobs.can_start(job):
            form = MappingForm(initial=job.mapping and _initial(job), header=job.header)
        report = job.report or {}
        context = _context(
            model_admin,
            request,
            title=_("Import shipments from CSV"),
            record=job,
            brand=brand,
            form=form,
            report=report,
            refused=report.get("refused", [])[:LISTED_ON_PAGE],
            refresh=job.state in ("queued", "running") and not job.stalled,
        )
        return render(request, "admin/shipments/import/job.html", context)

    return view


def _initial(job) -> dict:
    return {f"column_{index}": job.mapping.get(name, IGNORE) for index, name in enumerate(job.header)}
