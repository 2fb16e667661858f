"""Double puppeting: posting a logged-in user's messages from their other clients as themself.

An appservice may act only as users in its namespaces. The bridge's own registration covers its
bot and ghosts, exclusively; a second registration (``registration.build_double_puppet_registration``)
covers the homeserver's users non-exclusively and has no URL. The bridge uses its as_token, with
``user_id`` masquerading, for the users logged in through it, and marks what it sends that way so
the echo is not bridged back.
"""

from __future__ import annotations

from pathlib import Path

from bridgekit.config_loader import read_registration
from bridgekit.errors import MatrixError
from bridgekit.ids import UserID
from bridgekit.matrix import MatrixClient


def read_double_puppet_token(path: Path) -> str:
    """The as_token of the double-puppet registration at ``path``; ConfigError (an unreadable file)
    or ValueError (no token) saying what is wrong."""
    data = read_registration(path, missing_hint="write it with 'bridgekit generate-registration --double-puppet'")
    token = data.get("as_token")
    if not isinstance(token, str) or len(token) < 16:
        raise ValueError(f"{path} has no as_token (write it with 'bridgekit generate-registration --double-puppet')")
    return token


async def double_puppet_status(client: MatrixClient | None, user_id: UserID, server_name: str) -> str:
    """One line for ``status``: can the bridge post as ``user_id``? Checked with the homeserver."""
    if client is None:
        return ("Double puppeting: off (the bridge's admin has not installed the double-puppet registration); "
                "your messages from other clients appear through your ghost.")
    if user_id.rsplit(":", 1)[-1] != server_name:
        return f"Double puppeting: not possible for users of other homeservers than {server_name}."
    try:
        who = await client.intent(user_id).whoami()
    except MatrixError as error:
        return (f"Double puppeting: NOT working ({error.__class__.__name__}): is the double-puppet registration "
                "installed on the homeserver?")
    if who.user_id != user_id:
        return f"Double puppeting: NOT working (the homeserver answered as {who.user_id})."
    return "Double puppeting: on (checked): your messages from other clients appear as you."


__all__ = ["double_puppet_status", "read_double_puppet_token"]
