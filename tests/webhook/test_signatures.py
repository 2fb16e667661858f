"""Signature schemes: GitHub, Slack (with its replay window), generic HMAC, URL tokens."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from bridges.webhook.signatures import (
    Scheme,
    hash_token,
    new_token,
    request_digest,
    sign,
    token_matches,
    verify,
)

SECRET = "It's a Secret to Everybody"
BODY = b"Hello, World!"
NOW = 1_700_000_000


def test_github_vector_from_githubs_documentation() -> None:
    # docs.github.com "Validating webhook deliveries" test values.
    expected = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    assert verify(Scheme.GITHUB, SECRET, {"X-Hub-Signature-256": expected}, BODY, now=NOW, window=300) is None


def test_github_wrong_or_missing_signature_is_refused() -> None:
    bad = verify(Scheme.GITHUB, SECRET, {"X-Hub-Signature-256": "sha256=" + "0" * 64}, BODY, now=NOW, window=300)
    assert bad is not None
    assert bad.code == "bad_signature"
    missing = verify(Scheme.GITHUB, SECRET, {}, BODY, now=NOW, window=300)
    assert missing is not None
    assert missing.code == "missing_signature"


def slack_headers(secret: str, timestamp: int, body: bytes) -> dict[str, str]:
    base = b"v0:" + str(timestamp).encode() + b":" + body
    signature = "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return {"X-Slack-Signature": signature, "X-Slack-Request-Timestamp": str(timestamp)}


def test_slack_signature_inside_the_window_is_accepted() -> None:
    headers = slack_headers(SECRET, NOW - 10, BODY)
    assert verify(Scheme.SLACK, SECRET, headers, BODY, now=NOW, window=300) is None


def test_slack_request_replayed_outside_the_window_is_refused_although_signed_right() -> None:
    headers = slack_headers(SECRET, NOW - 301, BODY)
    rejection = verify(Scheme.SLACK, SECRET, headers, BODY, now=NOW, window=300)
    assert rejection is not None
    assert rejection.code == "stale_timestamp"


def test_slack_tampered_body_is_refused() -> None:
    headers = slack_headers(SECRET, NOW, BODY)
    rejection = verify(Scheme.SLACK, SECRET, headers, BODY + b"!", now=NOW, window=300)
    assert rejection is not None
    assert rejection.code == "bad_signature"


def test_generic_hmac_with_timestamp_matches_what_outbound_hooks_send() -> None:
    headers = {"X-Webhook-Signature": sign(SECRET, NOW, BODY), "X-Webhook-Timestamp": str(NOW)}
    assert verify(Scheme.HMAC, SECRET, headers, BODY, now=NOW + 5, window=300) is None
    stale = verify(Scheme.HMAC, SECRET, headers, BODY, now=NOW + 1000, window=300)
    assert stale is not None
    assert stale.code == "stale_timestamp"


def test_an_hmac_request_replayed_without_its_timestamp_header_is_refused() -> None:
    # Captured: signed over ts + "." + body. Replayed long after: the timestamp header dropped and
    # "<ts>." + body sent as the body, whose body-only MAC is the captured signature.
    captured = {"X-Webhook-Signature": sign(SECRET, NOW, BODY), "X-Webhook-Timestamp": str(NOW)}
    replay_body = str(NOW).encode() + b"." + BODY
    replay = {"X-Webhook-Signature": captured["X-Webhook-Signature"]}

    rejection = verify(Scheme.HMAC, SECRET, replay, replay_body, now=NOW + 86_400, window=300)

    assert rejection is not None
    assert rejection.code == "missing_timestamp"


@pytest.mark.parametrize("timestamp", [f"+{NOW}", f" {NOW}", f"{NOW:_}", "١٧٠٠٠٠٠٠٠٠", f"{NOW}.0", "", "9" * 16])
def test_an_hmac_timestamp_is_digits_only(timestamp: str) -> None:
    headers = {"X-Webhook-Signature": "sha256=" + hmac.new(SECRET.encode(), timestamp.encode() + b"." + BODY,
                                                           hashlib.sha256).hexdigest(),
               "X-Webhook-Timestamp": timestamp}

    rejection = verify(Scheme.HMAC, SECRET, headers, BODY, now=NOW, window=300)

    assert rejection is not None
    assert rejection.code == "bad_timestamp"


def test_tokens_are_random_and_stored_as_hashes() -> None:
    token = new_token()
    assert token != new_token()
    assert len(token) >= 43
    stored = hash_token(token)
    assert token not in stored
    assert token_matches(token, stored)
    assert not token_matches(token + "x", stored)


@pytest.mark.parametrize("scheme", [Scheme.GITHUB, Scheme.SLACK, Scheme.HMAC])
def test_a_signature_header_with_non_ascii_text_is_a_bad_signature_not_an_error(scheme: Scheme) -> None:
    # Header values arrive as latin-1 text; compare_digest on such str raises TypeError.
    headers = {"X-Hub-Signature-256": "sha256=\xe9", "X-Slack-Signature": "v0=\xe9",
               "X-Slack-Request-Timestamp": str(NOW), "X-Webhook-Signature": "sha256=\xe9",
               "X-Webhook-Timestamp": str(NOW)}
    rejection = verify(scheme, SECRET, headers, BODY, now=NOW, window=300)
    assert rejection is not None
    assert rejection.code == "bad_signature"


def test_a_timestamped_request_is_told_apart_by_its_timestamp_and_body_github_by_its_body() -> None:
    def digest(scheme: Scheme, timestamp: int, body: bytes) -> str | None:
        return request_digest(scheme, {"X-Webhook-Timestamp": str(timestamp),
                                       "X-Slack-Request-Timestamp": str(timestamp)}, body)

    for scheme in (Scheme.HMAC, Scheme.SLACK):
        assert digest(scheme, NOW, BODY) == digest(scheme, NOW, BODY)
        assert digest(scheme, NOW, BODY) != digest(scheme, NOW + 1, BODY)
        assert digest(scheme, NOW, BODY) != digest(scheme, NOW, BODY + b"!")
    assert digest(Scheme.GITHUB, NOW, BODY) == digest(Scheme.GITHUB, NOW + 1, BODY)
    assert digest(Scheme.TOKEN, NOW, BODY) is None
