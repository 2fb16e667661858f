"""Connectors and helpers that tests load into a real bridge process."""
