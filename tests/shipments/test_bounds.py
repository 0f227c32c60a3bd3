"""What the portal accepts and stores (shipments/bounds.py), without a
database, and that every check takes its limits from there."""

from datetime import UTC, datetime, timedelta, timezone

from shipments import bounds


def test_time_range_is_2000_to_2100_with_an_offset_the_database_holds():
    assert bounds.in_time_range(datetime(2000, 1, 1, tzinfo=UTC))
    assert not bounds.in_time_range(datetime(1999, 12, 31, 23, 59, tzinfo=UTC))
    assert not bounds.in_time_range(datetime(2100, 1, 1, tzinfo=UTC))
    assert bounds.in_time_range(datetime(2026, 11, 26, tzinfo=timezone(timedelta(hours=15, minutes=59))))
    assert not bounds.in_time_range(datetime(2026, 11, 26, tzinfo=timezone(timedelta(hours=16))))
    assert not bounds.in_time_range(datetime(2026, 11, 26, tzinfo=timezone(-timedelta(hours=16))))


def test_coordinates_include_their_ends():
    assert bounds.is_latitude(-90) and bounds.is_latitude(90) and not bounds.is_latitude(90.0001)
    assert bounds.is_longitude(-180) and bounds.is_longitude(180) and not bounds.is_longitude(-180.0001)


def test_models_services_drivers_and_schemas_take_the_same_ranges():
    from shipments.api import schemas
    from shipments.models import LATITUDE, LONGITUDE

    assert [v.limit_value for v in LATITUDE] == list(bounds.LATITUDE)
    assert [v.limit_value for v in LONGITUDE] == list(bounds.LONGITUDE)
    for model, name, expected in (
        (schemas.DestinationIn, "lat", bounds.LATITUDE),
        (schemas.DestinationIn, "lng", bounds.LONGITUDE),
        (schemas.PingIn, "lat", bounds.LATITUDE),
        (schemas.PingIn, "lng", bounds.LONGITUDE),
    ):
        limits = {type(m).__name__: m for m in model.model_fields[name].metadata}
        assert (limits["Ge"].ge, limits["Le"].le) == expected
