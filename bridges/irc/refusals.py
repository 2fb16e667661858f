"""A server refusing what a connection of ours did: letting it speak in or join a channel (+m, a
ban, +i...), or a private message to a nick that is gone.

The lines were accepted from Matrix and written, so nothing fails on the Matrix side: the Matrix
user whose message it was is told privately, at most once a minute per channel. Pure: what to
tell whom is decided here from the event, the network and the connection; the connector tells.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import irc.client

from bridgekit import UserID
from bridges.irc.connection_state import ConnectionState
from bridges.irc.formatting import strip_formatting
from bridges.irc.network import IrcNetwork
from bridges.irc.output_gate import sanitize

REFUSALS = {
    "cannotsendtochan": "the channel does not let it speak (moderated, or banned)",
    "bannedfromchan": "it is banned from the channel",
    "inviteonlychan": "the channel is invite-only",
    "badchannelkey": "the channel needs a key",
    "channelisfull": "the channel is full",
    "needreggednick": "the channel wants a registered nick",
    "nosuchnick": "nobody by that nick is on the network now",
}
"""Numerics by which a server refuses a line or a JOIN, as the ``irc`` package names them."""
NOTICE_EVERY_S = 60.0


@dataclass(frozen=True)
class Refusal:
    chat: str
    where: str
    """``in #channel`` or ``to nick``"""
    join_failed: bool
    """The connection is not in the channel after all: join again with the next message."""
    server_said: str
    """The server's own words, made safe to show."""


def read_refusal(
    event: irc.client.Event, network: IrcNetwork, connection: ConnectionState, *, owner: UserID | None,
    sent_to: Mapping[str, UserID],
) -> Refusal | None:
    """What ``event`` (one of :data:`REFUSALS`) refused a connection (``owner``'s, or the bot's,
    None), which sent last to the chats of ``sent_to``; None when it concerns nothing we sent."""
    target = str(event.arguments[0]) if event.arguments else ""
    if not target:
        return None
    if event.type == "nosuchnick":
        # A private message to someone who left; only for a chat we sent to (the bridge asks
        # nothing else of nicks that could answer this).
        chat = network.pm_chat(owner, network.fold(target)) if owner else ""
        if chat not in sent_to:
            return None
        where, join_failed = f"to {target}", False
    elif connection.is_channel(target):
        chat, where, join_failed = network.fold(target), f"in {target}", event.type != "cannotsendtochan"
    else:
        return None
    server_text = str(event.arguments[-1]) if len(event.arguments) > 1 else ""
    return Refusal(chat, where, join_failed, " ".join(strip_formatting(sanitize(server_text)).split()))


def notice(network: str, refusal: Refusal, kind: str, *, bot_nick: str | None) -> str:
    """What the Matrix user is told; ``bot_nick``: the bot relayed their message."""
    who = f"the bridge's bot ({bot_nick}), which relays for you," if bot_nick else "your IRC connection"
    said = refusal.server_said
    return (f"{network}: {who} could not deliver your message {refusal.where}: {REFUSALS[kind]}"
            + (f' (the server says "{said[:200]}")' if said else "") + ".")


class NoticeLimit:
    """At most one notice a minute per Matrix user and chat."""

    def __init__(self) -> None:
        self._told: dict[tuple[UserID, str], float] = {}

    def due(self, user: UserID, chat: str, now: float) -> bool:
        if self._told.get((user, chat), -math.inf) > now - NOTICE_EVERY_S:
            return False
        self._told[(user, chat)] = now
        return True


__all__ = ["REFUSALS", "NoticeLimit", "Refusal", "notice", "read_refusal"]
