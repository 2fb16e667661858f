"""Tests of bridgekit.store, each run on SQLite and (when configured) PostgreSQL."""
