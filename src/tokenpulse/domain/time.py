"""Time helpers: everything is timezone-aware UTC, converted at the source boundary."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    """Now, timezone-aware UTC."""
    return datetime.now(UTC)


def from_epoch(seconds: float) -> datetime:
    """A unix timestamp as an aware UTC datetime."""
    return datetime.fromtimestamp(seconds, UTC)


def parse_iso(value: str) -> datetime:
    """Parse an ISO 8601 timestamp (``Z`` or an offset) into aware UTC.

    A timestamp without an offset is taken as UTC, which is what every provider means.
    """
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is UTC:  # the usual case (every tick): nothing to convert
        return parsed
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def isoformat_z(moment: datetime) -> str:
    """ISO 8601 in UTC with a ``Z`` suffix and millisecond precision.

    ``isoformat`` in C for the usual case (a series answer formats up to 10 000 of these);
    ``strftime`` for years before 1000, where the two would pad the year differently.
    """
    utc = moment if moment.tzinfo is UTC else moment.astimezone(UTC)
    if utc.year >= _FOUR_DIGIT_YEAR:
        return utc.isoformat(timespec="milliseconds")[:-6] + "Z"  # drop "+00:00"
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


_FOUR_DIGIT_YEAR = 1000
