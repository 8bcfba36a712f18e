"""The cross-venue aggregate: VWAP of fresh venues, stale/outlier/missing, disagreement."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from tokenpulse.domain.aggregate import SOURCES_DISAGREE, VenueQuote, aggregate_price
from tokenpulse.domain.pairs import Pair

BTC = Pair("BTC", "USD")
D = Decimal
BPS = D(50)


def agg(*quotes: VenueQuote, stale_after_ms: int = 60_000):
    return aggregate_price(BTC, quotes, stale_after_ms=stale_after_ms, disagree_bps=BPS)


def test_vwap_of_three_fresh_venues_by_hand() -> None:
    result = agg(
        VenueQuote("kraken", D("69767.6"), D("1000"), 10),
        VenueQuote("coinbase", D("69770.1"), D("3000"), 20),
        VenueQuote("binance", D("69760.0"), D("6000"), 5),
    )
    # (69767.6*1000 + 69770.1*3000 + 69760.0*6000) / 10000
    assert result.price == D("69763.79")
    assert result.volume == D("10000")
    assert result.weighting == "volume"
    assert [c.weight for c in result.venues] == [D("0.1"), D("0.3"), D("0.6")]
    assert all(c.used for c in result.venues)
    assert result.flags == ()


def test_stale_and_missing_venues_are_excluded_with_their_reason() -> None:
    result = agg(
        VenueQuote("kraken", D("100"), D("1"), 61_000),
        VenueQuote("coinbase", None),
        VenueQuote("binance", D("101"), D("2"), 0),
    )
    assert result.price == D("101")
    assert [(c.quote.venue, c.used, c.reason) for c in result.venues] == [
        ("kraken", False, "stale"),
        ("coinbase", False, "missing"),
        ("binance", True, None),
    ]


def test_a_venue_five_percent_off_is_an_outlier_among_three() -> None:
    result = agg(
        VenueQuote("kraken", D("100.00"), D("1"), 0),
        VenueQuote("coinbase", D("100.02"), D("1"), 0),
        VenueQuote("binance", D("105.00"), D("1"), 0),
    )
    assert [c.reason for c in result.venues] == [None, None, "outlier"]
    assert result.price == D("100.01")


def test_three_venues_a_few_bps_apart_keep_every_venue() -> None:
    result = agg(
        VenueQuote("kraken", D("100.00"), D("1"), 0),
        VenueQuote("coinbase", D("100.01"), D("1"), 0),
        VenueQuote("binance", D("100.05"), D("1"), 0),  # 4 MADs, but only 4 bps off
    )
    assert all(c.used for c in result.venues)


def test_two_venues_that_disagree_are_both_kept_and_flagged() -> None:
    result = agg(
        VenueQuote("kraken", D("100"), D("1"), 0), VenueQuote("coinbase", D("101"), D("1"), 0)
    )
    assert result.flags == (SOURCES_DISAGREE,)
    assert result.price == D("100.5")
    close = agg(
        VenueQuote("kraken", D("100"), None, 0), VenueQuote("coinbase", D("100.4"), None, 0)
    )
    assert close.flags == ()
    assert close.weighting == "equal"
    assert close.volume is None


def test_no_usable_venue_has_no_price() -> None:
    result = agg(VenueQuote("kraken"), VenueQuote("coinbase", D("1"), D("1"), 10**9))
    assert result.price is None
    assert result.used == ()


prices = st.decimals(min_value=D("0.0001"), max_value=D("1e9"), places=4)
volumes = st.none() | st.decimals(min_value=D("0"), max_value=D("1e9"), places=4)
quotes = st.lists(
    st.builds(
        VenueQuote, st.sampled_from(["a", "b", "c", "d"]), prices, volumes, st.integers(0, 10**6)
    ),
    max_size=4,
    unique_by=lambda q: q.venue,
)


@given(quotes)
def test_the_aggregate_lies_within_the_used_prices(qs: list[VenueQuote]) -> None:
    result = agg(*qs)
    used = [c.quote.price for c in result.used if c.quote.price is not None]
    if not used:
        assert result.price is None
        return
    assert result.price is not None
    assert min(used) * D("0.999999999") <= result.price <= max(used) * D("1.000000001")
    assert sum(c.weight or 0 for c in result.used) == sum(c.weight or 0 for c in result.venues)
