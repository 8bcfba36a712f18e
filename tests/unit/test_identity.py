"""Token identity: CMC slugs and CoinGecko ids reconciled into one stable id (SPEC §4.3).

Quotes are built from the recorded listings in ``tests/fixtures/`` (byte copies of the shared
fixtures, see ``shared/fixtures/README.md``): the CMC top 100 of 2021-08-31, the CMC listing of
2019-02-08 and the CoinGecko top 100 of 2021-06-24.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tokenpulse.api.errors import status_for
from tokenpulse.data import known_tokens
from tokenpulse.domain.errors import AmbiguousToken, TokenNotFound
from tokenpulse.domain.identity import (
    IdentityRegistry,
    KnownToken,
    normalise_name,
)
from tokenpulse.domain.numbers import parse_decimal
from tokenpulse.domain.time import parse_iso
from tokenpulse.domain.tokens import TokenIdentity, TokenQuote

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def _load(path: str) -> Any:
    return json.loads((FIXTURES / path).read_text(encoding="utf-8"))


CMC_2021 = {
    row["slug"]: row
    for row in _load("coinmarketcap/listings_latest_2021-08-31_top100.json")["data"]
}
CMC_2019 = {
    row["slug"]: row
    for row in _load("coinmarketcap/listings_latest_2019-02-08_3coins.json")["data"]
}
CG_2021 = {row["id"]: row for row in _load("coingecko/coins_markets_usd_2021-06-24_top100.json")}


def _number(value: object, field: str) -> Any:
    return None if value is None else parse_decimal(value, field=field)


def cmc_quote(row: dict[str, Any]) -> TokenQuote:
    """A CMC listings/latest row as a TokenQuote (what the CMC parser produces)."""
    usd = row["quote"]["USD"]
    return TokenQuote(
        source="coinmarketcap",
        symbol=row["symbol"],
        name=row["name"],
        received_at=parse_iso(usd["last_updated"]),
        cmc_id=row["id"],
        cmc_slug=row["slug"],
        rank=row["cmc_rank"],
        price_usd=_number(usd["price"], "price"),
        market_cap_usd=_number(usd["market_cap"], "market_cap"),
        volume_24h_usd=_number(usd["volume_24h"], "volume_24h"),
        circulating_supply=_number(row["circulating_supply"], "circulating_supply"),
        as_of=parse_iso(usd["last_updated"]),
    )


def cg_quote(row: dict[str, Any]) -> TokenQuote:
    """A CoinGecko coins/markets row as a TokenQuote (what the CoinGecko parser produces)."""
    return TokenQuote(
        source="coingecko",
        symbol=row["symbol"].upper(),
        name=row["name"],
        received_at=parse_iso(row["last_updated"]),
        coingecko_id=row["id"],
        rank=row["market_cap_rank"],
        price_usd=_number(row["current_price"], "current_price"),
        market_cap_usd=_number(row["market_cap"], "market_cap"),
        volume_24h_usd=_number(row["total_volume"], "total_volume"),
        as_of=parse_iso(row["last_updated"]),
    )


# Hydro Protocol, the other token called HOT (CMC id 2430, CMC slug and CoinGecko id
# `hydro-protocol`: public identifiers, not in the recordings). Identity only: no market values.
HYDRO_CMC = TokenQuote(
    source="coinmarketcap",
    symbol="HOT",
    name="Hydro Protocol",
    received_at=datetime(2021, 8, 31, 13, 40, tzinfo=UTC),
    cmc_id=2430,
    cmc_slug="hydro-protocol",
)
HYDRO_CG = TokenQuote(
    source="coingecko",
    symbol="HOT",
    name="Hydro Protocol",
    received_at=datetime(2021, 8, 31, 13, 40, tzinfo=UTC),
    coingecko_id="hydro-protocol",
)


def shared_symbols() -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(CMC row, CG row) for every coin present in both top-100 lists under one symbol."""
    by_symbol = {row["symbol"].upper(): row for row in CG_2021.values()}
    return [
        (row, by_symbol[row["symbol"]]) for row in CMC_2021.values() if row["symbol"] in by_symbol
    ]


# -- the recorded known differences ------------------------------------------------------------


def test_xrp_from_cmc_then_coingecko_is_one_token() -> None:
    registry = IdentityRegistry(known_tokens())
    from_cmc = registry.identify(cmc_quote(CMC_2021["xrp"]))
    from_cg = registry.identify(cg_quote(CG_2021["ripple"]))
    assert from_cmc.id == from_cg.id == "xrp"
    assert from_cg == TokenIdentity(
        id="xrp", symbol="XRP", name="XRP", cmc_id=52, coingecko_id="ripple"
    )
    assert len(registry) == 1


