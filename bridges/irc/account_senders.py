"""Who said a channel line, when some of the network's accounts belong to logged-in Matrix users.

A user logged in with ``login <network>`` has ``remote_user_id`` = their account name, folded: the
core posts what that remote user says as the Matrix user themselves (double puppeting), so this ID
must be given only to lines that really come from the account.

- With IRCv3 ``account-tag`` (the listener asked for it and the server gave it), a line whose
  ``account`` tag names a logged-in account is theirs, whatever nick their other client uses.
  A line from a nick equal to a logged-in account name *without* that tag is someone else using
  the nick (the puppet was not holding it): it gets a sender ID of its own (``nick?``), never the
  account's, so no one is shown on Matrix as the logged-in user by taking their nick.
- Without ``account-tag`` the nick is all there is: a line from the nick equal to the account
  name counts as theirs, any other nick of theirs is an ordinary IRC user (docs/irc.md says so).

Pure: strings in, a string out.
"""

from __future__ import annotations

from collections.abc import Callable, Collection

ACCOUNT_TAG = "account-tag"
UNVERIFIED = "?"
"""Appended to a nick that names a logged-in account but came without its tag; no nick has it."""


def channel_sender(
    folded_nick: str, account: str | None, *, tag_offered: bool, logged_in: Collection[str],
    fold: Callable[[str], str],
) -> str:
    """The ``sender_id`` of a line from ``folded_nick`` whose ``account`` tag is ``account``
    (None: no tag, or ``*``); ``logged_in``: the folded account names of logged-in users."""
    if account is not None and account != "*" and fold(account) in logged_in:
        return fold(account)
    if tag_offered and folded_nick in logged_in:
        return folded_nick + UNVERIFIED
    return folded_nick


__all__ = ["ACCOUNT_TAG", "UNVERIFIED", "channel_sender"]
