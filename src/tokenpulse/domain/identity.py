"""Token identity: one stable lower-case ``id`` per coin, whichever provider serves it.

CoinMarketCap names a coin by a numeric id and a slug (``1839``, ``binance-coin``), CoinGecko
by its own id (``binancecoin``), and ticker symbols are not unique (several tokens are called
``HOT``). :class:`IdentityRegistry` reconciles them (SPEC §4.3). The rules, in order:

1. a coin already known by one of the quote's provider ids keeps its id;
2. the table of known coins, passed in (the bundled one is ``tokenpulse.data.known_tokens``:
   CMC id, slugs and CoinGecko id of each, e.g. CMC slug ``xrp`` ↔ CoinGecko ``ripple`` →
   ``xrp``; a quote with no provider id is matched by symbol and name);
3. a CoinMarketCap quote: its slug is the id (unless a coin first seen from CoinGecko has the
   same symbol and normalised name, which keeps its id: an id once given never changes);
4. a CoinGecko quote: a known coin with the same id and symbol, or the same symbol and
   normalised name, and no CoinGecko id yet; else the CoinGecko id itself.

Ids reserved by the table are never given to another coin. The registry only ever grows;
:meth:`IdentityRegistry.add` restores identities saved earlier (e.g. from the history store)
so ids survive a restart whatever order the providers answer in.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from tokenpulse.domain.errors import AmbiguousToken, TokenNotFound
from tokenpulse.domain.tokens import TokenIdentity, TokenQuote

_NOT_ALNUM = re.compile(r"[^a-z0-9]+")
_MAX_CMC_ID_DIGITS = 18

# Whose symbol and name an identity shows: CoinMarketCap's when we have seen it (the primary
# market-data source), else CoinGecko's, else the bundled table's.
_NAMED_BY_CMC = 1
_NAMED_BY_OTHER = 2
_NAMED_BY_TABLE = 3


@dataclass(frozen=True, slots=True)
class KnownToken:
    """One row of the bundled table: a coin whose CMC slug and CoinGecko id differ."""

    id: str
    symbol: str
    name: str
    cmc_id: int | None
    cmc_slugs: tuple[str, ...]
    coingecko_id: str | None


def normalise_name(name: str) -> str:
    """A token name reduced for comparison: lower-case letters and digits only."""
    return _NOT_ALNUM.sub("", name.lower())


def slugify(text: str) -> str:
    """A lower-case slug (letters, digits, single dashes) made from free text."""
    return _NOT_ALNUM.sub("-", text.lower()).strip("-")


def parse_known_tokens(payload: dict[str, Any]) -> tuple[KnownToken, ...]:
    """The rows of a ``token_identities.json`` document."""
    rows: list[KnownToken] = []
    for row in payload["tokens"]:
        cmc_id = row.get("cmc_id")
        coingecko_id = row.get("coingecko_id")
        rows.append(
            KnownToken(
                id=str(row["id"]).lower(),
                symbol=str(row["symbol"]).upper(),
                name=str(row["name"]),
                cmc_id=int(cmc_id) if cmc_id is not None else None,
                cmc_slugs=tuple(str(slug).lower() for slug in row.get("cmc_slugs", ())),
                coingecko_id=str(coingecko_id).lower() if coingecko_id is not None else None,
            )
        )
    return tuple(rows)


@dataclass(slots=True)
class _Record:
    """The registry's mutable view of one coin; ``identity`` is rebuilt when it changes."""

    id: str
    symbol: str
    name: str
    cmc_id: int | None
    coingecko_id: str | None
    named_by: int
    identity: TokenIdentity

    def refresh(self) -> None:
        self.identity = TokenIdentity(
            id=self.id,
            symbol=self.symbol,
            name=self.name,
            cmc_id=self.cmc_id,
            coingecko_id=self.coingecko_id,
        )


