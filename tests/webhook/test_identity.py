"""Who speaks for an inbound message: bot style, a ghost per name, and the bound on ghosts."""

from __future__ import annotations

from bridgekit.naming import escape_localpart
from bridges.webhook.identity import IdentityStyle, choose_speaker, ghost_sender_id, name_key


def speaker(style: IdentityStyle, username: str | None, *, known: bool = False, count: int = 0):  # type: ignore[no-untyped-def]
    return choose_speaker(style, hook_id="0123abcd", hook_name="ci", username=username,
                          known_ghost=known, ghost_count=count, max_ghosts=2)


def test_bot_style_always_uses_the_bot_with_the_name() -> None:
    chosen = speaker(IdentityStyle.BOT, "Grafana")
    assert chosen.sender_id is None
    assert chosen.name == "Grafana"


def test_ghost_style_gives_each_name_its_own_ghost_scoped_to_the_hook() -> None:
    chosen = speaker(IdentityStyle.GHOSTS, "Bob")
    assert chosen.sender_id == f"0123abcd.{name_key('Bob')}"
    assert speaker(IdentityStyle.GHOSTS, "bob").sender_id != chosen.sender_id  # names are case-sensitive
    assert speaker(IdentityStyle.GHOSTS, None).name == "ci"  # no username: the hook's name


def test_past_the_bound_new_names_are_posted_bot_style_but_known_ones_keep_their_ghost() -> None:
    assert speaker(IdentityStyle.GHOSTS, "Carol", count=2).sender_id is None
    assert speaker(IdentityStyle.GHOSTS, "Bob", known=True, count=2).sender_id is not None


def test_ghost_sender_ids_are_left_as_they_are_by_the_escaping() -> None:
    sender_id = ghost_sender_id("0123abcd", "Ünïcode name / with = signs")
    assert escape_localpart(sender_id) == sender_id
