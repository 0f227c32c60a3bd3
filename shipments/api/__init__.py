"""The ingest API, /api/v1/: brands, carriers and driver apps feed the
portal here. django-ninja builds the OpenAPI document (/api/v1/openapi.json)
and the interactive docs (/api/v1/docs) from this code."""

from ninja import NinjaAPI, Schema

from . import problems
from .alerts import router as alerts_router
from .analytics import router as analytics_router
from .auth import BrandKey
from .common import ProblemOut
from .drivers import router as drivers_router
from .events import router as events_router
from .parser import StrictJSONParser
from .pickup import router as pickup_router
from .shipments import router as shipments_router
from .webhooks import router as webhooks_router

DESCRIPTION = """
Send shipments, tracking events, driver positions and routes; receive
carrier webhooks. Authenticate with `Authorization: Bearer <key>` (make a key
with `python manage.py create_api_key BRAND_SLUG` or in the admin); a key
sees only its own brand's data. Errors are `application/problem+json`
(RFC 9457) with field-level details in `errors`, each with a JSON `pointer`
into the body or the `parameter` at fault.
"""


class PortalAPI(NinjaAPI):
    def get_openapi_schema(self, **kwargs):
        schema = super().get_openapi_schema(**kwargs)
        # Ninja labels every response application/json; errors are problems.
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                for code, response in operation.get("responses", {}).items():
                    content = response.get("content", {})
                    if int(code) >= 400 and "application/json" in content:
                        content[problems.PROBLEM_CONTENT_TYPE] = content.pop("application/json")
        return schema


api = PortalAPI(
    title="Tracking portal API",
    version="1",
    description=DESCRIPTION,
    urls_namespace="api-v1",
    auth=BrandKey(),
    parser=StrictJSONParser(),
)
problems.install(api)
api.add_router("", shipments_router)
api.add_router("", events_router)
api.add_router("", drivers_router)
api.add_router("", webhooks_router)
api.add_router("", alerts_router)
api.add_router("", analytics_router)
api.add_router("", pickup_router)


class ProblemType(Schema):
    type: str
    description: str


@api.get("/problems/{kind}", auth=None, response={200: ProblemType, 404: ProblemOut}, tags=["problems"])
def problem_type(request, kind: str):
    """What a problem ``type`` of this API means (its URI is this address)."""
    if kind not in problems.PROBLEM_TYPES:
        raise problems.Problem(404, "Not Found", f"No problem type {kind!r}.")
    return {"type": problems.PROBLEM_BASE + kind, "description": problems.PROBLEM_TYPES[kind]}