class IdentityRegistry:
    """Every token we have seen, under one stable id, resolvable by any of its names.

    Deterministic (the same quotes in the same order give the same ids) and safe to share
    between threads; nothing here awaits, so it is trivially safe under asyncio.
    """

    def __init__(
        self,
        known: Iterable[KnownToken],
        *,
        identities: Iterable[TokenIdentity] = (),
    ) -> None:
        """``known`` is the table of known differences; ``identities`` are restored first."""
        self._lock = threading.RLock()
        self._records: dict[str, _Record] = {}
        self._by_cmc_id: dict[int, str] = {}
        self._by_cmc_slug: dict[str, str] = {}
        self._by_coingecko_id: dict[str, str] = {}
        self._by_symbol: dict[str, set[str]] = {}
        table = tuple(known)
        self._known_by_cmc_id = {row.cmc_id: row for row in table if row.cmc_id is not None}
        self._known_by_cmc_slug = {slug: row for row in table for slug in row.cmc_slugs}
        self._known_by_coingecko_id = {
            row.coingecko_id: row for row in table if row.coingecko_id is not None
        }
        self._reserved = {row.id: row for row in table}
        self._known_by_name = {(row.symbol, normalise_name(row.name)): row for row in table}
        for identity in identities:
            self.add(identity)

    # -- reading ---------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._records)

    def __iter__(self) -> Iterator[TokenIdentity]:
        """Identities in the order they were learned."""
        with self._lock:
            return iter([record.identity for record in self._records.values()])

    def __contains__(self, token_id: object) -> bool:
        return isinstance(token_id, str) and token_id.lower() in self._records

    def get(self, token_id: str) -> TokenIdentity | None:
        """The identity with our id ``token_id`` (case-insensitive), or None."""
        record = self._records.get(token_id.strip().lower())
        return record.identity if record is not None else None

    def resolve(self, text: str) -> TokenIdentity:
        """The token a client named: our id, a CMC id (digits), a CoinGecko id or a symbol.

        Raises TokenNotFound for an unknown name and AmbiguousToken (with
        ``details["candidates"]``) for a symbol several tokens share.
        """
        key = text.strip()
        lower = key.lower()
        with self._lock:
            found = self._lookup(key, lower)
            if found is not None:
                return found.identity
            ids = sorted(self._by_symbol.get(key.upper(), ()))
            if len(ids) == 1:
                return self._records[ids[0]].identity
            if ids:
                candidates = [
                    {
                        "id": identity.id,
                        "name": identity.name,
                        "cmc_id": identity.cmc_id,
                        "coingecko_id": identity.coingecko_id,
                    }
                    for identity in (self._records[token_id].identity for token_id in ids)
                ]
                raise AmbiguousToken(
                    f"symbol {key.upper()!r} is shared by {len(ids)} tokens; "
                    "ask for one of them by id",
                    details={"symbol": key.upper(), "candidates": candidates},
                )
        raise TokenNotFound(f"unknown token {key!r}", details={"token_id": key})

    def _lookup(self, key: str, lower: str) -> _Record | None:
        if not lower:
            return None
        if lower in self._records:
            return self._records[lower]
        if key.isascii() and key.isdigit() and len(key) <= _MAX_CMC_ID_DIGITS:
            token_id = self._by_cmc_id.get(int(key))
            if token_id is not None:
                return self._records[token_id]
        token_id = self._by_coingecko_id.get(lower) or self._by_cmc_slug.get(lower)
        return self._records[token_id] if token_id is not None else None

    # -- learning --------------------------------------------------------------------------

    def identify(self, quote: TokenQuote) -> TokenIdentity:
        """Our identity for the token a provider quoted, learning it the first time."""
        with self._lock:
            record = self._known_record(quote)
            if record is None:
                record = self._table_record(quote)
            if record is None:
                record = self._matched_or_new_record(quote)
            self._learn(record, quote)
            return record.identity

    def add(self, identity: TokenIdentity) -> TokenIdentity:
        """Restore an identity saved earlier (same id after a restart); returns the stored one.

        An id already present keeps its record; provider ids it lacks are filled in.
        """
        with self._lock:
            token_id = identity.id.strip().lower()
            record = self._records.get(token_id)
            if record is None:
                record = self._create(token_id, identity.symbol, identity.name, _NAMED_BY_OTHER)
            self._attach(record, identity.cmc_id, None, identity.coingecko_id)
            return record.identity

    def _known_record(self, quote: TokenQuote) -> _Record | None:
        """Rule 1: a coin already known by one of the quote's provider ids."""
        coingecko_id = _lower(quote.coingecko_id)
        candidates = (
            self._by_cmc_id.get(quote.cmc_id) if quote.cmc_id is not None else None,
            self._by_cmc_slug.get(_lower(quote.cmc_slug) or ""),
            self._by_coingecko_id.get(coingecko_id or ""),
        )
        for token_id in candidates:
            if token_id is None:
                continue
            record = self._records[token_id]
            if _compatible(record, quote.cmc_id, coingecko_id):
                return record
        return None

    def _table_record(self, quote: TokenQuote) -> _Record | None:
        """Rule 2: the bundled table of known CoinMarketCap/CoinGecko differences."""
        coingecko_id = _lower(quote.coingecko_id)
        row = (
            (self._known_by_cmc_id.get(quote.cmc_id) if quote.cmc_id is not None else None)
            or self._known_by_cmc_slug.get(_lower(quote.cmc_slug) or "")
            or self._known_by_coingecko_id.get(coingecko_id or "")
        )
        if row is None and quote.cmc_id is None and not quote.cmc_slug and not coingecko_id:
            row = self._known_by_name.get((quote.symbol.upper(), normalise_name(quote.name)))
        if row is None:
            return None
        if quote.cmc_id is not None and row.cmc_id is not None and row.cmc_id != quote.cmc_id:
            return None  # a slug reused by another CMC coin: not the coin in the table
        record = self._records.get(row.id)
        if record is None:
            record = self._create(row.id, row.symbol, row.name, _NAMED_BY_TABLE)
        self._attach(record, row.cmc_id, None, row.coingecko_id)
        for slug in row.cmc_slugs:
            self._by_cmc_slug.setdefault(slug, record.id)
        return record

    def _matched_or_new_record(self, quote: TokenQuote) -> _Record:
        """Rules 3 and 4: the CMC slug, a symbol + name match, or the CoinGecko id."""
        symbol = quote.symbol.strip().upper()
        name = normalise_name(quote.name)
        from_cmc = quote.cmc_id is not None or bool(quote.cmc_slug)
        if from_cmc:
            slug = slugify(quote.cmc_slug or "")
            existing = self._records.get(slug) if slug else None
            if existing is not None and existing.cmc_id is None and existing.symbol == symbol:
                return existing  # first seen from CoinGecko under an id equal to this slug
            # First seen from CoinGecko under another id: keep it rather than make a twin.
            match = self._unique_match(symbol, name, lacking_cmc=True)
            if match is not None:
                return match
            fallback = f"cmc-{quote.cmc_id}" if quote.cmc_id is not None else f"cmc-{slug}"
            token_id = slug if slug and self._free(slug) else fallback
        elif quote.coingecko_id:
            coingecko_id = quote.coingecko_id.strip().lower()
            existing = self._records.get(coingecko_id)
            if existing is not None and existing.coingecko_id is None and existing.symbol == symbol:
                return existing  # first seen from CMC under a slug equal to this id
            match = self._unique_match(symbol, name, lacking_coingecko=True)
            if match is not None:
                return match
            token_id = coingecko_id if self._free(coingecko_id) else f"cg-{coingecko_id}"
        else:
            match = self._unique_match(symbol, name)
            if match is not None:
                return match
            token_id = slugify(quote.name) or slugify(symbol) or "token"
        named_by = _NAMED_BY_CMC if from_cmc else _NAMED_BY_OTHER
        return self._create(self._unique_id(token_id), symbol, quote.name.strip(), named_by)

    def _unique_match(
        self,
        symbol: str,
        name: str,
        *,
        lacking_cmc: bool = False,
        lacking_coingecko: bool = False,
    ) -> _Record | None:
        """The one known coin with this symbol and normalised name (None if none or several)."""
        found = [
            record
            for record in (self._records[token_id] for token_id in self._by_symbol.get(symbol, ()))
            if normalise_name(record.name) == name
            and not (lacking_cmc and record.cmc_id is not None)
            and not (lacking_coingecko and record.coingecko_id is not None)
        ]
        return found[0] if len(found) == 1 else None

    def _free(self, token_id: str) -> bool:
        return token_id not in self._records and token_id not in self._reserved

    def _unique_id(self, token_id: str) -> str:
        """``token_id``, or ``token_id-2``, ``-3``… when another coin has it (rare fallback)."""
        candidate, counter = token_id, 2
        while not self._free(candidate):
            candidate, counter = f"{token_id}-{counter}", counter + 1
        return candidate

    def _create(
        self,
        token_id: str,
        symbol: str,
        name: str,
        named_by: int,
    ) -> _Record:
        identity = TokenIdentity(id=token_id, symbol=symbol.upper(), name=name)
        record = _Record(token_id, symbol.upper(), name, None, None, named_by, identity)
        self._records[token_id] = record
        self._by_symbol.setdefault(record.symbol, set()).add(token_id)
        return record

    def _attach(
        self,
        record: _Record,
        cmc_id: int | None,
        cmc_slug: str | None,
        coingecko_id: str | None,
    ) -> None:
        """Give ``record`` the provider ids it lacks, without taking one from another coin."""
        changed = False
        if cmc_id is not None and record.cmc_id is None and cmc_id not in self._by_cmc_id:
            record.cmc_id = cmc_id
            self._by_cmc_id[cmc_id] = record.id
            changed = True
        if cmc_slug:
            self._by_cmc_slug.setdefault(cmc_slug, record.id)
        coingecko_id = _lower(coingecko_id)
        if (
            coingecko_id
            and record.coingecko_id is None
            and coingecko_id not in self._by_coingecko_id
        ):
            record.coingecko_id = coingecko_id
            self._by_coingecko_id[coingecko_id] = record.id
            changed = True
        if changed:
            record.refresh()

    def _learn(self, record: _Record, quote: TokenQuote) -> None:
        """Attach the quote's provider ids and keep the preferred provider's symbol and name."""
        self._attach(record, quote.cmc_id, _lower(quote.cmc_slug), quote.coingecko_id)
        named_by = _NAMED_BY_CMC if quote.cmc_id is not None or quote.cmc_slug else _NAMED_BY_OTHER
        symbol = quote.symbol.strip().upper()
        name = quote.name.strip()
        if named_by > record.named_by or not symbol or not name:
            return
        record.named_by = named_by
        if symbol == record.symbol and name == record.name:
            return
        if symbol != record.symbol:
            self._by_symbol[record.symbol].discard(record.id)
            if not self._by_symbol[record.symbol]:
                del self._by_symbol[record.symbol]
            self._by_symbol.setdefault(symbol, set()).add(record.id)
        record.symbol, record.name = symbol, name
        record.refresh()


def _lower(value: str | None) -> str | None:
    return value.strip().lower() if value else None


def _compatible(record: _Record, cmc_id: int | None, coingecko_id: str | None) -> bool:
    """False when the quote names a different coin than ``record`` by one of its ids."""
    if cmc_id is not None and record.cmc_id is not None and record.cmc_id != cmc_id:
        return False
    return not (
        coingecko_id is not None
        and record.coingecko_id is not None
        and record.coingecko_id != coingecko_id
    )
