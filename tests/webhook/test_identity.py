"""Who speaks for an inbound message: bot style, a ghost per name, and the bound on ghosts."""

from __future__ import annotations

from bridges.webhook.identity import IdentityStyle, choose_speaker, ghost_suffix, name_key


def speaker(style: IdentityStyle, username: str | None, *, known: bool = False, count: int = 0):  # type: ignore[no-untyped-def]
    return choose_speaker(style, network="webhook", hook_id="0123abcd", hook_name="ci", username=username,
                          known_ghost=known, ghost_count=count, max_ghosts=2)


def test_bot_style_always_uses_the_bot_with_the_name() -> None:
    chosen = speaker(IdentityStyle.BOT, "Grafana")
    assert chosen.is_bot
    assert chosen.name == "Grafana"


def test_ghost_style_gives_each_name_its_own_ghost_scoped_to_the_hook() -> None:
    chosen = speaker(IdentityStyle.GHOSTS, "Bob")
    assert chosen.ghost_suffix == f"webhook_0123abcd.{name_key('Bob')}"
    assert speaker(IdentityStyle.GHOSTS, "bob").ghost_suffix != chosen.ghost_suffix  # names are case-sensitive
    assert speaker(IdentityStyle.GHOSTS, None).name == "ci"  # no username: the hook's name


def test_past_the_bound_new_names_are_posted_bot_style_but_known_ones_keep_their_ghost() -> None:
    assert speaker(IdentityStyle.GHOSTS, "Carol", count=2).is_bot
    assert not speaker(IdentityStyle.GHOSTS, "Bob", known=True, count=2).is_bot


def test_ghost_suffixes_only_use_characters_the_escaping_keeps() -> None:
    suffix = ghost_suffix("webhook", "0123abcd", "Ünïcode name / with = signs")
    assert set(suffix) <= set("abcdefghijklmnopqrstuvwxyz0123456789._")
