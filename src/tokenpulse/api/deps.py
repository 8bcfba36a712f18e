"""What the API is built from, and the FastAPI dependencies that hand it to the routes.

The composition root (``bootstrap.py``) builds adapters and services; the API sees them only
through :class:`ApiServices`, so nothing in ``api/`` imports the composition root. The app
factory builds the API's own objects (endpoints, authenticator, streams) from them and keeps
them on ``app.state``; handlers get them through ``ServicesDep`` and each area's own alias
(``LtpDep`` in ``api/ltp/routes.py``, ``TokensDep`` in ``api/tokens/routes.py``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Protocol

from fastapi import Depends, Request

from tokenpulse.api.access import AccessServices
from tokenpulse.bus.base import EventBus
from tokenpulse.domain.pairs import PairRegistry
from tokenpulse.observability.metrics import Metrics
from tokenpulse.services.ltp.prices import PriceService
from tokenpulse.services.ltp.supervisor import LtpSupervisor
from tokenpulse.services.tokens.ingest import MarketIngest
from tokenpulse.services.tokens.service import TokenService
from tokenpulse.settings import Settings
from tokenpulse.store.cache.base import Cache
from tokenpulse.store.history.repository import HistoryRepository
from tokenpulse.store.ratelimit import RateLimiter


class RunStatus(Protocol):
    """What the runtime found out while starting that the API reports."""

    @property
    def history_error(self) -> str | None:
        """Why the history store is unusable (None: it is fine, or not checked yet)."""
        ...

    @property
    def ingesting(self) -> bool:
        """This instance runs the sources right now (else it serves what the bus brings)."""
        ...

    def ingest_lock(self) -> str:
        """``held``, ``not held``, ``ingesting without the lock`` or ``not used``."""
        ...

    async def reload_latest(self) -> int:
        """Load the latest values the ingest leader saved (a resync); never raises."""
        ...


class ApiServices(Protocol):
    """The services and adapters the API serves from (the composition root's container)."""

    @property
    def settings(self) -> Settings: ...
    @property
    def metrics(self) -> Metrics: ...
    @property
    def registry(self) -> PairRegistry: ...
    @property
    def cache(self) -> Cache: ...
    @property
    def limiter(self) -> RateLimiter | None: ...
    @property
    def bus(self) -> EventBus: ...
    @property
    def prices(self) -> PriceService: ...
    @property
    def supervisor(self) -> LtpSupervisor | None: ...
    @property
    def tokens(self) -> TokenService: ...
    @property
    def history(self) -> HistoryRepository | None: ...
    @property
    def market(self) -> MarketIngest | None: ...
    @property
    def started_at(self) -> datetime: ...
    @property
    def state(self) -> RunStatus: ...
    @property
    def unknown_tracked_tokens(self) -> tuple[str, ...]: ...
    @property
    def access(self) -> AccessServices | None: ...


class Lifecycle(Protocol):
    """What the app's lifespan starts and stops (the runtime)."""

    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    async def abort(self) -> None: ...


def get_services(request: Request) -> ApiServices:
    """The services this app was built from."""
    services: ApiServices = request.app.state.services
    return services


ServicesDep = Annotated[ApiServices, Depends(get_services)]
