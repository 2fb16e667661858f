"""Retry decisions: how long each wait is, and which answers are worth another try."""

from __future__ import annotations

import httpx
import pytest

from bridgekit.matrix.retry import (
    RetryPolicy,
    backoff_delay,
    is_retryable_status,
    is_retryable_transport_error,
    rate_limit_delay,
)

POLICY = RetryPolicy()


def test_backoff_doubles_and_stops_at_the_cap() -> None:
    assert [backoff_delay(POLICY, n, lambda: 1.0) for n in range(10)] == [
        0.5, 1, 2, 4, 8, 16, 32, 60, 60, 60,
    ]


def test_jitter_moves_a_wait_between_half_and_all_of_its_step() -> None:
    assert backoff_delay(POLICY, 3, lambda: 0.0) == 2.0
    assert backoff_delay(POLICY, 3, lambda: 0.5) == 3.0


def limited(headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(429, headers=headers)


@pytest.mark.parametrize(
    ("headers", "body", "seconds"),
    [
        ({}, {"retry_after_ms": 1500}, 1.5),
        ({"Retry-After": "3"}, {}, 3.0),
        ({"Retry-After": "3"}, {"retry_after_ms": 250}, 0.25),  # the body (in ms) wins
        ({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}, {}, None),
        ({"Retry-After": "nan"}, {}, None),
        ({}, {"retry_after_ms": "soon"}, None),
        ({}, {"retry_after_ms": True}, None),
        ({}, None, None),
        ({}, {"retry_after_ms": -5}, 0.0),
        ({}, {"retry_after_ms": 10**9}, 300.0),
    ],
)
def test_what_a_429_asks_for(
    headers: dict[str, str], body: dict[str, object] | None, seconds: float | None,
) -> None:
    assert rate_limit_delay(POLICY, limited(headers), body) == seconds


@pytest.mark.parametrize(("status", "retry"), [(429, True), (500, True), (504, True),
                                               (400, False), (403, False), (404, False)])
def test_only_429_and_5xx_are_retried(status: int, retry: bool) -> None:
    assert is_retryable_status(status) is retry


def test_network_trouble_is_retried_but_a_bad_url_is_not() -> None:
    assert is_retryable_transport_error(httpx.ConnectError("refused"))
    assert is_retryable_transport_error(httpx.ReadTimeout("slow"))
    assert not is_retryable_transport_error(httpx.UnsupportedProtocol("ftp://"))
