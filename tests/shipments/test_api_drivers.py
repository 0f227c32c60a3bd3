"""Driver positions, routes, and the delivery with its proof, through the API."""

import io
from datetime import date, timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from shipments import signals
from shipments.models import Driver, LocationPing, Route, Shipment, Stop, TrackingEvent
from tests.conftest import T0
from tests.shipments.api_helpers import is_problem, pointers


def image_bytes(format_name: str, size=(8, 6)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(buffer, format_name)
    return buffer.getvalue()


PNG = image_bytes("PNG")
JPEG = image_bytes("JPEG")


def ping(minutes, lat=51.5, lng=-0.12, **extra):
    return {"lat": lat, "lng": lng, "recorded_at": (T0 + timedelta(minutes=minutes)).isoformat(), **extra}


# --- locations ---------------------------------------------------------------


def test_pings_move_the_driver_to_the_newest(api, brand, django_capture_on_commit_callbacks):
    moved = []

    def receiver(sender, driver_id, **kwargs):
        moved.append(driver_id)

    signals.driver_moved.connect(receiver)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            response = api.post(
                "/locations",
                {
                    "driver_ref": "drv-7",
                    "pings": [ping(5, 51.5, -0.12, heading_deg=90, speed_mps=8.3, accuracy_m=5), ping(1, 51.4, -0.2)],
                },
            )
    finally:
        signals.driver_moved.disconnect(receiver)
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["stored"], body["duplicates"]) == (2, 0)
    driver = Driver.objects.get(brand=brand, ref="drv-7")
    assert (driver.last_lat, driver.last_lng, driver.last_heading_deg) == (51.5, -0.12, 90)
    assert driver.last_position_at == T0 + timedelta(minutes=5)
    assert moved == [driver.pk]
    assert LocationPing.objects.filter(driver=driver).count() == 2


def test_a_late_older_ping_never_moves_the_driver_back(api, brand, django_capture_on_commit_callbacks):
    api.post("/locations", {"driver_ref": "drv-7", "pings": [ping(10, 51.6, -0.1)]})
    moved = []
    signals.driver_moved.connect(receiver := lambda sender, driver_id, **kw: moved.append(driver_id))
    try:
        with django_capture_on_commit_callbacks(execute=True):
            api.post("/locations", {"driver_ref": "drv-7", "pings": [ping(3, 50.0, 0.0)]})
    finally:
        signals.driver_moved.disconnect(receiver)
    driver = Driver.objects.get(brand=brand, ref="drv-7")
    assert (driver.last_lat, driver.last_position_at) == (51.6, T0 + timedelta(minutes=10))
    assert moved == []
    assert LocationPing.objects.filter(driver=driver).count() == 2


def test_a_resent_ping_is_stored_once(api):
    api.post("/locations", {"driver_ref": "drv-7", "pings": [ping(1)]})
    body = api.post("/locations", {"driver_ref": "drv-7", "pings": [ping(1), ping(1)]}).json()
    assert (body["stored"], body["duplicates"]) == (0, 2)
    assert LocationPing.objects.count() == 1


@pytest.mark.parametrize(
    ("bad", "where"),
    [
        ({"lat": 91}, "#/pings/0/lat"),
        ({"lng": -180.5}, "#/pings/0/lng"),
        ({"recorded_at": "2026-11-26T08:05:00"}, "#/pings/0/recorded_at"),
        ({"heading_deg": 400}, "#/pings/0/heading_deg"),
        ({"speed_mps": -1}, "#/pings/0/speed_mps"),
        ({"lat": "north"}, "#/pings/0/lat"),
    ],
)
def test_bad_pings_are_422_and_nothing_is_stored(api, bad, where):
    problem = is_problem(api.post("/locations", {"driver_ref": "drv-7", "pings": [{**ping(1), **bad}]}), 422)
    assert where in pointers(problem)
    assert not LocationPing.objects.exists()
    assert not Driver.objects.exists()


def test_drivers_are_per_brand(api, other_api, brand, other_brand):
    api.post("/locations", {"driver_ref": "drv-7", "pings": [ping(1, 10, 10)]})
    other_api.post("/locations", {"driver_ref": "drv-7", "pings": [ping(2, 20, 20)]})
    assert Driver.objects.get(brand=brand, ref="drv-7").last_lat == 10
    assert Driver.objects.get(brand=other_brand, ref="drv-7").last_lat == 20


# --- routes ----------------------------------------------------------------------


def test_route_sets_ordered_stops_and_reposting_replaces_them(api, make_shipment, brand):
    for n in ("LM1", "LM2", "LM3"):
        make_shipment(tracking_number=n)
    body = {"driver_ref": "drv-7", "date": "2026-11-26", "stops": ["LM2", "LM1"]}
    response = api.post("/routes", body)
    assert response.status_code == 200, response.content
    assert response.json() == body
    route = Route.objects.get(driver__brand=brand, driver__ref="drv-7", date=date(2026, 11, 26))
    assert list(route.stops.order_by("sequence").values_list("shipment__tracking_number", flat=True)) == ["LM2", "LM1"]

    Stop.objects.filter(route=route, shipment__tracking_number="LM1").update(completed_at=T0)
    api.post("/routes", {**body, "stops": ["LM1", "LM3"]})
    stops = list(route.stops.order_by("sequence").values_list("shipment__tracking_number", "completed_at"))
    assert stops == [("LM1", T0), ("LM3", None)]


