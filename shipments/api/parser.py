import json

from django.http import HttpRequest
from ninja.parser import Parser


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


class StrictJSONParser(Parser):
    """JSON as RFC 8259 defines it: Python's json also reads NaN and
    Infinity, which no coordinate or number here may be."""

    def parse_body(self, request: HttpRequest):
        return json.loads(request.body, parse_constant=_reject_constant)
