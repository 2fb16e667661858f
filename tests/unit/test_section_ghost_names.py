"""A connector section's ghost IDs name the connector once: with the default prefix ``_{name}_``
the name is not repeated (``@_hooks_<id>``); an explicit prefix that does not name the network
(IRC's shared ``_irc_``) keeps naming it (``@_irc_libera_<nick>``). Both forms parse back, so
ghosts made before the rule keep working."""

from __future__ import annotations

import dataclasses

import pytest

from bridgekit.ids import RemoteUserID
from bridgekit.naming import ghost_user_id, parse_section_ghost_user_id, prefix_names_network, section_ghost_user_id
from tests.support.contexts import hand_built_context

SERVER = "example.org"


def test_the_default_prefix_is_not_followed_by_the_connector_name_again() -> None:
    user_id = section_ghost_user_id("_hooks_", "hooks", "0123abcd.deploy-bot", SERVER)
    assert user_id == "@_hooks_0123abcd.deploy-bot:example.org"
    assert parse_section_ghost_user_id("@_hooks_0123abcd.deploy-bot:example.org", "_hooks_", "hooks", SERVER) == (
        "0123abcd.deploy-bot"
    )


def test_a_prefix_that_does_not_name_the_network_keeps_naming_it() -> None:
    assert not prefix_names_network("_irc_", "libera")
    user_id = section_ghost_user_id("_irc_", "libera", "alice", SERVER)
    assert user_id == "@_irc_libera_alice:example.org" == ghost_user_id("_irc_", "libera", "alice", SERVER)
    assert parse_section_ghost_user_id(user_id, "_irc_", "libera", SERVER) == "alice"
    # Under the shared prefix, another network's ghost is not libera's.
    assert parse_section_ghost_user_id("@_irc_oftc_alice:example.org", "_irc_", "libera", SERVER) is None


def test_ghosts_made_before_the_rule_still_parse_to_their_sender() -> None:
    before = ghost_user_id("_hooks_", "hooks", "0123abcd.bot", SERVER)
    assert before == "@_hooks_hooks_0123abcd.bot:example.org"
    assert parse_section_ghost_user_id(before, "_hooks_", "hooks", SERVER) == "0123abcd.bot"


@pytest.mark.parametrize("remote_id", ["hooks_x", "hooks_", "hooks", "hook_s", "x_hooks_y", "Hooks_x", "ünï"])
def test_every_id_maps_to_one_ghost_and_back_even_ids_that_start_like_the_name(remote_id: str) -> None:
    user_id = section_ghost_user_id("_hooks_", "hooks", remote_id, SERVER)
    assert parse_section_ghost_user_id(user_id, "_hooks_", "hooks", SERVER) == remote_id
    if remote_id.startswith("hooks_"):
        # Written in the long form, so that no short form ever starts with the name: the two forms
        # never overlap, and the old ghost of such an id is the same user.
        assert user_id == ghost_user_id("_hooks_", "hooks", remote_id, SERVER)


@pytest.mark.parametrize("user_id", [
    "@_hooks_:example.org", "@_hooks_hooks_:example.org", "@_hooks_A:example.org", "@_hooks_x:other.org",
    "@_other_x:example.org", "@_hooks_hooks_=zz:example.org", "@_hooks_" + "a" * 250 + ":example.org",
])
def test_what_no_ghost_of_the_section_could_be_is_refused(user_id: str) -> None:
    assert parse_section_ghost_user_id(user_id, "_hooks_", "hooks", SERVER) is None


def test_the_context_reads_both_forms_and_builds_the_short_one() -> None:
    hooks = dataclasses.replace(hand_built_context("hooks", {}), ghost_prefix="_hooks_")  # the default
    sender = hooks.sender_of_ghost("@_hooks_hooks_ab.c:example.org")
    assert sender == "ab.c"
    assert hooks.sender_of_ghost("@_hooks_ab.c:example.org") == sender
    # A hand-built context knows no ghosts made before (the core's does: test_kept_ghost_ids.py).
    assert hooks.ghost_for(sender) == "@_hooks_ab.c:example.org"
    irc = dataclasses.replace(hand_built_context("libera", {}), ghost_prefix="_irc_")
    assert irc.ghost_for(RemoteUserID("alice")) == "@_irc_libera_alice:example.org"
