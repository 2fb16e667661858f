"""Downtime honesty without a keeper (``downtime.py``): which gaps are told, and how."""

from __future__ import annotations

from datetime import UTC, datetime

from bridges.irc.downtime import MIN_OUTAGE_S, Outage, outage


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def test_a_gap_of_30_seconds_or_more_is_an_outage_and_a_shorter_one_is_a_restart() -> None:
    now = at("2026-12-02 14:07:30")
    assert outage(now - MIN_OUTAGE_S, now) == Outage(now - MIN_OUTAGE_S, now)
    assert outage(now - 29.0, now) is None  # a quick restart: no notice in every portal
    assert outage(None, now) is None  # the first start ever
    assert outage("yesterday", now) is None  # junk in the record is not an outage
    assert outage(True, now) is None


def test_the_notice_names_the_gap_in_utc() -> None:
    gap = Outage(at("2026-12-02 14:05:10"), at("2026-12-02 14:07:59"))
    assert gap.notice() == (
        "The bridge was offline from 2026-12-02 14:05 to 14:07 UTC; messages from IRC in that time were not seen."
    )
    overnight = Outage(at("2026-12-01 23:50:00"), at("2026-12-02 00:20:00"))
    assert "from 2026-12-01 23:50 to 2026-12-02 00:20 UTC" in overnight.notice()


def test_the_same_outage_has_the_same_key_so_its_notice_is_posted_once() -> None:
    gap = Outage(at("2026-12-02 14:05:10"), at("2026-12-02 14:07:59"))
    assert gap.key == Outage(gap.began, gap.ended).key
    assert gap.key != Outage(gap.began, gap.ended + 60).key


def test_the_keepers_gap_is_told_in_the_same_words_and_a_short_one_to_the_second() -> None:
    gap = Outage(at("2026-12-02 14:05:10"), at("2026-12-02 14:05:14"), subject="The IRC connection keeper")
    assert gap.notice() == (
        "The IRC connection keeper was offline from 2026-12-02 14:05:10 to 14:05:14 UTC; "
        "messages from IRC in that time were not seen."
    )  # (not "from 14:05 to 14:05")
