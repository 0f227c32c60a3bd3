from django.urls import path

from . import choices, counting, embed, lookup, media, tracking, widget
from .live import stream as live_stream

app_name = "pages"

urlpatterns = [
    path("", tracking.home, name="home"),
    path("track/", lookup.lookup, name="lookup"),
    path("track/<slug:brand_slug>/", lookup.brand_lookup, name="brand_lookup"),
    path("t/<str:token>/", tracking.tracking, name="tracking"),
    # Under uvicorn, asgi.py serves this path itself (pages.live.stream.sse_app);
    # the view is the same stream through Django.
    path("t/<str:token>/events/", live_stream.events, name="events"),
    path("t/<str:token>/actions/", tracking.actions, name="actions"),
    path("t/<str:token>/instructions/", tracking.instructions, name="instructions"),
    path("t/<str:token>/rating/", tracking.rating, name="rating"),
    path("t/<str:token>/report/", tracking.report, name="report"),
    path("t/<str:token>/choice/", choices.delivery_choice, name="delivery_choice"),
    path("t/<str:token>/address-note/", choices.address_note, name="address_note"),
    path("t/<str:token>/support/<str:kind>/", counting.support, name="support"),
    path("t/<str:token>/proof/<str:kind>/", media.tracking_proof, name="proof"),
    path("brands/<slug:slug>/logo/", media.brand_logo, name="brand_logo"),
    # The status widget's frames: the only pages a brand's site may frame.
    path("embed/t/<str:token>/", embed.embed_tracking, name="embed_tracking"),
    path("embed/<slug:brand_slug>/orders/<str:order_ref>/", embed.embed_order, name="embed_order"),
    path("embed/<slug:brand_slug>/", embed.embed_lookup, name="embed_lookup"),
    path("widget.js", widget.loader, name="widget_js"),
]
