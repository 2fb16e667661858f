"""What must change on a ghost's profile, worked out from what was last applied and what the
network says now (``prepare_profile``: pure, no homeserver)."""

from __future__ import annotations

from bridgekit.core.ghost_profiles import ProfileUpdate, prepare_profile
from bridgekit.store.ghosts import GhostProfile

NEVER_SET = GhostProfile()
BOB = GhostProfile("Bob", "https://example.org/bob.png")


def test_a_new_ghost_gets_its_name_and_picture() -> None:
    update = prepare_profile(NEVER_SET, BOB, fallback_name="bob")
    assert update == ProfileUpdate(name="Bob", avatar="https://example.org/bob.png")


def test_nothing_changes_when_the_network_says_what_was_applied() -> None:
    assert prepare_profile(BOB, BOB, fallback_name="bob").empty


def test_only_what_changed_is_changed() -> None:
    renamed = prepare_profile(BOB, GhostProfile("Robert", BOB.avatar), fallback_name="bob")
    assert renamed == ProfileUpdate(name="Robert")
    new_picture = prepare_profile(BOB, GhostProfile("Bob", "mxc://hs/new"), fallback_name="bob")
    assert new_picture == ProfileUpdate(avatar="mxc://hs/new")


def test_an_event_without_a_name_or_picture_keeps_the_ghosts() -> None:
    # Typing, receipts and reactions often carry no name: the ghost is not renamed to its ID.
    assert prepare_profile(BOB, GhostProfile(), fallback_name="bob").empty


def test_a_ghost_that_never_had_a_name_gets_the_fallback_if_there_is_one() -> None:
    assert prepare_profile(NEVER_SET, GhostProfile(), fallback_name="bob") == ProfileUpdate(name="bob")
    # A private chat opened without a name leaves the ghost as the homeserver made it.
    assert prepare_profile(NEVER_SET, GhostProfile(), fallback_name=None).empty


def test_an_empty_name_from_the_network_counts_as_none() -> None:
    assert prepare_profile(BOB, GhostProfile(""), fallback_name="bob").empty
