"""Stream connection slots per key shared in Redis (SPEC §8.2, §8.3): N instances, one limit.

A sorted set per key id, ``<prefix>streams:<key_id>``, holds one member ``<instance>:<sid>``
per open stream connection, scored by the time (Redis ``TIME``, ms) its entry expires. Each
instance re-scores its live connections every ``ttl / 3`` seconds; a crashed instance stops
refreshing, so its entries expire after at most ``ttl`` and free their slots. Admission
(drop the expired, count, add) is one Lua script, so two instances never both take the last
slot. Every method raises RedisError/OSError when Redis fails: the caller decides.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from redis.exceptions import RedisError

if TYPE_CHECKING:
    import redis.asyncio as aioredis

# KEYS[1]: the key's set. ARGV: member, limit, ttl (ms). 1 admitted (or already held), 0 full.
ADMIT_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
    return 0
  end
end
redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
if redis.call('PTTL', KEYS[1]) < ttl then
  redis.call('PEXPIRE', KEYS[1], ttl)
end
return 1
"""

# KEYS[1]: the key's set. ARGV: ttl (ms), then the members to keep alive.
REFRESH_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[1])
for i = 2, #ARGV do
  redis.call('ZADD', KEYS[1], now + ttl, ARGV[i])
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('PTTL', KEYS[1]) < ttl then
  redis.call('PEXPIRE', KEYS[1], ttl)
end
return 1
"""


class RedisStreamSlots:
    """One instance's view of the shared per-key stream connection slots."""

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        key_prefix: str,
        ttl: float,
        instance: str | None = None,
    ) -> None:
        self.client = client
        self.prefix = key_prefix + "streams:"
        self.ttl = ttl
        self.instance = instance or secrets.token_hex(6)
        self._ttl_ms = max(1, int(ttl * 1000))
        self._admit = client.register_script(ADMIT_LUA)
        self._refresh = client.register_script(REFRESH_LUA)

    def key(self, key_id: str) -> str:
        """The sorted set of ``key_id``'s connections."""
        return self.prefix + key_id

    def member(self, sid: str) -> str:
        """The member of a connection of this instance."""
        return f"{self.instance}:{sid}"

    async def acquire(self, key_id: str, sid: str, limit: int) -> bool:
        """Take a slot of ``key_id`` for ``sid`` unless ``limit`` live ones are taken."""
        admitted = await self._admit(
            keys=[self.key(key_id)], args=[self.member(sid), limit, self._ttl_ms]
        )
        return bool(admitted)

    async def release(self, key_id: str, sid: str) -> None:
        """Free ``sid``'s slot."""
        await self.client.zrem(self.key(key_id), self.member(sid))

    async def refresh(self, held: Mapping[str, Sequence[str]]) -> None:
        """Keep this instance's live connections (key id -> sids) counted: one round trip."""
        if not held:
            return
        async with self.client.pipeline(transaction=False) as pipe:
            for key_id, sids in held.items():
                members = [self.member(sid) for sid in sids]
                await self._refresh(
                    keys=[self.key(key_id)], args=[self._ttl_ms, *members], client=pipe
                )
            await pipe.execute()


__all__ = ["RedisError", "RedisStreamSlots"]
