"""Whose line it is when some accounts belong to logged-in Matrix users (double puppeting): the
account tag decides where the server gives it; a nick alone never passes for an account then."""

from __future__ import annotations

from bridges.irc.account_senders import channel_sender


def fold(text: str) -> str:
    return text.lower()


LOGGED_IN = {"alice"}


def test_a_line_tagged_with_a_logged_in_account_is_that_account_whatever_the_nick() -> None:
    assert channel_sender("alice_phone", "Alice", tag_offered=True, logged_in=LOGGED_IN, fold=fold) == "alice"


def test_a_nick_named_like_a_logged_in_account_without_its_tag_is_someone_else() -> None:
    assert channel_sender("alice", None, tag_offered=True, logged_in=LOGGED_IN, fold=fold) == "alice?"
    assert channel_sender("alice", "mallory", tag_offered=True, logged_in=LOGGED_IN, fold=fold) == "alice?"
    assert channel_sender("alice", "*", tag_offered=True, logged_in=LOGGED_IN, fold=fold) == "alice?"


def test_without_account_tag_the_nick_is_all_there_is() -> None:
    assert channel_sender("alice", None, tag_offered=False, logged_in=LOGGED_IN, fold=fold) == "alice"
    assert channel_sender("alice_phone", None, tag_offered=False, logged_in=LOGGED_IN, fold=fold) == "alice_phone"


def test_everyone_else_is_their_nick() -> None:
    assert channel_sender("bob", "bob", tag_offered=True, logged_in=LOGGED_IN, fold=fold) == "bob"
    assert channel_sender("bob", None, tag_offered=True, logged_in=set(), fold=fold) == "bob"
