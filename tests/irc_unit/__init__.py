"""Unit tests for the IRC bridge's pure modules: formatting, output gate, nicks, mentions."""
