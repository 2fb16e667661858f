"""Every IRC line the bridge writes, built here from typed values: one builder per command.

What arrives is the ``irc`` package's :class:`irc.client.Event` (parsed by the package); what
leaves is a :class:`Line`, so the rest of the bridge never formats or re-parses raw text, and a
nick or channel that slipped past the grammar checks cannot smuggle in a second command or shift
the parameters: a builder refuses CR, LF and NUL anywhere, and an empty parameter, a space or a
leading ``:`` in any parameter but the trailing one (RFC 1459 section 2.3.1).

The ``irc`` package itself writes the registration (PASS, NICK, USER), PONG and QUIT.

A test reads ``bridges/irc/*.py`` and fails on an f-string that builds an IRC command outside
this module.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

MessageCommand = Literal["PRIVMSG", "NOTICE"]


@dataclass(frozen=True, slots=True)
class Line:
    """One IRC command as written: ``command params... [:trailing]`` (without CR LF)."""

    command: str
    params: tuple[str, ...] = ()
    trailing: str | None = None
    """The last parameter, written after ``:`` (it may hold spaces, or be empty)."""
    text: str = field(init=False, repr=False, compare=False)
    """The line as written (made once: a message's lines are written, and matched against
    echoes, by it)."""

    def __post_init__(self) -> None:
        if not self.command.isalnum() or not self.command.isascii():
            raise ValueError(f"not an IRC command: {self.command!r}")
        for param in self.params:
            _check_middle(param)
        words = " ".join((self.command, *self.params))
        if self.trailing is not None:
            _check_any(self.trailing)
            words = f"{words} :{self.trailing}"
        object.__setattr__(self, "text", words)

    @property
    def target(self) -> str | None:
        """The first parameter: for PRIVMSG, NOTICE, JOIN, PART, TOPIC, MODE, KICK, a channel or nick."""
        return self.params[0] if self.params else None

    def __str__(self) -> str:
        return self.text


def _check_any(value: str) -> None:
    # CR or LF would end the line early and what follows would be read as a command of its own.
    if "\r" in value or "\n" in value or "\0" in value:
        raise ValueError("an IRC parameter must not contain CR, LF or NUL")


def _check_middle(value: str) -> None:
    _check_any(value)
    if not value or " " in value or value.startswith(":"):
        raise ValueError(f"only the last IRC parameter may be empty, hold a space or start with ':': {value!r}")


# ---- messages ----------------------------------------------------------------------------------

def message(command: MessageCommand, target: str, text: str, *, action: bool = False) -> Line:
    """A PRIVMSG or NOTICE; ``action``: as a CTCP ACTION (``/me``)."""
    return Line(command, (target,), f"\x01ACTION {text}\x01" if action else text)


def privmsg(target: str, text: str, *, action: bool = False) -> Line:
    return message("PRIVMSG", target, text, action=action)


def notice(target: str, text: str) -> Line:
    return message("NOTICE", target, text)


# ---- channels ----------------------------------------------------------------------------------

def join(channel: str, key: str | None = None) -> Line:
    """``key``: the channel's key (``+k``), checked by ``channel_keys.key_problem`` before."""
    return Line("JOIN", (channel, key) if key else (channel,))


def part(channel: str, reason: str | None = None) -> Line:
    return Line("PART", (channel,), reason or None)


def topic(channel: str, text: str) -> Line:
    """Sets the topic (an empty ``text`` clears it: the trailing ``:`` is always written)."""
    return Line("TOPIC", (channel,), text)


def mode(target: str, modes: str, *params: str) -> Line:
    return Line("MODE", (target, modes, *params))


def mode_query(channel: str) -> Line:
    """``MODE #channel``: the server answers with the channel's modes (324)."""
    return Line("MODE", (channel,))


def kick(channel: str, nick: str, reason: str) -> Line:
    return Line("KICK", (channel, nick), reason)


def who(mask: str) -> Line:
    return Line("WHO", (mask,))


def names(channel: str) -> Line:
    return Line("NAMES", (channel,))


def topic_query(channel: str) -> Line:
    """Asks for the topic (no trailing parameter: an empty one would clear it)."""
    return Line("TOPIC", (channel,))


# ---- users -------------------------------------------------------------------------------------

def whois(nick: str) -> Line:
    return Line("WHOIS", (nick,))


def raw(text: str) -> Line:
    """A line a bridge admin typed (``raw``), parsed into a :class:`Line`: ``COMMAND params...
    [:trailing]``. Raises ValueError as :class:`Line` does (CR, LF, NUL, a bad command)."""
    head, colon, trailing = text.partition(" :")
    words = head.split(" ")
    if not words or not words[0] or any(not word for word in words[1:]):
        raise ValueError("a raw line is COMMAND [params...] [:trailing], single spaces between")
    return Line(words[0].upper(), tuple(words[1:]), trailing if colon else None)


def as_received(line: Line, *, source: str) -> str:
    """``line`` as other clients receive it, with the ``:nick!ident@host`` prefix the server puts
    before it (what the 512-byte limit counts; see ``output_gate.line_budget``)."""
    return f":{source} {line.text}"


# ---- the connection ----------------------------------------------------------------------------

def nick(new_nick: str) -> Line:
    return Line("NICK", (new_nick,))


def cap_request(caps: Iterable[str]) -> Line:
    return Line("CAP", ("REQ",), " ".join(caps))


def ping(token: str) -> Line:
    return Line("PING", (), token)


# ---- identifying (SASL, NickServ; see ``sasl.py``) ----------------------------------------------

def cap_ls() -> Line:
    """Sent before NICK/USER: the server holds registration until ``CAP END`` (IRCv3 302)."""
    return Line("CAP", ("LS", "302"))


def cap_end() -> Line:
    return Line("CAP", ("END",))


def authenticate(payload: str) -> Line:
    """One AUTHENTICATE step: a mechanism (``PLAIN``), a base64 chunk of at most 400 bytes, or
    ``+`` (empty, or the end of a payload whose last chunk was exactly 400 bytes)."""
    return Line("AUTHENTICATE", (payload,))


__all__ = [
    "Line",
    "MessageCommand",
    "as_received",
    "authenticate",
    "cap_end",
    "cap_ls",
    "cap_request",
    "join",
    "kick",
    "message",
    "mode",
    "mode_query",
    "names",
    "nick",
    "notice",
    "part",
    "ping",
    "privmsg",
    "raw",
    "topic",
    "topic_query",
    "who",
    "whois",
]
