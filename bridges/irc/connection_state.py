"""What one IRC connection knows, learnt from the events the server sends: registration, the
capabilities it granted (CAP), what it supports (ISUPPORT: CASEMAPPING, NICKLEN, CHANTYPES,
PREFIX...), our own nick, and the channels we are in with their modes and (when asked: the
listener's connection) their members.

Pure: :meth:`ConnectionState.hear` takes an :class:`irc.client.Event` (the ``irc`` package's
parsed line, which tests build directly) and returns a :class:`Reaction`, what the connection is
to do about it (lines to write at once, whether the bridge hears of the event, whether to hang
up). No socket, no clock: ``link.py`` does the writing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import irc.client

from bridges.irc.casemapping import casefold_irc
from bridges.irc.identify import Identification
from bridges.irc.lean import shared
from bridges.irc.lines import Line, cap_request, nick

ECHO_CAP = "echo-message"
NICK_REFUSED = frozenset({"nicknameinuse", "erroneusnickname", "unavailresource"})
MAX_NICK_ATTEMPTS = 20
ROUTINE = frozenset({"pubmsg", "privmsg", "pubnotice", "privnotice", "action", "ctcp", "ctcpreply", "all_raw_messages"})
MEMBERSHIP = frozenset({"join", "part", "kick", "quit", "nick", "namreply", "mode"})
DEFAULT_PREFIX = "(ov)@+"
DEFAULT_CHANMODES = "beI,k,l,"
"""RFC 1459's channel modes with a parameter, until the server says (ISUPPORT CHANMODES)."""

NickChooser = Callable[[int], str]
"""attempt (1, 2, ...) -> the next nick to try after the server refused the previous one."""


@dataclass(frozen=True)
class Reaction:
    """What a connection does about one event."""

    send: tuple[Line, ...] = ()
    """Written at once, before any paced line (CAP REQ after the welcome, the next nick)."""
    forward: bool = True
    """The bridge hears of the event (registration noise is not news)."""
    hang_up: bool = False


NO_REACTION = Reaction()


@dataclass
class ChannelState:
    """A channel we are in: its name as the server spells it, its members and modes."""

    name: str
    members: dict[str, str] = field(default_factory=dict)
    """folded nick -> nick as written"""
    prefixes: dict[str, set[str]] = field(default_factory=dict)
    """folded nick -> the member's prefix modes (``o``, ``v``...), for those with any"""
    modes: dict[str, str] = field(default_factory=dict)
    """channel mode -> its parameter ("" for a flag such as ``m``); list modes (bans) not kept"""


