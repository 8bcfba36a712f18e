"""Alembic environment of the history store (run through :mod:`..migrate`)."""
