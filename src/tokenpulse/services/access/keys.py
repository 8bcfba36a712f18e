"""API keys as a service (SPEC §8.1): management, and the in-process cache every request reads.

:meth:`KeyService.authenticate` never touches the database: a dict lookup and one HMAC compared
in constant time. The dict is loaded at start, reloaded every ``AUTH_KEYS_REFRESH`` and changed at
once everywhere: a change is written, then announced on bus topic ``access`` (revocations apply at
once, the key is re-read); a Redis revision each instance polls catches a lost message.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import time
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import orjson
import structlog

from tokenpulse.bus.base import EventBus
from tokenpulse.domain.access import (
    KEY_PREFIX,
    KeyRecord,
    Principal,
    check_role,
    check_tier,
    generate_key,
    generate_secret,
    hash_secret,
    split_key,
)
from tokenpulse.domain.errors import InvalidParameter, StoreError, TokenNotFound
from tokenpulse.domain.time import utcnow
from tokenpulse.services._unbroken import Unbroken
from tokenpulse.services.access._entries import LocalEdits, _Entry, _entry
from tokenpulse.services.access._revision import KeyRevisionPort, RevisionWatch

log = structlog.get_logger(__name__)

ACCESS_TOPIC = "access"
TOUCH_INTERVAL = 10.0  # seconds between last-used writes
STOP_FLUSH_TIMEOUT = 1.0  # seconds the last-used write may take at shutdown
MAX_VERIFIED = 10_000  # keys remembered as verified (the cache is cleared past it)


class KeyStorePort(Protocol):
    """Where keys live (``store/keys.py``)."""

    async def insert(self, record: KeyRecord) -> None: ...
    async def get(self, key_id: str) -> KeyRecord | None: ...
    async def all(self) -> list[KeyRecord]: ...
    async def update(self, key_id: str, **values: object) -> KeyRecord | None: ...
    async def touch(self, used: dict[str, datetime]) -> None: ...


class KeyNotFound(TokenNotFound):
    """No key with this id (404)."""

    code = "KEY_NOT_FOUND"


class KeyService:
    """Stored keys: create/list/show/revoke/rotate/set-tier/set-role, and the request-time cache."""

    def __init__(
        self,
        store: KeyStorePort,
        *,
        pepper: str,
        bus: EventBus | None = None,
        refresh_interval: float = 30.0,
        clock: Callable[[], float] = time.time,
        revision: KeyRevisionPort | None = None,
    ) -> None:
        if not pepper:
            raise ValueError("stored keys need AUTH_KEY_PEPPER")
        self.store = store
        self._pepper = pepper.encode()
        self.bus = bus
        self.refresh_interval = refresh_interval
        self.clock = clock
        self._entries: dict[str, _Entry] = {}
        # key text -> (entry verified against, by the previous secret?): a repeat caller costs a
        # dict lookup, not an HMAC; valid while that entry is current (any change replaces it).
        self._verified: dict[bytes, tuple[_Entry, bool]] = {}
        self._used: dict[str, float] = {}
        self._on_revoked: list[Callable[[str], None]] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop_task: asyncio.Task[None] | None = None
        self._detach: Callable[[], None] | None = None
        self._unwatch: Callable[[], None] | None = None
        self.revision = revision
        self.watch = RevisionWatch(revision, self.reload) if revision is not None else None
        self._watch_task: asyncio.Task[None] | None = None
        self.loaded, self._unbroken = False, Unbroken()  # a stop never cuts a store call
        self._edits = LocalEdits()  # a reload does not undo what was changed while it read

    # ------------------------------------------------------------------ request path

    def authenticate(self, api_key: bytes) -> Principal | None:
        """The principal of a valid, active stored key; None otherwise. No I/O."""
        hit = self._verified.get(api_key)
        if hit is not None:
            entry, by_previous = hit
            record = entry.record
            if self._entries.get(record.key_id) is entry:
                now = self.clock()
                if (
                    now < entry.revoked
                    and now < entry.expires
                    and (not by_previous or now < entry.previous_until)
                ):
                    self._used[record.key_id] = now
                    return entry.principal
                return None
            del self._verified[api_key]
        return self._verify(api_key)

    def _verify(self, api_key: bytes) -> Principal | None:
        """The full check: parse, find the key id, one HMAC, constant-time comparisons."""
        try:
            parts = split_key(api_key.decode("ascii"))
        except UnicodeDecodeError:
            return None
        if parts is None:
            return None
        entry = self._entries.get(parts[0])
        if entry is None:
            return None
        now = self.clock()
        if now >= entry.revoked or now >= entry.expires:
            return None
        digest = hash_secret(self._pepper, parts[1]).encode()
        ok = hmac.compare_digest(digest, entry.record.secret_hash.encode())
        by_previous = False
        if not ok and now < entry.previous_until and entry.record.previous_hash is not None:
            ok = by_previous = hmac.compare_digest(digest, entry.record.previous_hash.encode())
        if not ok:
            return None
        if len(self._verified) >= MAX_VERIFIED:
            self._verified.clear()
        self._verified[api_key] = (entry, by_previous)
        self._used[entry.record.key_id] = now
        return entry.principal

    def principal(self, key_id: str) -> Principal | None:
        """The current principal of an active key (for session tokens); None when it is
        unknown, revoked or expired."""
        entry = self._entries.get(key_id)
        if entry is None:
            return None
        now = self.clock()
        if now >= entry.revoked or now >= entry.expires:
            return None
        return entry.principal

    def on_revoked(self, callback: Callable[[str], None]) -> None:
        """Call ``callback(key_id)`` when a key stops being usable (revoked, or removed)."""
        self._on_revoked.append(callback)

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Load every key, listen for changes on the bus, reload periodically."""
        if self.bus is not None and self._detach is None:
            self._detach = self.bus.subscribe(ACCESS_TOPIC, self._on_message)
            # What was announced while the subscription was down is lost: reload on its return.
            self._unwatch = self.bus.watch(self._on_bus_health)
        with contextlib.suppress(StoreError):
            await self.reload()
        if self._loop_task is None:
            self._loop_task = asyncio.create_task(self._refresh_loop(), name="key-refresh")
        if self.watch is not None and self._watch_task is None:
            self._watch_task = asyncio.create_task(self.watch.run(), name="key-revision")

    async def stop(self) -> None:
        """Stop listening; write the last-used times."""
        if self._detach is not None:
            self._detach()
            self._detach = None
        if self._unwatch is not None:
            self._unwatch()
            self._unwatch = None
        tasks = [t for t in (self._loop_task, self._watch_task, *self._tasks) if t is not None]
        for task in tasks:
            task.cancel()
        if tasks:  # wait() neither raises their errors nor swallows our own cancellation
            await asyncio.wait(tasks)
        self._loop_task = self._watch_task = None
        await self._unbroken.settle()  # a reload the cancel left running ends first
        # Last-used times are a convenience: never let them hold shutdown up.
        with contextlib.suppress(StoreError, TimeoutError):
            await asyncio.wait_for(self._unbroken(self.flush_usage()), STOP_FLUSH_TIMEOUT)

    async def reload(self) -> None:
        """Replace the cache with what the store holds."""
        began = self._edits.count
        records = await self._unbroken(self.store.all())
        before = set(self._entries)
        loaded = {r.key_id: _entry(r) for r in records}
        self._entries = self._edits.merge(began, loaded, self._entries)
        self.loaded = True
        for key_id in before - set(self._entries):
            self._revoked(key_id)
        for key_id, entry in self._entries.items():
            if entry.revoked <= self.clock():
                self._revoked(key_id)

    async def _refresh_loop(self) -> None:
        last_touch = time.monotonic()
        while True:
            await asyncio.sleep(min(self.refresh_interval, TOUCH_INTERVAL))
            try:
                if time.monotonic() - last_touch >= TOUCH_INTERVAL:
                    last_touch = time.monotonic()
                    await self.flush_usage()
                await self.reload()
            except StoreError as exc:
                log.warning("key store unavailable; serving the cached keys", error=exc.message)

    async def flush_usage(self) -> None:
        """Write the last-used times gathered since the previous flush."""
        used, self._used = self._used, {}
        if used:
            await self.store.touch({k: _utc(v) for k, v in used.items()})

    def _on_bus_health(self, healthy: bool) -> None:
        if healthy:
            self._spawn(self._reload_quietly())

    async def _reload_quietly(self) -> None:
        try:
            await self.reload()
        except StoreError as exc:
            log.warning("key reload failed; the periodic reload will retry", error=exc.message)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _on_message(self, _topic: str, payload: bytes) -> None:
        try:
            message = orjson.loads(payload)
            op, key_id = message["op"], message["key_id"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return
        if not isinstance(key_id, str):
            return
        if op == "revoke":
            self._apply_revocation(key_id)
        if op in {"revoke", "change", "create"}:
            self._spawn(self._refresh_one(key_id))

    def _apply_revocation(self, key_id: str) -> None:
        self._edits.mark(key_id)
        entry = self._entries.get(key_id)
        if entry is not None:
            now = self.clock()
            self._entries[key_id] = replace(entry, revoked=min(entry.revoked, now))
        self._revoked(key_id)

    async def _refresh_one(self, key_id: str) -> None:
        try:
            record = await self.store.get(key_id)
        except StoreError as exc:
            log.warning("key re-read failed; the periodic reload will retry", error=exc.message)
            return
        self._put(record, key_id)

    def _put(self, record: KeyRecord | None, key_id: str) -> None:
        self._edits.mark(key_id)
        if record is None:
            self._entries.pop(key_id, None)
            self._revoked(key_id)
            return
        entry = _entry(record)
        self._entries[key_id] = entry
        if entry.revoked <= self.clock():
            self._revoked(key_id)

    def _revoked(self, key_id: str) -> None:
        for callback in self._on_revoked:
            try:
                callback(key_id)
            except Exception as exc:  # one listener must not stop the others
                log.error("revocation listener failed", key_id=key_id, error=repr(exc))

    async def _announce(self, op: str, record: KeyRecord) -> None:
        self._put(record, record.key_id)
        if self.revision is not None:
            try:
                await self.revision.bump()
            except StoreError as exc:
                log.warning("key revision not bumped; the bus still announces", error=exc.message)
        if self.bus is not None:
            await self.bus.publish(ACCESS_TOPIC, orjson.dumps({"op": op, "key_id": record.key_id}))

    # ------------------------------------------------------------------ management

    async def create(
        self,
        *,
        name: str,
        owner: str = "",
        tier: str = "free",
        role: str = "reader",
        expires_at: datetime | None = None,
        allowed_origins: Iterable[str] = (),
        allowed_ips: Iterable[str] = (),
    ) -> tuple[KeyRecord, str]:
        """A new key: its record and its full text (shown once, never stored)."""
        name = _text(name, "name", required=True)
        new = generate_key()
        record = KeyRecord(
            key_id=new.key_id,
            name=name,
            owner=_text(owner, "owner"),
            tier=_checked(check_tier, tier, "tier"),
            role=_checked(check_role, role, "role"),
            secret_hash=hash_secret(self._pepper, new.secret),
            created_at=utcnow().replace(microsecond=0),
            expires_at=expires_at,
            allowed_origins=tuple(allowed_origins),
            allowed_ips=tuple(allowed_ips),
        )
        await self.store.insert(record)
        await self._announce("create", record)
        return record, new.text

    async def list(self) -> list[KeyRecord]:
        """Every key (from the store, so the answer is current)."""
        return await self.store.all()

    async def show(self, key_id: str) -> KeyRecord:
        """One key; KeyNotFound when there is none."""
        record = await self.store.get(key_id)
        if record is None:
            raise KeyNotFound(f"no API key with id {key_id!r}")
        return record

    async def revoke(self, key_id: str) -> KeyRecord:
        """Revoke a key now, on every instance (idempotent: the first time is kept)."""
        current = await self.show(key_id)
        if current.revoked_at is not None:
            return current
        return await self._change("revoke", key_id, revoked_at=utcnow())

    async def rotate(self, key_id: str, *, grace: float) -> tuple[KeyRecord, str]:
        """A new secret for the key; the old one keeps working for ``grace`` seconds."""
        current = await self.show(key_id)
        if current.status(utcnow()) != "active":
            raise InvalidParameter(f"key {key_id} is {current.status(utcnow())}", parameter="id")
        secret = generate_secret()
        record = await self._change(
            "change",
            key_id,
            secret_hash=hash_secret(self._pepper, secret),
            previous_hash=current.secret_hash if grace > 0 else None,
            previous_expires_at=utcnow() + timedelta(seconds=grace) if grace > 0 else None,
        )
        return record, f"{KEY_PREFIX}{key_id}_{secret}"

    async def set_tier(self, key_id: str, tier: str) -> KeyRecord:
        """Change a key's tier (limits follow at once on every instance)."""
        return await self._change("change", key_id, tier=_checked(check_tier, tier, "tier"))

    async def set_role(self, key_id: str, role: str) -> KeyRecord:
        """Change a key's role."""
        return await self._change("change", key_id, role=_checked(check_role, role, "role"))

    async def _change(self, op: str, key_id: str, **values: object) -> KeyRecord:
        record = await self.store.update(key_id, **values)
        if record is None:
            raise KeyNotFound(f"no API key with id {key_id!r}")
        await self._announce(op, record)
        return record


def _utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _checked(check: Callable[[str], str], value: str, parameter: str) -> str:
    try:
        return check(value)
    except ValueError as exc:
        raise InvalidParameter(str(exc), parameter=parameter) from None


def _text(value: str, parameter: str, *, required: bool = False) -> str:
    value = value.strip()
    if required and not value:
        raise InvalidParameter(f"{parameter} must not be empty", parameter=parameter)
    if len(value) > 200:
        raise InvalidParameter(f"{parameter} is longer than 200 characters", parameter=parameter)
    return value
