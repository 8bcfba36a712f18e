"""History store (SPEC §5.2–§5.4): models, migrations, repository, batched writer, backfill.

The composition root builds one :class:`HistoryRepository` from ``DATABASE_URL`` after
:func:`~tokenpulse.store.history.migrate.upgrade`, feeds live values through a
:class:`HistoryWriter`, and fills holes with a :class:`Backfiller`.
"""

from tokenpulse.domain.history import TokenPoint
from tokenpulse.store.history._series import GRANULARITIES, MAX_POINTS, finest_granularity
from tokenpulse.store.history.repository import HistoryRepository
from tokenpulse.store.history.writer import HistoryWriter

__all__ = [
    "GRANULARITIES",
    "MAX_POINTS",
    "HistoryRepository",
    "HistoryWriter",
    "TokenPoint",
    "finest_granularity",
]
