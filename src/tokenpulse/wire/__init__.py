"""The JSON of tickers and token snapshots, both ways: the one place a value becomes JSON."""
