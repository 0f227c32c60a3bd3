"""The status rules, without a database."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from shipments.statuses import TERMINAL, Status, event_sort_key, fold

T0 = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Ev:
    status: str
    occurred_at: datetime
    source: str = "api"
    external_id: str = ""
    is_correction: bool = False


def ev(status, minutes, **kw):
    return Ev(status=status, occurred_at=T0 + timedelta(minutes=minutes), external_id=f"{status}-{minutes}", **kw)


def test_no_events_is_pending():
    assert fold([]).status == Status.PENDING


def test_events_apply_in_occurred_order_not_arrival_order():
    events = [ev("out_for_delivery", 30), ev("in_transit", 10), ev("info_received", 0)]
    assert fold(events).status == Status.OUT_FOR_DELIVERY
    assert fold(events).deciding_event == events[0]


def test_terminal_status_ignores_later_events():
    events = [ev("in_transit", 0), ev("delivered", 10), ev("out_for_delivery", 20), ev("exception", 30)]
    assert fold(events).status == Status.DELIVERED


def test_late_terminal_event_wins_over_later_non_terminal_ones():
    # The delivery scan reached us last but happened before the exception
    # report: the parcel was delivered.
    events = [ev("exception", 30), ev("delivered", 20)]
    assert fold(events).status == Status.DELIVERED


def test_correction_leaves_a_terminal_status():
    events = [ev("delivered", 10), ev("out_for_delivery", 20, source="staff", is_correction=True)]
    assert fold(events).status == Status.OUT_FOR_DELIVERY


def test_terminal_set_is_exactly_the_designed_one():
    assert {Status.DELIVERED, Status.RETURNED_TO_SENDER, Status.CANCELLED} == TERMINAL


events_strategy = st.lists(
    st.builds(
        ev,
        status=st.sampled_from([s.value for s in Status]),
        minutes=st.integers(min_value=0, max_value=50),
    ),
    min_size=1,
    max_size=12,
)


@given(events=events_strategy, data=st.data())
def test_any_arrival_order_with_duplicates_gives_the_same_status(events, data):
    duplicated = events + data.draw(st.lists(st.sampled_from(events), max_size=6))
    shuffled = data.draw(st.permutations(duplicated))
    # Duplicates collapse on (source, external_id), as the database does.
    unique = {(e.source, e.external_id): e for e in shuffled}.values()
    expected = fold({(e.source, e.external_id): e for e in events}.values())
    assert fold(unique).status == expected.status


@given(events=events_strategy)
def test_once_terminal_never_leaves_without_a_correction(events):
    seen = []
    reached_terminal = None
    for event in sorted(events, key=event_sort_key):
        seen.append(event)
        status = fold(seen).status
        if reached_terminal is not None:
            assert status == reached_terminal
        elif status in TERMINAL:
            reached_terminal = status


def test_one_event_order_for_the_rules_the_model_and_the_timeline():
    from shipments.models import TrackingEvent
    from shipments.selectors import TIMELINE_ORDER
    from shipments.statuses import EVENT_ORDER, NEWEST_FIRST

    assert EVENT_ORDER == ("occurred_at", "source", "external_id")
    assert list(TrackingEvent._meta.ordering) == list(EVENT_ORDER)
    assert list(TIMELINE_ORDER) == list(NEWEST_FIRST) == ["-occurred_at", "-source", "-external_id"]
    same_time = [ev("in_transit", 0, source="carrier"), ev("in_transit", 0, source="api")]
    assert [e.source for e in sorted(same_time, key=event_sort_key)] == ["api", "carrier"]
