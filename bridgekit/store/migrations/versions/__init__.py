"""Alembic revisions, oldest first (a package so installs ship them; Alembic skips this file)."""