class ConnectionState:
    def __init__(
        self, wanted_nick: str, *, caps: tuple[str, ...] = (), next_nick: NickChooser | None = None,
        members: bool = False, identification: Identification | None = None,
    ) -> None:
        self.wanted_nick = wanted_nick
        """The nick registration asks for (the next one after a refusal)."""
        self.nick = wanted_nick
        """Our nick as the server knows it (from its welcome and our NICK changes)."""
        self.caps = caps
        """Asked for once registered (the server ignores the ones it does not know)."""
        self.acked: set[str] = set()
        self.isupport: Mapping[str, str] = shared({})
        """Shared by the connections to one server that were told the same (``lean.shared``)."""
        self.registered = False
        self.failure: str | None = None
        """Why registration failed (a nick never accepted, the server's ERROR)."""
        self.channels: dict[str, ChannelState] = {}
        self._next_nick = next_nick
        self._members = members
        """Keep everyone in our channels, or only ourselves: a Matrix user's connection in a channel
        of a thousand would hold a thousand names (and a thousand such connections a million)."""
        self._nick_attempts = 0  # over the connection's whole life, as the bridge has always counted
        self.identification = identification
        """A puppeted connection's SASL / NickServ login (``identify.py``); None for the others."""

    # ---- what the server supports -----------------------------------------------------------

    @property
    def echo(self) -> bool:
        """The server sends our own PRIVMSG and NOTICE back once it has taken them."""
        return ECHO_CAP in self.acked

    @property
    def casemapping(self) -> str:
        return self.isupport.get("CASEMAPPING", "").lower() or "rfc1459"

    @property
    def nicklen(self) -> int | None:
        value = self.isupport.get("NICKLEN", "")
        return int(value) if value.isdigit() else None

    @property
    def chantypes(self) -> str:
        return self.isupport.get("CHANTYPES", "#&")

    @property
    def prefix_modes(self) -> dict[str, str]:
        """Member prefix symbol -> mode (``@`` -> ``o``), from ISUPPORT PREFIX."""
        modes, _, symbols = self.isupport.get("PREFIX", DEFAULT_PREFIX).removeprefix("(").partition(")")
        return dict(zip(symbols, modes, strict=False))

    def fold(self, name: str) -> str:
        mapping = self.casemapping
        try:
            return casefold_irc(name, mapping)
        except ValueError:  # a mapping we do not know: rfc1459 is the widest of the usual ones
            return casefold_irc(name)

    def is_channel(self, target: str) -> bool:
        return bool(target) and target[0] in self.chantypes

    def is_own(self, source: object) -> bool:
        found = getattr(source, "nick", None)
        return bool(found) and self.fold(str(found)) == self.fold(self.nick)

    # ---- events ------------------------------------------------------------------------------

    def connecting(self) -> None:
        """A new connection: registration starts again (what the server supports is kept until it
        says otherwise)."""
        self.nick = self.wanted_nick
        self.registered = False
        self.failure = None
        self.acked.clear()
        self.channels.clear()

    def opening(self) -> tuple[Line, ...]:
        """Written before PASS/NICK/USER (``CAP LS 302`` when the connection identifies)."""
        return self.identification.opening() if self.identification is not None else ()

    @property
    def ready(self) -> bool:
        """Registered, and identified when it has an account to identify with."""
        identification = self.identification
        return self.registered and (identification is None or identification.identified)

    def hear(self, event: irc.client.Event) -> Reaction:
        kind = event.type
        identifying = self._identifying(event)
        if identifying is not None:
            return identifying
        if kind in ROUTINE:
            return NO_REACTION  # what is said in channels: the bulk of the traffic, no state in it
        arguments = [str(a) for a in event.arguments]
        if kind in NICK_REFUSED and not self.registered:
            return self._nick_refused()
        if kind == "welcome":
            return self._welcomed(event)
        if kind == "cap" and arguments and arguments[0] == "ACK":
            self.acked.update(arguments[-1].split())
        elif kind == "featurelist":
            merged = dict(self.isupport)
            for token in arguments[:-1]:  # the last is "are supported by this server"
                key, _, value = token.partition("=")
                merged[key.upper()] = value
            self.isupport = shared(merged)
        elif kind == "error":
            # The irc package puts ERROR's text in the target: "Closing link: ... [K-lined: ...]".
            self.failure = " ".join(arguments) or str(event.target or "") or "ERROR from the server"
        elif kind == "disconnect":
            self.registered = False
            self.acked.clear()
            self.channels.clear()
        else:
            self._membership(kind, event, arguments)
        return NO_REACTION

    def _identifying(self, event: irc.client.Event) -> Reaction | None:
        """A step of SASL or NickServ (``identify.py``); None: not one."""
        identification = self.identification
        if identification is None or event.type == "welcome":
            return None
        step = identification.hear(event)
        if step is None:
            return None
        if step.hang_up:
            self.failure = identification.failure
        return Reaction(step.send, forward=False, hang_up=step.hang_up)

    def _welcomed(self, event: irc.client.Event) -> Reaction:
        self.registered = True
        self.nick = str(event.target)
        identification = self.identification
        identify = identification.after_welcome() if identification is not None else ()
        if identification is not None and identification.failure is not None:
            self.failure = identification.failure  # SASL required, and none offered
            return Reaction(forward=False, hang_up=True)
        return Reaction(((cap_request(self.caps),) if self.caps else ()) + identify)

    def _nick_refused(self) -> Reaction:
        self._nick_attempts += 1
        if self._next_nick is None or self._nick_attempts > MAX_NICK_ATTEMPTS:
            self.failure = f"nick {self.wanted_nick} is taken"
            return Reaction(forward=False, hang_up=True)
        self.wanted_nick = self._next_nick(self._nick_attempts)
        return Reaction((nick(self.wanted_nick),), forward=False)

    # ---- channels ----------------------------------------------------------------------------

    def _membership(self, kind: str, event: irc.client.Event, arguments: list[str]) -> None:
        if kind not in MEMBERSHIP:
            return
        who = str(getattr(event.source, "nick", None) or event.source)
        if kind == "nick":
            self._renamed(who, str(event.target))
        elif kind == "quit":
            for channel in self.channels.values():
                _remove(channel, self.fold(who))
        elif kind == "namreply" and len(arguments) >= 3:  # [type, channel, "@op +voiced nick!ident@host"]
            self._names(arguments[1], arguments[2])
        elif kind in ("join", "part", "kick", "mode"):
            self._in_channel(kind, str(event.target), who, arguments)

    def _in_channel(self, kind: str, name: str, who: str, arguments: list[str]) -> None:
        folded = self.fold(name)
        if kind == "join" and self.fold(who) == self.fold(self.nick):
            self.channels[folded] = ChannelState(name)
        channel = self.channels.get(folded)
        if channel is None:
            return
        if kind == "join" and self._keeps(who):
            channel.members[self.fold(who)] = who
        elif kind in ("part", "kick"):
            left = arguments[0] if kind == "kick" and arguments else who
            if self.fold(left) == self.fold(self.nick):
                del self.channels[folded]
            else:
                _remove(channel, self.fold(left))
        elif kind == "mode" and arguments:
            self._modes(channel, arguments[0], arguments[1:])

    def _keeps(self, member: str) -> bool:
        return self._members or self.fold(member) == self.fold(self.nick)

    def _renamed(self, old: str, new: str) -> None:
        if old == self.nick:  # exactly as the ``irc`` package tracks it
            self.nick = new
        old_folded, new_folded = self.fold(old), self.fold(new)
        for channel in self.channels.values():
            if channel.members.pop(old_folded, None) is not None:
                channel.members[new_folded] = new
                if old_folded in channel.prefixes:
                    channel.prefixes[new_folded] = channel.prefixes.pop(old_folded)

    def _names(self, name: str, names: str) -> None:
        channel = self.channels.get(self.fold(name))
        if channel is None:
            return
        symbols = self.prefix_modes
        for entry in names.split():
            modes = set()
            while entry and entry[0] in symbols:
                modes.add(symbols[entry[0]])
                entry = entry[1:]
            member = irc.client.NickMask(entry).nick  # userhost-in-names: nick!ident@host
            if member and self._keeps(member):
                channel.members[self.fold(member)] = member
                if modes:
                    channel.prefixes[self.fold(member)] = modes

    def _modes(self, channel: ChannelState, changes: str, params: list[str]) -> None:
        member_modes = set(self.prefix_modes.values())
        lists, always, on_set, _flags, *_ = [*self.isupport.get("CHANMODES", DEFAULT_CHANMODES).split(","), "", "", ""]
        adding = True
        for mode in changes:
            if mode in "+-":
                adding = mode == "+"
            elif mode in member_modes:
                _set_prefix(channel, self.fold(params.pop(0) if params else ""), mode, adding=adding)
            elif mode in lists:
                params[:1] = []  # bans and their exceptions: not kept
            elif mode in always or (adding and mode in on_set):
                _set_mode(channel, mode, params.pop(0) if params else "", adding=adding)
            else:  # a flag, or a mode whose parameter is only given when it is set
                _set_mode(channel, mode, "", adding=adding)


def _set_prefix(channel: ChannelState, member: str, mode: str, *, adding: bool) -> None:
    if member not in channel.members:
        return
    modes = channel.prefixes.setdefault(member, set())
    if adding:
        modes.add(mode)
    else:
        modes.discard(mode)
        if not modes:
            del channel.prefixes[member]


def _set_mode(channel: ChannelState, mode: str, param: str, *, adding: bool) -> None:
    if adding:
        channel.modes[mode] = param
    else:
        channel.modes.pop(mode, None)


def _remove(channel: ChannelState, member: str) -> None:
    channel.members.pop(member, None)
    channel.prefixes.pop(member, None)


__all__ = ["ECHO_CAP", "ChannelState", "ConnectionState", "NickChooser", "Reaction"]
