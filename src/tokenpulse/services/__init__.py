"""Use cases the API and the CLI call."""