def test_bnb_from_coingecko_then_cmc_is_one_token() -> None:
    registry = IdentityRegistry(known_tokens())
    from_cg = registry.identify(cg_quote(CG_2021["binancecoin"]))
    from_cmc = registry.identify(cmc_quote(CMC_2021["binance-coin"]))
    assert from_cg.id == from_cmc.id == "bnb"
    assert from_cmc.cmc_id == 1839
    assert from_cmc.coingecko_id == "binancecoin"
    assert len(registry) == 1


def test_the_2019_cmc_slug_ripple_is_still_xrp() -> None:
    registry = IdentityRegistry(known_tokens())
    old = registry.identify(cmc_quote(CMC_2019["ripple"]))
    new = registry.identify(cmc_quote(CMC_2021["xrp"]))
    assert old.id == new.id == "xrp"
    assert registry.resolve("ripple").id == "xrp"


@pytest.mark.parametrize(
    ("cmc_slug", "coingecko_id", "expected"),
    [
        ("polygon", "matic-network", "polygon"),
        ("avalanche", "avalanche-2", "avalanche"),
        ("multi-collateral-dai", "dai", "multi-collateral-dai"),
        ("theta", "theta-token", "theta"),  # names differ: THETA vs Theta Network
        ("synthetix-network-token", "havven", "synthetix-network-token"),
        ("terra-luna", "terra-luna", "terra-luna"),  # same on both sides, no table row
        ("bitcoin", "bitcoin", "bitcoin"),
    ],
)
def test_cmc_slug_and_coingecko_id_reconcile_in_either_order(
    cmc_slug: str, coingecko_id: str, expected: str
) -> None:
    cmc, cg = cmc_quote(CMC_2021[cmc_slug]), cg_quote(CG_2021[coingecko_id])
    first = IdentityRegistry(known_tokens())
    assert first.identify(cmc).id == first.identify(cg).id == expected
    second = IdentityRegistry(known_tokens())
    assert second.identify(cg).id == second.identify(cmc).id == expected
    assert first.get(expected) == second.get(expected)


def test_every_coin_in_both_recorded_lists_gets_one_id_whatever_the_order() -> None:
    pairs = shared_symbols()
    assert len(pairs) == 87
    cmc_first, cg_first = IdentityRegistry(known_tokens()), IdentityRegistry(known_tokens())
    for cmc_row, _ in pairs:
        cmc_first.identify(cmc_quote(cmc_row))
    for _, cg_row in pairs:
        cg_first.identify(cg_quote(cg_row))
    for cmc_row, cg_row in pairs:
        a = cmc_first.identify(cg_quote(cg_row))
        b = cg_first.identify(cmc_quote(cmc_row))
        assert a.id == b.id, (cmc_row["slug"], cg_row["id"])
        assert a.cmc_id == b.cmc_id == cmc_row["id"]
        assert a.coingecko_id == b.coingecko_id == cg_row["id"]
    assert len(cmc_first) == len(cg_first) == 87


def test_the_whole_recorded_lists_give_113_tokens() -> None:
    registry = IdentityRegistry(known_tokens())
    for row in CMC_2021.values():
        registry.identify(cmc_quote(row))
    for row in CG_2021.values():
        registry.identify(cg_quote(row))
    assert len(registry) == 100 + 100 - 87
    assert len({identity.id for identity in registry}) == len(registry)
    assert all(identity.id == identity.id.lower() for identity in registry)


def test_bundled_table_covers_every_recorded_difference() -> None:
    """Re-does the comparison the table was built from (data/README.md)."""
    table = {row.cmc_id: row for row in known_tokens()}
    differences = [(c, g) for c, g in shared_symbols() if c["slug"] != g["id"]]
    assert len(differences) == 27
    for cmc_row, cg_row in differences:
        row = table[cmc_row["id"]]
        assert row.coingecko_id == cg_row["id"]
        assert cmc_row["slug"] in row.cmc_slugs
    assert len(table) == len(known_tokens())  # one row per CMC id


def test_without_the_table_symbol_and_name_still_link_but_renamed_coins_split() -> None:
    registry = IdentityRegistry(known=())
    # Same symbol and normalised name: the CoinGecko id joins the CMC slug's token.
    assert registry.identify(cmc_quote(CMC_2021["xrp"])).id == "xrp"
    assert registry.identify(cg_quote(CG_2021["ripple"])).id == "xrp"
    # Names differ (THETA / Theta Network): without the table these are two tokens.
    assert registry.identify(cmc_quote(CMC_2021["theta"])).id == "theta"
    assert registry.identify(cg_quote(CG_2021["theta-token"])).id == "theta-token"


