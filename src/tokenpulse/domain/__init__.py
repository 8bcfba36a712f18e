"""Pure domain: pairs, tickers, freshness, events, the exception tree. No I/O."""
