"""What the bridge knows of one IRC network, shared by its connector, its sessions and the
translation of what the network says: the channels and who is in them, which nicks are the
bridge's own (the nick <-> Matrix user map), the recent messages replies and edits refer to, and
the casemapping by which nicks and channels are folded (ghost and portal IDs depend on it).

It does no I/O: the connector learns the casemapping and the grammar from the server and records
them, and the sessions and ``inbound.py`` read and update this state.
"""

from __future__ import annotations

import itertools
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

import irc.client

from bridgekit import RemoteUserID, UserID
from bridges.irc.casemapping import casefold_irc
from bridges.irc.grammar import IrcGrammar
from bridges.irc.known_users import BridgeIdentities, KnownUsers
from bridges.irc.lines import Line, join

RECENT_MESSAGES = 2000
"""Messages remembered for replies and edits (IRC has no IDs to look them up by)."""


@dataclass
class Channel:
    """A channel as the bot sees it: its name as written, and who is in it."""

    name: str
    members: dict[str, str] = field(default_factory=dict)
    """folded nick -> nick as written"""


@dataclass(frozen=True)
class Said:
    """What is remembered of a recent message, for replies and edits."""

    nick: str
    text: str


class Named(Protocol):
    """A Matrix user's own connection, as far as the network needs it: its nick now."""

    @property
    def nick(self) -> str: ...