def test_a_route_change_tells_the_pages_of_every_parcel_on_it_before_or_after(
    api, make_shipment, django_capture_on_commit_callbacks
):
    lm1, lm2, lm3 = (make_shipment(tracking_number=n) for n in ("LM1", "LM2", "LM3"))
    body = {"driver_ref": "drv-7", "date": "2026-11-26", "stops": ["LM1", "LM2"]}
    heard = []

    def receiver(sender, changes, **kwargs):
        heard.append({change.shipment_id for change in changes})

    signals.shipments_changed.connect(receiver)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            api.post("/routes", body)
            assert heard == [], "announced before commit"
        with django_capture_on_commit_callbacks(execute=True):
            api.post("/routes", {**body, "stops": ["LM2", "LM3"]})
    finally:
        signals.shipments_changed.disconnect(receiver)
    assert heard == [{lm1.pk, lm2.pk}, {lm1.pk, lm2.pk, lm3.pk}]


def test_route_with_unknown_or_other_brands_stops_is_404_and_changes_nothing(api, make_shipment, other_brand):
    make_shipment(tracking_number="LM1")
    make_shipment(tracking_number="THEIRS", for_brand=other_brand)
    api.post("/routes", {"driver_ref": "drv-7", "date": "2026-11-26", "stops": ["LM1"]})
    problem = is_problem(
        api.post("/routes", {"driver_ref": "drv-7", "date": "2026-11-26", "stops": ["LM1", "THEIRS", "NOPE"]}), 404
    )
    assert pointers(problem) == {"#/stops/1", "#/stops/2"}
    assert list(Stop.objects.values_list("shipment__tracking_number", flat=True)) == ["LM1"]


@pytest.mark.parametrize(
    "body",
    [
        {"driver_ref": "drv-7", "date": "26/11/2026", "stops": []},
        {"driver_ref": "", "date": "2026-11-26", "stops": []},
        {"driver_ref": "drv-7", "date": "2026-11-26", "stops": "LM1"},
        {"driver_ref": "drv-7", "date": "2026-11-26", "stops": ["LM1", "LM1"]},
    ],
)
def test_bad_routes_are_422(api, make_shipment, body):
    make_shipment(tracking_number="LM1")
    is_problem(api.post("/routes", body), 422)
    assert not Stop.objects.exists()


# --- proof of delivery -------------------------------------------------------------


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    return tmp_path


def deliver(api, tracking_number, *, key=None, **data):
    form = {"occurred_at": "2026-11-26T10:30:00Z", "external_id": "pod-1", **data}
    return api.client.post(f"/api/v1/shipments/{tracking_number}/proof-of-delivery", form, **api.headers(key))


def test_delivery_with_photo_signature_and_name(api, make_shipment, media):
    shipment = make_shipment(tracking_number="LM1")
    response = deliver(
        api,
        "LM1",
        received_by="A. Lovelace",
        photo=SimpleUploadedFile("door.jpg", JPEG, content_type="image/jpeg"),
        signature=SimpleUploadedFile("sig.png", PNG, content_type="image/png"),
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "delivered"
    assert body["proof_of_delivery"] == {"received_by": "A. Lovelace", "has_photo": True, "has_signature": True}
    shipment.refresh_from_db()
    assert shipment.delivered_at.isoformat() == "2026-11-26T10:30:00+00:00"
    # Stored re-encoded: still the same picture, in the format it came in.
    with Image.open(shipment.proof_photo) as stored:
        assert (stored.format, stored.size) == ("JPEG", (8, 6))
    assert shipment.proof_signature.name.endswith(".png")
    assert "door" not in shipment.proof_photo.name  # the client's file name is not kept
    # Sent again, the delivery is the same event; only the proof is refreshed.
    assert deliver(api, "LM1", received_by="Ada").status_code == 200
    assert TrackingEvent.objects.filter(shipment=shipment).count() == 1


@pytest.mark.parametrize(
    ("upload", "status"),
    [
        (SimpleUploadedFile("x.jpg", b"GIF89a" + b"\x00" * 10, content_type="image/jpeg"), 415),
        (SimpleUploadedFile("x.png", PNG, content_type="image/jpeg"), 415),
        (SimpleUploadedFile("x.svg", b"<svg onload=alert(1)>", content_type="image/svg+xml"), 415),
    ],
)
def test_proof_images_must_be_real_images(api, make_shipment, media, upload, status):
    make_shipment(tracking_number="LM1")
    problem = is_problem(deliver(api, "LM1", photo=upload), status)
    assert "#/photo" in pointers(problem)
    assert not TrackingEvent.objects.exists()


def test_proof_images_over_the_size_limit_are_413(api, make_shipment, media, monkeypatch):
    from shipments.api import shipments as endpoints

    monkeypatch.setattr(endpoints, "MAX_IMAGE_BYTES", 32)
    make_shipment(tracking_number="LM1")
    is_problem(deliver(api, "LM1", photo=SimpleUploadedFile("x.jpg", JPEG, content_type="image/jpeg")), 413)


def test_delivery_needs_some_proof_and_a_zoned_time(api, make_shipment, media):
    make_shipment(tracking_number="LM1")
    assert "#/received_by" in pointers(is_problem(deliver(api, "LM1"), 422))
    for when in ("2026-11-26T10:30:00", "1970-01-01T00:00:00Z", "yesterday"):
        assert "#/occurred_at" in pointers(is_problem(deliver(api, "LM1", received_by="Ada", occurred_at=when), 422))
    assert not TrackingEvent.objects.exists()


def test_delivery_of_another_brands_shipment_is_404(other_api, make_shipment, media):
    shipment = make_shipment(tracking_number="LM1")
    is_problem(deliver(other_api, "LM1", received_by="Mallory"), 404)
    shipment.refresh_from_db()
    assert (shipment.status, shipment.proof_received_by) == ("pending", "")
    assert Shipment.objects.get(pk=shipment.pk).version == shipment.version
