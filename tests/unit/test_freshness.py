"""The one age and the one staleness rule (SPEC §4.6)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tokenpulse.domain.freshness import age_ms, is_stale, stale_at

RECEIVED = 1_771_064_467.151  # 2026-02-14T10:21:07.151Z


def test_age_is_whole_milliseconds_and_never_negative() -> None:
    assert age_ms(RECEIVED, RECEIVED + 1.5) == 1500
    assert age_ms(RECEIVED, RECEIVED + 0.0009) == 0
    assert age_ms(RECEIVED, RECEIVED - 5) == 0  # clocks that disagree the other way


@given(st.integers(min_value=0, max_value=10**10))
def test_float_noise_never_loses_a_millisecond(micros: int) -> None:
    # Receive times and clocks have microsecond resolution; the age is exact to the ms.
    assert age_ms(RECEIVED, RECEIVED + micros / 1_000_000) == micros // 1000


def test_stale_is_strictly_older_than_stale_after() -> None:
    assert is_stale(60_000, 60.0) is False
    assert is_stale(60_001, 60.0) is True
    assert is_stale(301, 0.3) is True


@given(st.floats(min_value=0.1, max_value=7 * 86400))
def test_stale_at_is_the_first_stale_moment(stale_after: float) -> None:
    due = stale_at(RECEIVED, stale_after)
    assert is_stale(age_ms(RECEIVED, due), stale_after)
    assert not is_stale(age_ms(RECEIVED, due - 0.002), stale_after)