class IrcNetwork:
    """See the module docstring. ``ghost_for`` and ``sender_of_ghost`` name ghosts as the bridge
    does (the connector's context); ``sessions`` is the connector's map of Matrix users to their
    own connections, read here for their nicks."""

    def __init__(
        self, name: str, *, casemapping: str = "rfc1459", ghost_for: Callable[[RemoteUserID], str],
        sender_of_ghost: Callable[[str], str | None], sessions: Mapping[UserID, Named] | None = None,
    ) -> None:
        self.name = name
        self.casemapping = casemapping
        self.grammar = IrcGrammar(casemapping=casemapping)
        """Names the network accepts: every nick or channel that comes from Matrix is checked."""
        self.channels: dict[str, Channel] = {}
        self.portals: set[str] = set()
        """The channels (folded) linked to a Matrix room."""
        self.own: dict[str, UserID | None] = {}
        """folded nick -> the Matrix user whose connection it is (None: the bot)."""
        self.sessions: Mapping[UserID, Named] = sessions if sessions is not None else {}
        self.accounts: set[str] = set()
        """The folded account names of Matrix users logged in here (``puppets.py``): their sender IDs."""
        self.known = KnownUsers(self.fold)
        self.bridge_identities = BridgeIdentities()
        self.keys: dict[str, str] = {}
        """folded channel -> its key (``+k``), for every JOIN (kept encrypted: ``channel_keys.py``)"""
        self._ghost_for = ghost_for
        self._sender_of_ghost = sender_of_ghost
        self._recent: OrderedDict[str, Said] = OrderedDict()
        self._ids = itertools.count(1)

    # ---- names ---------------------------------------------------------------------------------

    def fold(self, text: str) -> str:
        return casefold_irc(text, self.casemapping)

    def is_ours(self, nick: str) -> bool:
        """The nick is one of the bridge's own connections (the bot, or a Matrix user's)."""
        return self.fold(nick) in self.own

    def claim(self, nick: str, owner: UserID | None) -> None:
        self.own[self.fold(nick)] = owner

    def release(self, nick: str) -> None:
        self.own.pop(self.fold(nick), None)

    def channel_name(self, chat_id: str) -> str:
        channel = self.channels.get(chat_id)
        return channel.name if channel is not None else chat_id

    def channel(self, name: str) -> Channel:
        """The channel ``name`` (as written), known from now on."""
        return self.channels.setdefault(self.fold(name), Channel(name))

    def join_line(self, chat_id: str) -> Line:
        """The JOIN of a channel, with its key when one was given (``join <network> #chan key``)."""
        return join(self.channel_name(chat_id), self.keys.get(chat_id))

    def target_of(self, chat_id: str) -> str:
        """Where a chat's lines go: the channel, or the nick of a private chat."""
        if chat_id.startswith("pm:"):
            return self.pm_nick(chat_id)
        return self.channel_name(chat_id)

    def pm_chat(self, user: UserID, folded_nick: str) -> str:
        return f"pm:{folded_nick}:{user}"

    def pm_nick(self, chat_id: str) -> str:
        nick = self.nick_as_written(chat_id.split(":", 2)[1])
        problem = self.grammar.nick_problem(nick)
        if problem is not None:  # a private chat made before nicks were checked: send nothing
            raise ValueError(f"{nick!r} is not a nick on {self.name} ({problem}): nothing was sent")
        return nick

    def nick_as_written(self, folded: str) -> str:
        for channel in self.channels.values():
            if folded in channel.members:
                return channel.members[folded]
        seen = self.known.get(folded)
        return seen.nick if seen is not None else folded

    def pill_to_nick(self, user_id: str) -> str | None:
        """The nick a Matrix mention of ``user_id`` becomes on IRC (a ghost's, or a Matrix user's
        own connection's), if any."""
        folded = self._sender_of_ghost(user_id)
        if folded is not None:
            nick = self.nick_as_written(folded)
            return nick if self.grammar.is_nick(nick) else None
        session = self.sessions.get(UserID(user_id))
        return session.nick if session is not None else None

    def user_for_nick(self, nick: str) -> str | None:
        """The Matrix user an IRC mention of ``nick`` becomes a pill of, if anyone."""
        folded = self.fold(nick)
        if folded in self.own:
            return self.own[folded]
        for channel in self.channels.values():
            if folded in channel.members:
                return self._ghost_for(RemoteUserID(folded))
        return None

    # ---- who is who (ban masks) --------------------------------------------------------------

    def learn_identity(self, event: irc.client.Event) -> None:
        """Idents and hosts, from whatever shows them: every line's ``nick!ident@host`` prefix,
        WHO replies (352), CHGHOST, and the host the server says a connection of ours has (396)."""
        source, arguments = event.source, [str(a) for a in event.arguments]
        nick, ident, host = (getattr(source, part, None) for part in ("nick", "user", "host"))
        if event.type == "chghost" and nick and arguments:
            self.saw(str(nick), str(event.target), arguments[0])
        elif nick and ident and host:
            self.saw(str(nick), str(ident), str(host))
        if event.type == "whoreply" and len(arguments) >= 5:  # [channel, ident, host, server, nick, ...]
            self.saw(arguments[4], arguments[1], arguments[2])
        elif event.type == "396" and arguments:  # RPL_VISIBLEHOST: [host or ident@host, text]
            self.bridge_identities.add(None, arguments[0].rpartition("@")[2])

    def saw(self, nick: str, ident: str | None, host: str | None) -> None:
        if not nick:
            return
        self.known.saw(nick, ident, host)
        if self.is_ours(nick):
            self.bridge_identities.add(ident, host)

    # ---- recent messages and IDs -------------------------------------------------------------

    def recall(self, message_id: str) -> Said | None:
        return self._recent.get(message_id)

    def remember(self, message_id: str, said: Said) -> None:
        self._recent[message_id] = said
        while len(self._recent) > RECENT_MESSAGES:
            self._recent.popitem(last=False)

    def change_id(self) -> str:
        """A unique ID for a membership, power or topic change (IRC gives none)."""
        return f"{time.time_ns()}-{next(self._ids)}"

    def message_id(self) -> str:
        """An ID for a message the server gave none (no ``msgid`` tag)."""
        return f"irc-{time.time_ns()}-{next(self._ids)}"


__all__ = ["Channel", "IrcNetwork", "Said"]
