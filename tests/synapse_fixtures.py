"""Synapse fixtures: one real homeserver per test session."""
