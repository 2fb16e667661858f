"""Tests of the webhook bridge (bridges/webhook)."""
