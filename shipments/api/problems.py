"""Errors as application/problem+json (RFC 9457), for every way a request
can fail: each says what went wrong and, for input, where (a JSON pointer
into the body, or the parameter's name)."""

from __future__ import annotations

import json
import logging
from typing import Any

from django.conf import settings
from django.core.exceptions import BadRequest, RequestDataTooBig, SuspiciousOperation
from django.db import DataError, OperationalError
from django.http import Http404, HttpRequest, HttpResponse
from django.http.multipartparser import MultiPartParserError
from ninja.errors import AuthenticationError, HttpError, ValidationError

logger = logging.getLogger(__name__)

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_BASE = "/api/v1/problems/"

# A database that is down or a pool that is exhausted usually comes back in
# seconds; clients are asked to wait this long before retrying.
DATABASE_RETRY_AFTER_SECONDS = 5


# What each problem type means, served at its type URI.
PROBLEM_TYPES = {
    "validation-error": "A field is missing or has the wrong type or value; errors[] points at each one.",
    "invalid-json": "The body is not JSON (RFC 8259): no NaN, Infinity or NUL characters.",
    "invalid-multipart": "The multipart body could not be read.",
    "invalid-event": "One event of a batch cannot be recorded as given; the others were.",
    "unknown-tracking-number": "No shipment of this key's brand has that tracking number.",
    "unknown-source": "Webhook sources are generic, easypost and aftership.",
    "invalid-signature": "The webhook's signature is missing, wrong or too old; nothing of it was read.",
    "too-large": "The body or a file is larger than this endpoint accepts.",
    "unsupported-image": "Proof images must be JPEG, PNG or WebP, sent with their own content type.",
    "rate-limited": "Too many requests for this key; wait for Retry-After seconds.",
    "database-unavailable": "The database is unavailable; nothing was written. Retry after Retry-After seconds.",
    "out-of-range": "A value is outside what the portal can store; nothing was written.",
}


class Problem(Exception):
    """An answer that is an error; raise it anywhere in the API."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str = "",
        *,
        kind: str = "",
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(detail or title)
        self.status = status
        self.title = title
        self.detail = detail
        self.kind = kind
        self.errors = errors or []
        self.headers = headers or {}

    def body(self, request: HttpRequest | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": PROBLEM_BASE + self.kind if self.kind else "about:blank",
            "title": self.title,
            "status": self.status,
        }
        if self.detail:
            body["detail"] = self.detail
        if request is not None:
            body["instance"] = request.path
        if self.errors:
            body["errors"] = self.errors
        return body


def problem_response(request: HttpRequest, problem: Problem) -> HttpResponse:
    response = HttpResponse(json.dumps(problem.body(request)), status=problem.status, content_type=PROBLEM_CONTENT_TYPE)
    for name, value in problem.headers.items():
        response[name] = value
    return response


def pointer(*parts: str | int) -> str:
    """A JSON pointer (RFC 6901) as a URI fragment, as RFC 9457's examples use."""
    escaped = (str(part).replace("~", "~0").replace("/", "~1") for part in parts)
    return "#/" + "/".join(escaped)


def _location(loc: tuple) -> tuple[str, tuple]:
    """Ninja reports a body field as ("body", "payload", ...), a query or
    path parameter as ("query", name)."""
    source, *rest = loc
    if source == "body" and rest and rest[0] == "payload":
        rest = rest[1:]
    return source, tuple(rest)


def validation_problem(errors: list[dict[str, Any]]) -> Problem:
    details = []
    for error in errors:
        source, rest = _location(tuple(error.get("loc", ())))
        item = {"detail": error.get("msg", "Invalid value."), "code": error.get("type", "invalid")}
        if source in ("body", "form", "file"):
            item["pointer"] = pointer(*rest)
        else:
            item["parameter"] = ".".join(str(part) for part in rest)
        details.append(item)
    return Problem(
        422,
        "Invalid request",
        "Some fields are missing or have the wrong type or value; see errors.",
        kind="validation-error",
        errors=details,
    )