# -- resolving what a client typed --------------------------------------------------------------


@pytest.fixture
def registry() -> IdentityRegistry:
    registry = IdentityRegistry(known_tokens())
    for slug in ("bitcoin", "xrp", "binance-coin", "holo"):
        registry.identify(cmc_quote(CMC_2021[slug]))
    for coingecko_id in ("bitcoin", "ripple", "binancecoin", "holotoken"):
        registry.identify(cg_quote(CG_2021[coingecko_id]))
    return registry


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("xrp", "xrp"),  # our id
        ("XRP", "xrp"),  # our id, any case / the symbol
        (" Xrp ", "xrp"),
        ("52", "xrp"),  # CMC id
        ("ripple", "xrp"),  # CoinGecko id
        ("1839", "bnb"),
        ("binancecoin", "bnb"),
        ("binance-coin", "bnb"),  # the CMC slug of the recording
        ("BNB", "bnb"),
        ("1", "bitcoin"),
        ("btc", "bitcoin"),
        ("holotoken", "holo"),
        ("HOT", "holo"),  # only one HOT known so far
    ],
)
def test_resolve_accepts_id_cmc_id_coingecko_id_and_symbol(
    registry: IdentityRegistry, text: str, expected: str
) -> None:
    assert registry.resolve(text).id == expected


@pytest.mark.parametrize("text", ["nosuchcoin", "", "   ", "99999999", "9" * 5000])
def test_resolve_unknown_raises_token_not_found(registry: IdentityRegistry, text: str) -> None:
    with pytest.raises(TokenNotFound) as caught:
        registry.resolve(text)
    assert status_for(caught.value) == 404
    assert caught.value.code == "TOKEN_NOT_FOUND"


def test_a_shared_symbol_is_ambiguous_and_lists_the_candidates(
    registry: IdentityRegistry,
) -> None:
    registry.identify(HYDRO_CMC)
    registry.identify(HYDRO_CG)
    with pytest.raises(AmbiguousToken) as caught:
        registry.resolve("hot")
    error = caught.value
    assert status_for(error) == 409
    assert error.code == "AMBIGUOUS_TOKEN"
    assert error.details["candidates"] == [
        {"id": "holo", "name": "Holo", "cmc_id": 2682, "coingecko_id": "holotoken"},
        {
            "id": "hydro-protocol",
            "name": "Hydro Protocol",
            "cmc_id": 2430,
            "coingecko_id": "hydro-protocol",
        },
    ]
    # Each of them is still reachable without ambiguity.
    assert registry.resolve("holo").id == "holo"
    assert registry.resolve("2430").id == "hydro-protocol"
    assert registry.resolve("hydro-protocol").id == "hydro-protocol"


def test_same_symbol_different_name_is_never_merged() -> None:
    registry = IdentityRegistry(known_tokens())
    hydro = registry.identify(HYDRO_CG)  # CoinGecko first, then CMC's Holo with the same symbol
    holo = registry.identify(cmc_quote(CMC_2021["holo"]))
    assert hydro.id != holo.id
    assert registry.identify(HYDRO_CMC).id == hydro.id == "hydro-protocol"


# -- stability ---------------------------------------------------------------------------------


def test_identify_is_stable_across_calls_and_other_tokens() -> None:
    registry = IdentityRegistry(known_tokens())
    first = registry.identify(cmc_quote(CMC_2021["xrp"]))
    for row in CG_2021.values():
        registry.identify(cg_quote(row))
    for row in CMC_2021.values():
        registry.identify(cmc_quote(row))
    assert registry.identify(cmc_quote(CMC_2021["xrp"])) == registry.get("xrp")
    assert registry.get("xrp") is not None
    assert registry.get("XRP") == registry.get("xrp")
    assert first.id == "xrp"


def test_the_same_quotes_in_the_same_order_give_the_same_registry() -> None:
    quotes = [cg_quote(row) for row in CG_2021.values()]
    quotes += [cmc_quote(row) for row in CMC_2021.values()]
    quotes += [HYDRO_CG, HYDRO_CMC]
    a, b = IdentityRegistry(known_tokens()), IdentityRegistry(known_tokens())
    assert [a.identify(q) for q in quotes] == [b.identify(q) for q in quotes]
    assert list(a) == list(b)


