"""The client's address: the peer, or ``X-Forwarded-For`` when the peer is a trusted proxy."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from functools import lru_cache

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class ClientIpResolver:
    """Implements SPEC §8.3: XFF is believed only when the peer is in FORWARDED_ALLOW_IPS.

    Walking XFF from the right, trusted proxies are skipped; the first untrusted address is
    the client. A forged left-most XFF entry therefore cannot pick someone else's bucket.
    """

    def __init__(self, trusted: Sequence[str]) -> None:
        self.networks: tuple[Network, ...] = tuple(
            ipaddress.ip_network(item, strict=False) for item in trusted
        )
        self._is_trusted = lru_cache(maxsize=4096)(self._check)

    def _check(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self.networks)

    def resolve(self, peer: str | None, forwarded_for: bytes | None) -> str:
        client = peer or "unknown"
        if not forwarded_for or not self.networks or not self._is_trusted(client):
            return client
        hops = [hop.strip() for hop in forwarded_for.decode("latin-1").split(",") if hop.strip()]
        for hop in reversed(hops):
            if not self._is_trusted(hop):
                return hop
            client = hop
        return client
