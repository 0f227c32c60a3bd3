"""What the portal accepts and stores: the time range of an event or any
other moment a source sends, and the ranges of latitude and longitude.

Pure, like statuses.py: the models' validators, the services' checks, the
drivers' pings and the API's schemas all take their limits from here.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

# What the database stores and a parcel can have: PostgreSQL refuses
# offsets beyond ±15:59, and no scan is older than the portal's carriers.
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)
MAX_OFFSET = timedelta(hours=16)

# A tracking number sits in a URL path segment as it is (GET
# /api/v1/shipments/{tracking_number}), whoever made the shipment.
TRACKING_NUMBER_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
TRACKING_NUMBER_MAX_LENGTH = 64

LATITUDE = (-90, 90)
LONGITUDE = (-180, 180)


def in_time_range(moment: datetime) -> bool:
    """An aware moment the portal stores: from EARLIEST up to (not
    including) LATEST, with an offset the database can hold."""
    return EARLIEST <= moment < LATEST and abs(moment.utcoffset()) < MAX_OFFSET


def is_latitude(value: float) -> bool:
    return LATITUDE[0] <= value <= LATITUDE[1]


def is_longitude(value: float) -> bool:
    return LONGITUDE[0] <= value <= LONGITUDE[1]


def is_window(start: datetime, end: datetime) -> bool:
    """A promised window ends at or after its start."""
    return end >= start


WINDOW_ERROR = "The window must end after it starts."
LATITUDE_ERROR = f"Latitude must be between {LATITUDE[0]} and {LATITUDE[1]}."
LONGITUDE_ERROR = f"Longitude must be between {LONGITUDE[0]} and {LONGITUDE[1]}."
