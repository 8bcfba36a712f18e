"""Use cases by capability (LTP, tokens, replication), talking to ports rather than adapters."""
