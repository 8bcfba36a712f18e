"""A key as the request-time cache holds it: its record, principal and times as unix seconds."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from tokenpulse.domain.access import KeyRecord, Principal


@dataclass(frozen=True, slots=True)
class _Entry:
    """A cached key: what a request check needs, times as unix seconds."""

    record: KeyRecord
    principal: Principal
    expires: float  # inf: never
    revoked: float  # inf: not revoked
    previous_until: float  # -inf: no previous secret


def _ts(moment: datetime | None, default: float) -> float:
    return default if moment is None else moment.timestamp()


def _entry(record: KeyRecord) -> _Entry:
    return _Entry(
        record=record,
        principal=Principal(
            key_id=record.key_id,
            tier=record.tier,
            role=record.role,
            allowed_ips=record.allowed_ips,
            allowed_origins=record.allowed_origins,
        ),
        expires=_ts(record.expires_at, float("inf")),
        revoked=_ts(record.revoked_at, float("inf")),
        previous_until=_ts(record.previous_expires_at, float("-inf")),
    )


class LocalEdits:
    """The keys this instance changed, in order: a reload keeps the changes made while it
    read the store, so a key created (or revoked) meanwhile does not vanish (or come back)
    until the next reload."""

    def __init__(self) -> None:
        self.count = 0
        self._at: dict[str, int] = {}

    def mark(self, key_id: str) -> None:
        self.count += 1
        self._at[key_id] = self.count

    def merge(
        self, began: int, loaded: dict[str, _Entry], current: dict[str, _Entry]
    ) -> dict[str, _Entry]:
        """``loaded`` (read from the store since edit ``began``) with the later local edits."""
        for key_id, at in self._at.items():
            if at > began:
                local = current.get(key_id)
                if local is None:
                    loaded.pop(key_id, None)
                else:
                    loaded[key_id] = local
        self._at = {key_id: at for key_id, at in self._at.items() if at > began}
        return loaded