def database_unavailable() -> Problem:
    return Problem(
        503,
        "Service Unavailable",
        "The database is unavailable; nothing was written. Retry later.",
        kind="database-unavailable",
        headers={"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)},
    )


def install(api) -> None:
    """Replace ninja's default handlers so that every error is a problem."""

    def handle(exc_class):
        def register(func):
            api.add_exception_handler(exc_class, lambda request, exc: problem_response(request, func(exc)))
            return func

        return register

    @handle(Problem)
    def _problem(exc: Problem) -> Problem:
        return exc

    @handle(ValidationError)
    def _validation(exc: ValidationError) -> Problem:
        return validation_problem(exc.errors)

    @handle(AuthenticationError)
    def _unauthenticated(exc: AuthenticationError) -> Problem:
        return Problem(
            401,
            "Unauthorized",
            "Send a live API key as 'Authorization: Bearer <key>'.",
            headers={"WWW-Authenticate": 'Bearer realm="api"'},
        )

    @handle(HttpError)
    def _http_error(exc: HttpError) -> Problem:
        if exc.status_code == 400 and isinstance(exc.__cause__, ValueError):
            # Ninja wraps the JSON parser's error; its message says where.
            return Problem(400, "Invalid JSON", f"The body is not valid JSON: {exc.__cause__}", kind="invalid-json")
        return Problem(exc.status_code, exc.message)

    @handle(Http404)
    def _not_found(exc: Http404) -> Problem:
        return Problem(404, "Not Found", str(exc) if str(exc) else "")

    @handle(RequestDataTooBig)
    def _too_big(exc: RequestDataTooBig) -> Problem:
        return Problem(413, "Content Too Large", "The body is larger than this endpoint accepts.", kind="too-large")

    @handle(MultiPartParserError)
    def _bad_multipart(exc: MultiPartParserError) -> Problem:
        return Problem(400, "Invalid multipart body", str(exc), kind="invalid-multipart")

    @handle(SuspiciousOperation)
    def _suspicious(exc: SuspiciousOperation) -> Problem:
        return Problem(400, "Bad Request", str(exc))

    @handle(BadRequest)
    def _bad_request(exc: BadRequest) -> Problem:
        return Problem(400, "Bad Request", str(exc))

    @handle(OperationalError)
    def _database_down(exc: OperationalError) -> Problem:
        logger.warning("API answered 503, database unavailable: %s", exc)
        return database_unavailable()

    @handle(DataError)
    def _out_of_range(exc: DataError) -> Problem:
        # The schemas keep values within what the database stores; this is
        # the backstop, and the transaction has been rolled back.
        logger.warning("API answered 422 for a value the database refused: %s", exc)
        return Problem(422, "Invalid request", "A value is out of the range the portal can store.", kind="out-of-range")

    @handle(Exception)
    def _unexpected(exc: Exception) -> Problem:
        logger.error("Unhandled error in the API", exc_info=exc)
        detail = repr(exc) if settings.DEBUG else ""
        return Problem(500, "Internal Server Error", detail)


class ProblemsForStrayRequests:
    """Middleware: under /api/, a 404 for a path no route knows or a 405 for
    a method a route doesn't take comes from Django or ninja as HTML or bare
    text; clients of the API get a problem like every other error instead."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            response.status_code in (404, 405)
            and request.path.startswith("/api/")
            and response.get("Content-Type", "") != PROBLEM_CONTENT_TYPE
        ):
            if response.status_code == 404:
                problem = Problem(404, "Not Found", f"No API endpoint at {request.path}; see /api/v1/docs.")
            else:
                problem = Problem(
                    405,
                    "Method Not Allowed",
                    f"{request.method} is not allowed here; use {response.get('Allow', 'another method')}.",
                    headers={"Allow": response["Allow"]} if response.has_header("Allow") else None,
                )
            return problem_response(request, problem)
        return response
