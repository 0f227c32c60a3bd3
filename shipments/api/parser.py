import json

from django.http import HttpRequest
from ninja.parser import Parser


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


def loads(body: bytes):
    """JSON as RFC 8259 defines it (Python's json also reads NaN and
    Infinity), without NUL characters, which PostgreSQL cannot store in text:
    refused here as bad input rather than by the database mid-batch."""
    if b"\\u0000" in body or b"\x00" in body:
        raise ValueError("NUL characters (\\u0000) are not accepted")
    return json.loads(body, parse_constant=_reject_constant)


class StrictJSONParser(Parser):
    def parse_body(self, request: HttpRequest):
        return loads(request.body)
