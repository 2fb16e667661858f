"""The webhook connector's requests metric names each answer by one word from a fixed set."""

from __future__ import annotations

import pytest

from bridges.webhook.intake import Answer, error
from bridges.webhook.routes import outcome


@pytest.mark.parametrize(
    ("answer", "word"),
    [
        (Answer(200, {"ok": True, "event_id": "$e"}), "posted"),
        (Answer(202, {"ok": True, "queued": True}), "queued"),
        (Answer(200, {"ok": True, "event_id": "$e", "duplicate": True}), "duplicate"),
        (Answer(200, {"ok": True, "posted": False, "message": "pong: nothing to post"}), "pong"),
        (error(429, "rate_limited", "slow down"), "rate_limited"),
        (error(404, "unknown_hook", "no such hook"), "unknown_hook"),
    ],
)
def test_each_answer_has_its_outcome(answer: Answer, word: str) -> None:
    assert outcome(answer) == word