def test_cmc_names_win_over_coingecko_names() -> None:
    registry = IdentityRegistry(known_tokens())
    registry.identify(cg_quote(CG_2021["shiba-inu"]))
    # CoinGecko's name; the CMC id comes from the bundled table, before CMC ever answers.
    assert registry.get("shiba-inu") == TokenIdentity(
        id="shiba-inu", symbol="SHIB", name="Shiba Inu", cmc_id=5994, coingecko_id="shiba-inu"
    )
    registry.identify(cmc_quote(CMC_2021["shiba-inu"]))
    registry.identify(cg_quote(CG_2021["shiba-inu"]))  # does not flip back
    identity = registry.get("shiba-inu")
    assert identity is not None
    assert identity.name == "SHIBA INU"
    assert identity.cmc_id == 5994


def test_restored_identities_keep_their_ids_whatever_the_provider_order() -> None:
    first = IdentityRegistry(known=())
    first.identify(cg_quote(CG_2021["theta-token"]))
    first.identify(cmc_quote(CMC_2021["holo"]))
    # After a restart CMC answers first; the saved identities decide the ids.
    restarted = IdentityRegistry(known=(), identities=list(first))
    assert restarted.identify(cmc_quote(CMC_2021["holo"])).id == "holo"
    assert restarted.identify(cg_quote(CG_2021["theta-token"])).id == "theta-token"
    assert [identity.id for identity in restarted] == ["theta-token", "holo"]


def test_a_table_id_is_never_given_to_another_coin() -> None:
    # A hypothetical CoinGecko coin whose id is the table's id for another coin.
    table = (
        KnownToken(
            id="xrp",
            symbol="XRP",
            name="XRP",
            cmc_id=52,
            cmc_slugs=("xrp",),
            coingecko_id="ripple",
        ),
    )
    registry = IdentityRegistry(known=table)
    other = TokenQuote(
        source="coingecko",
        symbol="XRPX",
        name="Not XRP",
        received_at=datetime(2021, 8, 31, tzinfo=UTC),
        coingecko_id="xrp",
    )
    assert registry.identify(other).id == "cg-xrp"
    assert registry.identify(cmc_quote(CMC_2021["xrp"])).id == "xrp"
    assert registry.resolve("xrp").id == "xrp"  # our id wins over the other coin's CG id


def test_a_coin_without_provider_ids_is_named_from_its_name() -> None:
    registry = IdentityRegistry(known_tokens())
    quote = TokenQuote(
        source="replay", symbol="BTC", name="Bitcoin", received_at=datetime(2021, 1, 1, tzinfo=UTC)
    )
    assert registry.identify(quote).id == "bitcoin"
    assert registry.identify(cmc_quote(CMC_2021["bitcoin"])).id == "bitcoin"
    assert len(registry) == 1


@pytest.mark.parametrize(
    ("name", "normalised"),
    [
        ("Crypto.com Coin", "cryptocomcoin"),
        ("SHIBA INU", "shibainu"),
        ("yearn.finance", "yearnfinance"),
    ],
)
def test_normalise_name(name: str, normalised: str) -> None:
    assert normalise_name(name) == normalised


def test_every_table_coin_resolves_by_any_name_whichever_provider_serves_it() -> None:
    """SPEC §4.3: a coin CoinGecko serves answers to its CMC id and slug, and the reverse."""
    rows = known_tokens()
    assert len(rows) >= 89
    cg_served = IdentityRegistry(known_tokens())
    cmc_served = IdentityRegistry(known_tokens())
    by_cmc_id = {row["id"]: row for row in CMC_2021.values()}
    cmc_rows = [row for row in rows if row.cmc_id in by_cmc_id]  # the rest: test_identity_table
    for row in rows:
        assert row.cmc_id is not None
        assert row.coingecko_id is not None
        cg_served.identify(
            TokenQuote(
                source="coingecko",
                symbol=row.symbol,
                name=row.name,
                received_at=datetime(2023, 10, 8, tzinfo=UTC),
                coingecko_id=row.coingecko_id,
            )
        )
        if row.cmc_id in by_cmc_id:
            cmc_served.identify(cmc_quote(by_cmc_id[row.cmc_id]))
    for registry, served in ((cg_served, rows), (cmc_served, cmc_rows)):
        for row in served:
            names = [str(row.cmc_id), row.coingecko_id, row.id, *row.cmc_slugs]
            assert {registry.resolve(name).id for name in names} == {row.id}, row.id
    assert cg_served.resolve("1").id == "bitcoin"
    assert cg_served.resolve("1027").id == "ethereum"
