"""Which IRC bans stand for exactly one bridged Matrix user (``ban_mirror.py``)."""

from __future__ import annotations

from bridgekit import UserID
from bridges.irc.ban_mirror import Connection, is_address_mask, mask_matches, mirror_ban
from bridges.irc.casemapping import casefold_irc

ALICE, BOB = UserID("@alice:example.org"), UserID("@bob:example.org")
HOST = "bridge.example"
CONNECTIONS = [
    Connection(None, "matrixbridge", ("bridge",), (HOST,)),
    Connection(ALICE, "alice[m]", ("alice1a2b3",), (HOST,)),
    Connection(BOB, "Bob[m]", ("~bob9z8y7",), (HOST,)),
]


def fold(text: str) -> str:
    return casefold_irc(text, "rfc1459")


def mirror(mask: str, *, adding: bool = True) -> tuple[UserID | None, str | None]:
    plan = mirror_ban(mask, CONNECTIONS, fold=fold, channel="#chat", setter="op", adding=adding)
    return plan.user, plan.notice


def test_irc_globs_match_by_the_casemapping_and_brackets_are_nick_characters() -> None:
    assert mask_matches("ALICE{M}!*@*", "alice[m]!alice1a2b3@bridge.example", fold)
    assert mask_matches("a?ice*!*@BRIDGE.example", "alice[m]!x@bridge.example", fold)
    assert not mask_matches("[a]lice*!*@*", "alice[m]!x@bridge.example", fold)  # not a character class
    assert not mask_matches("*!*@bridge", "alice[m]!x@bridge.example", fold)


def test_a_mask_on_one_matrix_users_ident_or_nick_bans_that_user() -> None:
    assert mirror("*!alice1a2b3@bridge.example") == (ALICE, None)
    assert mirror("*!*alice1a2b3@*") == (ALICE, None)
    assert mirror("ALICE[M]!*@*") == (ALICE, None)
    # Without identd the server shows ``~ident``: a ban on either form is the same person.
    assert mirror("*!bob9z8y7@*") == (BOB, None)
    assert mirror("*!~alice1a2b3@*") == (ALICE, None)


def test_a_mask_on_the_bridges_host_is_not_mirrored_and_says_why() -> None:
    user, notice = mirror("*!*@bridge.example")
    assert user is None
    assert notice is not None
    assert "op banned *!*@bridge.example in #chat" in notice
    assert "the bridge itself" in notice
    user, notice = mirror("*[m]!*@*")
    assert user is None
    assert notice is not None
    assert "2 Matrix users' connections" in notice


def test_bans_of_irc_users_and_extended_bans_mean_nothing_for_matrix() -> None:
    assert mirror("*!*@spam.example") == (None, None)
    assert mirror("~q:alice[m]!*@*") == (None, None)
    assert mirror("m:*!*@*") == (None, None)
    assert not is_address_mask("$a:alice")


def test_lifting_a_ban_unbans_the_one_user_and_is_silent_otherwise() -> None:
    assert mirror("alice[m]!*@*", adding=False) == (ALICE, None)
    assert mirror("*!*@bridge.example", adding=False) == (None, None)
