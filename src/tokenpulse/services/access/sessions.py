"""Session tokens (SPEC §8.4): a short-lived signed token in exchange for an API key.

A token is a JWT (PyJWT, HS256) carrying the key id, tier and role, issued for
``AUTH_SESSION_TTL``. It is signed with a key derived from the server secret
(``AUTH_KEY_PEPPER``, else the bootstrap ``AUTH_API_KEY``), so it never contains or reveals
one. A token is only as good as its key: every check asks ``principal_of(key_id)`` for the
key's current principal, so a revoked or expired key's tokens stop working at once and a
changed tier or role applies to live tokens. Refresh renews an unexpired token (or one
expired less than one TTL ago) without the key.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import jwt

from tokenpulse.domain.access import Principal

ALGORITHM = "HS256"
ISSUER = "tokenpulse"
AUDIENCE = "tokenpulse-session"


@dataclass(frozen=True, slots=True)
class Session:
    """An issued token and when it expires (unix seconds)."""

    token: str
    expires_at: float
    principal: Principal


class SessionError(Exception):
    """Why a token was refused: ``code`` is ``TOKEN_EXPIRED`` or ``INVALID_TOKEN``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class SessionSigner:
    """Issues and checks session tokens; ``principal_of`` says whether a key is still usable."""

    def __init__(
        self,
        secret: str,
        *,
        ttl: float,
        principal_of: Callable[[str], Principal | None],
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not secret:
            raise ValueError("session tokens need a server secret")
        self._key = hmac.new(secret.encode(), b"tokenpulse-session-v1", hashlib.sha256).digest()
        self.ttl = ttl
        self.principal_of = principal_of
        self.clock = clock

    def issue(self, principal: Principal) -> Session:
        """A new token for ``principal`` (a key that just authenticated, or a refresh)."""
        now = self.clock()
        expires = now + self.ttl
        claims = {
            "sub": principal.key_id,
            "tier": principal.tier,
            "role": principal.role,
            "iat": int(now),
            "exp": expires,
            "iss": ISSUER,
            "aud": AUDIENCE,
        }
        token = jwt.encode(claims, self._key, algorithm=ALGORITHM)
        return Session(token, expires, replace(principal, expires_at=expires))

    def verify(self, token: str, *, leeway: float = 0.0) -> Principal:
        """The principal of a valid token whose key is still usable; raises SessionError."""
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=[ALGORITHM],
                audience=AUDIENCE,
                issuer=ISSUER,
                leeway=leeway,
                options={"require": ["exp", "sub", "iat"]},
            )
        except jwt.ExpiredSignatureError:
            raise SessionError("TOKEN_EXPIRED", "session token expired: refresh it") from None
        except jwt.InvalidTokenError:
            raise SessionError("INVALID_TOKEN", "invalid session token") from None
        if claims["exp"] <= self.clock() - leeway:  # our clock, not only PyJWT's
            raise SessionError("TOKEN_EXPIRED", "session token expired: refresh it")
        key_id = claims["sub"]
        principal = self.principal_of(key_id) if isinstance(key_id, str) else None
        if principal is None:
            raise SessionError("INVALID_TOKEN", "the key of this session was revoked or expired")
        return replace(principal, expires_at=float(claims["exp"]))

    def refresh(self, token: str) -> Session:
        """A new token for the same key: accepted until one TTL after the old one expired."""
        return self.issue(replace(self.verify(token, leeway=self.ttl), expires_at=None))
