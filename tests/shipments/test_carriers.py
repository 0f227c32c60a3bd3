"""Carrier adapters: their vocabularies mapped onto ours, without HTTP."""

import json
from pathlib import Path

import pytest

from shipments.carriers import PayloadInvalid, aftership, easypost
from shipments.services import validate_event

FIXTURES = Path(__file__).parent.parent / "fixtures" / "webhooks"


def load(name):
    return json.loads((FIXTURES / name).read_text())


def test_easypost_details_map_to_canonical_statuses_and_keep_raw_codes():
    items = easypost.events(load("easypost_tracker_updated.json"))
    assert {number for number, _ in items} == {"EZ4000000004"}
    events = [e for _, e in items]
    assert [e.status for e in events] == ["info_received", "in_transit", "out_for_delivery", "delivered"]
    assert events[1].carrier_code == "in_transit/arrived_at_facility"
    assert events[1].location_city == "COLUMBIA"
    assert len({e.external_id for e in events}) == 4
    for e in events:
        validate_event(e)


@pytest.mark.parametrize(
    ("status", "detail", "expected", "substatus"),
    [
        ("return_to_sender", "return", "returned_to_sender", ""),
        ("failure", "damaged", "exception", "damaged"),
        ("in_transit", "weather_delay", "in_transit", "weather_delay"),
        ("available_for_pickup", "arrived_at_pickup_location", "available_for_pickup", ""),
        ("cancelled", "cancelled", "cancelled", ""),
        ("unknown", "unknown", "pending", ""),
    ],
)
def test_easypost_vocabulary(status, detail, expected, substatus):
    document = load("easypost_tracker_updated.json")
    document["result"]["tracking_details"] = [
        {"status": status, "status_detail": detail, "datetime": "2026-11-26T08:00:00Z", "message": "m"}
    ]
    [(_, event)] = easypost.events(document)
    assert (event.status, event.substatus) == (expected, substatus)


def test_easypost_detail_without_time_is_payload_error_with_pointer():
    document = load("easypost_tracker_updated.json")
    document["result"]["tracking_details"][2]["datetime"] = "soon"
    with pytest.raises(PayloadInvalid) as excinfo:
        easypost.events(document)
    assert excinfo.value.pointer == "#/result/tracking_details/2/datetime"


def test_aftership_checkpoints_map_with_subtags():
    items = aftership.events(load("aftership_tracking_update.json"))
    events = [e for _, e in items]
    assert [e.status for e in events] == ["info_received", "out_for_delivery", "failed_attempt"]
    assert events[2].substatus == "recipient_unavailable"
    assert events[0].carrier_code == "InfoReceived_001"


@pytest.mark.parametrize(
    ("tag", "subtag", "expected", "substatus"),
    [
        ("Exception", "Exception_011", "returned_to_sender", ""),
        ("Exception", "Exception_003", "exception", "refused"),
        ("Exception", "Exception_004", "exception", "customs_hold"),
        ("Delivered", "Delivered_001", "delivered", ""),
        ("AvailableForPickup", "AvailableForPickup_001", "available_for_pickup", ""),
        ("Expired", "Expired_001", "exception", ""),
    ],
)
def test_aftership_vocabulary(tag, subtag, expected, substatus):
    document = load("aftership_tracking_update.json")
    document["msg"]["checkpoints"] = [
        {"tag": tag, "subtag": subtag, "checkpoint_time": "2026-11-26T08:00:00+01:00", "message": "m"}
    ]
    [(_, event)] = aftership.events(document)
    assert (event.status, event.substatus) == (expected, substatus)


def test_aftership_unknown_tag_passes_through_to_be_answered_as_an_item_error():
    document = load("aftership_tracking_update.json")
    document["msg"]["checkpoints"] = [{"tag": "Teleported", "checkpoint_time": "2026-11-26T08:00:00Z"}]
    [(_, event)] = aftership.events(document)
    assert event.status == "Teleported"


@pytest.mark.parametrize("document", [[], {"event": "tracking_update"}, {"event": "tracking_update", "msg": "x"}])
def test_aftership_malformed_documents_are_payload_errors(document):
    with pytest.raises(PayloadInvalid):
        aftership.events(document)
