"""Alembic migrations of bridgekit's tables (a package so that installs ship them)."""
