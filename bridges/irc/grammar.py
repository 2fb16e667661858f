"""Is this a nick or a channel on this network? The one check before a name reaches the wire.

Names that come from the Matrix side (a ghost's user ID, an alias, a ``link`` or ``nick``
command) are text anyone can choose. Sent as they are, they become commands nobody meant: the
ghost that unescapes to ``*`` made the bot send ``MODE #chan +b *!*@*`` (everyone banned), one
that unescapes to ``a,b,c`` kicked three people, and ``#*.org`` is a host mask to IRC operators
(RFC 1459 §4.4.1). So every such name is checked here against the grammar of RFC 2812 §2.3.1 and
the network's ISUPPORT (NICKLEN, CHANTYPES, CHANNELLEN, CASEMAPPING) before it is used.

- A nick is a letter or one of ``[]\\`_^{|}``, then letters, digits, those and ``-``, at most
  NICKLEN long. On networks with ``CASEMAPPING=rfc7613`` (UTF-8 nicks) letters and digits of any
  script are allowed too; wildcards, ``,``, ``!``, ``@``, ``:``, spaces and controls never are.
- A channel starts with one of CHANTYPES, is at most CHANNELLEN bytes, and holds no space, comma,
  colon, control character or wildcard (``*``, ``?``): legal in some channel names, but never
  worth the risk of a mask.
"""

from __future__ import annotations

import string
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass

NICK_SPECIALS = "[]\\`_^{|}"
NICK_FIRST = frozenset(string.ascii_letters + NICK_SPECIALS)
NICK_REST = NICK_FIRST | frozenset(string.digits + "-")
CHANNEL_FORBIDDEN = frozenset(" ,:*?\x7f")
DEFAULT_CHANTYPES = "#&"
"""RFC 2812's usual channel types, until the server says (InspIRCd says ``#`` only)."""
DEFAULT_CHANNELLEN = 64
ANY_CHANTYPE = "#&+!"
"""The channel types of RFC 2812 (a network offers some of them in CHANTYPES)."""


@dataclass(frozen=True)
class IrcGrammar:
    """What names this network accepts; :meth:`from_isupport` reads it from the server."""

    nicklen: int = 30
    chantypes: str = DEFAULT_CHANTYPES
    channellen: int = DEFAULT_CHANNELLEN
    casemapping: str = "rfc1459"

    def with_isupport(self, isupport: Mapping[str, str], *, casemapping: str | None = None) -> IrcGrammar:
        """This grammar with what the server announced (005) taking over; ``casemapping`` is the
        one the bridge recorded (it never changes silently, see the connector)."""
        nicklen, channellen = isupport.get("NICKLEN", ""), isupport.get("CHANNELLEN", "")
        return IrcGrammar(
            nicklen=int(nicklen) if nicklen.isdigit() and int(nicklen) > 0 else self.nicklen,
            chantypes=isupport.get("CHANTYPES", self.chantypes),
            channellen=int(channellen) if channellen.isdigit() and int(channellen) > 1 else self.channellen,
            casemapping=casemapping or self.casemapping,
        )

    def nick_problem(self, nick: str) -> str | None:
        """Why ``nick`` is not a nick here (for the person who typed or chose it), or None."""
        if not nick:
            return "a nick cannot be empty"
        if len(nick) > self.nicklen:
            return f"a nick has at most {self.nicklen} characters here"
        unicode = self.casemapping.lower() == "rfc7613"
        if not (nick[0] in NICK_FIRST or (unicode and _unicode_letter(nick[0]))):
            return "a nick starts with a letter or one of " + NICK_SPECIALS
        bad = next((c for c in nick if not (c in NICK_REST or (unicode and _unicode_word(c)))), None)
        if bad is not None:
            return f"{bad!r} cannot be part of a nick"
        return None

    def channel_problem(self, channel: str) -> str | None:
        """Why ``channel`` is not a channel name here, or None."""
        if not self.chantypes or channel[:1] not in self.chantypes:
            kinds = " or ".join(self.chantypes) or "nothing (this network has no channels)"
            return f"a channel name starts with {kinds}"
        if len(channel) < 2:
            return "a channel name needs more than its prefix"
        if len(channel.encode("utf-8", "replace")) > self.channellen:
            return f"a channel name has at most {self.channellen} bytes here"
        bad = next((c for c in channel if c in CHANNEL_FORBIDDEN or unicodedata.category(c) in ("Cc", "Cs")), None)
        if bad is not None:
            return f"{bad!r} cannot be part of a channel name"
        return None

    def is_nick(self, nick: str) -> bool:
        return self.nick_problem(nick) is None

    def is_channel(self, channel: str) -> bool:
        return self.channel_problem(channel) is None

    def as_channel(self, name: str) -> str:
        """``name`` with this network's first channel type put in front when it has none
        (``python`` -> ``#python``), as aliases and ``link`` commands are written. A name with
        another network's channel type (``&local`` where only ``#`` exists) is left as it is, for
        :meth:`channel_problem` to refuse, rather than quietly becoming ``#&local``."""
        if name[:1] in self.chantypes or name[:1] in ANY_CHANTYPE or not self.chantypes:
            return name
        return ("#" if "#" in self.chantypes else self.chantypes[0]) + name


def _unicode_letter(character: str) -> bool:
    return not character.isascii() and unicodedata.category(character).startswith("L")


def _unicode_word(character: str) -> bool:
    return not character.isascii() and unicodedata.category(character)[0] in "LNM"


__all__ = ["IrcGrammar"]
