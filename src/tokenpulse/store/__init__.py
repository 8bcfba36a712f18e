"""Storage adapters: the latest-value cache and (later) the history store."""
