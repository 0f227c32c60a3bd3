import random
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from notifications import rules
from notifications.rules import prepare_sms


def test_typographic_characters_are_replaced_to_stay_in_gsm7():
    sms = prepare_sms("It’s “on the van” – arriving 9–11am…")
    assert sms.text == 'It\'s "on the van" - arriving 9-11am...'
    assert (sms.encoding, sms.segments) == ("GSM-7", 1)


def test_160_gsm7_characters_fit_one_segment_and_161_take_two():
    assert prepare_sms("a" * 160).segments == 1
    assert prepare_sms("a" * 161).segments == 2
    assert prepare_sms("a" * 306).segments == 2
    assert prepare_sms("a" * 307).segments == 3


def test_extension_characters_count_double():
    assert prepare_sms("€" * 80).segments == 1
    assert prepare_sms("€" * 81).segments == 2


def test_text_outside_gsm7_is_ucs2_with_smaller_segments():
    sms = prepare_sms("Ваша посылка доставлена")
    assert sms.encoding == "UCS-2"
    assert prepare_sms("ж" * 70).segments == 1
    assert prepare_sms("ж" * 71).segments == 2
    assert prepare_sms("📦" * 35).segments == 1  # two UTF-16 units each
    assert prepare_sms("📦" * 36).segments == 2


def test_spanish_and_german_defaults_stay_gsm7_where_the_alphabet_allows():
    assert prepare_sms("Tu paquete está en reparto: ¿dónde? ñ ü").encoding == "UCS-2"  # á and ó are not GSM-7
    assert prepare_sms("Ihr Paket wird heute zugestellt: Größe Ä Ö Ü ß").encoding == "GSM-7"


@given(st.text(max_size=400))
def test_segments_are_at_least_one_for_any_text(text):
    sms = prepare_sms(text)
    assert sms.segments >= 1
    assert sms.encoding in ("GSM-7", "UCS-2")


@given(
    st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2035, 1, 1), timezones=st.just(UTC)),
    st.sampled_from(["Europe/London", "America/New_York", "Australia/Sydney", "Asia/Kolkata", "Pacific/Chatham"]),
)
def test_a_held_sms_is_released_at_eight_local_within_a_day(now, tz):
    when = rules.earliest_sms_time(now, tz_name=tz, status="exception")
    assert when >= now
    assert when - now < timedelta(hours=13)
    if when != now:
        local = when.astimezone(rules.zone(tz))
        assert (local.hour, local.minute) == (8, 0)
        assert rules.in_quiet_hours(now, tz)
    else:
        assert not rules.in_quiet_hours(now, tz)


def test_an_unknown_zone_falls_back_to_utc():
    now = datetime(2026, 11, 26, 22, 0, tzinfo=UTC)
    assert rules.earliest_sms_time(now, tz_name="Mars/Olympus", status="exception") == datetime(
        2026, 11, 27, 8, 0, tzinfo=UTC
    )


def test_backoff_grows_with_jitter_and_stops():
    rng = random.Random(5)
    policy = rules.SMS_EMAIL_RETRIES
    delays = [policy.delay(n, rng) for n in range(1, 6)]
    for n, delay in enumerate(delays, start=1):
        ceiling = min(policy.cap_seconds, policy.base_seconds * 2 ** (n - 1))
        assert ceiling / 2 <= delay <= ceiling
    assert len({round(policy.delay(3), 3) for _ in range(20)}) > 1  # jittered
    start = datetime(2026, 1, 1, tzinfo=UTC)
    assert policy.gives_up(attempts=6, first_planned_at=start, now=start)
    assert not policy.gives_up(attempts=5, first_planned_at=start, now=start)


def test_webhooks_are_retried_for_a_day_and_no_longer():
    policy = rules.WEBHOOK_RETRIES
    start = datetime(2026, 1, 1, tzinfo=UTC)
    assert not policy.gives_up(attempts=50, first_planned_at=start, now=start + timedelta(hours=23, minutes=59))
    assert policy.gives_up(attempts=3, first_planned_at=start, now=start + timedelta(hours=24))
    assert policy.delay(30) <= 4 * 3600
