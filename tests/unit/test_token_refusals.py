"""Refused hs_tokens (a stale registration) are told once, then at most once per interval."""

from __future__ import annotations

import logging

import pytest

from bridgekit.appservice.token_refusals import TokenRefusals


def test_a_burst_is_one_warning_and_the_next_one_counts_what_came_between(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    refusals = TokenRefusals(interval=600, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="bridgekit.appservice.token_refusals"):
        for second in range(100):
            now[0] = float(second)
            refusals.refused("/_matrix/app/v1/transactions/1")
        assert len(caplog.records) == 1
        assert "stale registration" in caplog.records[0].getMessage()
        now[0] = 700.0
        refusals.refused("/_matrix/app/v1/ping")
    assert len(caplog.records) == 2
    assert "(100 refused with 403, last /_matrix/app/v1/ping; 101 in all)" in caplog.records[1].getMessage()
    assert refusals.total == 101
