"""Token metrics: the token service, its ingestion, the market poller and the history backfill."""
