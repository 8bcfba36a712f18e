"""Pure domain: pairs, tickers, tokens, identity, velocity, quality, trends, errors. No I/O."""
