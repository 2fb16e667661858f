"""IRC nicks, idents and realnames for Matrix users: deterministic, valid, and stable.

Everything here is derived from the Matrix ID and displayname alone, so a user keeps the same nick
and ident across reconnects and restarts, and IRC operators can ban one person by ident. On a
nick collision the fallback is a short hash of the Matrix ID, never a counter: counters
(``nick[m]1``, ``[m]2``) confused users (matrix-appservice-irc #751) and ran out when other
bridges' users were bridged again (#1209).
"""

from __future__ import annotations

import base64
import hashlib
import re
import string
import unicodedata

from bridges.irc.output_gate import sanitize

NICK_FIRST_CHARS = frozenset(string.ascii_letters + "[]\\`_^{|}")
"""What a nick may start with (RFC 2812: a letter or a "special")."""
NICK_CHARS = NICK_FIRST_CHARS | frozenset(string.digits + "-")
"""What the rest of a nick may contain."""
IDENT_CHARS = frozenset(string.ascii_lowercase + string.digits)
"""Idents use a subset every server accepts."""
COLLISION_TAG_LENGTH = 3
"""``-`` and two hash characters: what :func:`collision_nick` adds, and the default reserve for it."""
_BASE32 = "abcdefghijklmnopqrstuvwxyz234567"
_PLACEHOLDER = re.compile(r"\{(displayname|localpart)\}")


def matrix_user_nick(template: str, *, displayname: str | None, user_id: str, nicklen: int, reserve: int = 3) -> str:
    """The nick for a Matrix user, from a template such as ``{displayname}[m]`` or ``{localpart}|m``.

    The name is reduced to nick characters (accents dropped, spaces and other characters removed, a
    leading digit or ``-`` prefixed with ``_``), falls back to the localpart, then to a hash, and is
    shortened so the whole nick plus ``reserve`` characters for a collision tag fits ``nicklen``.
    When ``nicklen`` is too small even for that, the reserve and then the template's suffix give way.
    """
    if nicklen < 1:
        raise ValueError(f"NICKLEN must be at least 1, not {nicklen}")
    prefix, placeholder, suffix = _template_parts(template)
    name = _name(displayname if placeholder == "displayname" else None, user_id)
    room = nicklen - reserve - len(prefix) - len(suffix)
    if room < 1:
        room = nicklen - len(prefix) - len(suffix)  # the reserve gives way first
    if room < 1:
        suffix, room = "", max(1, nicklen - len(prefix))  # then the suffix: the name matters more
    nick = prefix + name[:room] + suffix
    if nick[0] not in NICK_FIRST_CHARS:
        nick = "_" + nick
    return nick[:nicklen]


def template_suffix(template: str) -> str:
    """The template's text after its placeholder (``[m]``): what :func:`collision_nick` keeps last."""
    return _template_parts(template)[2]


def collision_nick(nick: str, *, user_id: str, attempt: int, nicklen: int, keep_suffix: str = "") -> str:
    """A replacement for ``nick`` when the server says it is taken (433): ``alice-k3[m]``.

    The tag (``-`` and two characters) comes from the Matrix ID and ``attempt``: the same user gets
    the same nick for the same attempt on every connection, and attempts 0 to 1023 all differ. It
    goes before ``keep_suffix`` (pass :func:`template_suffix`) when the nick ends with it.
    """
    if attempt < 0:
        raise ValueError(f"attempt must not be negative, not {attempt}")
    if nicklen < COLLISION_TAG_LENGTH + 1:
        raise ValueError(f"NICKLEN {nicklen} leaves no room for a collision tag")
    base, suffix = nick, ""
    if keep_suffix and nick.endswith(keep_suffix) and len(nick) > len(keep_suffix):
        base, suffix = nick[: -len(keep_suffix)], keep_suffix
    if nicklen - COLLISION_TAG_LENGTH - len(suffix) < 1:
        suffix = ""  # NICKLEN is too small for the suffix: the name comes first
    room = nicklen - COLLISION_TAG_LENGTH - len(suffix)
    return (base or "_")[:room] + "-" + _collision_tag(user_id, attempt) + suffix


def ident_for(user_id: str, *, maxlen: int = 10) -> str:
    """A short ident that stays the same for a Matrix ID: ``alice`` + five hash characters.

    Lowercase ASCII letters and digits only, starting with a letter; the hash keeps two users with
    the same localpart (on different servers, or double-bridged ``_discord_...`` users) apart.
    """
    if maxlen < 2:
        raise ValueError(f"an ident needs at least 2 characters, not {maxlen}")
    hash_length = min(5, maxlen - 1)  # 32**5: near-unique, so an IRC ban by ident hits one person
    folded = unicodedata.normalize("NFKD", _localpart(user_id)).lower()
    start = "".join(character for character in folded if character in IDENT_CHARS)
    if not start[:1].isalpha():
        start = "m" + start
    return start[: maxlen - hash_length] + _digest(user_id)[:hash_length]


def realname_for(user_id: str) -> str:
    """The realname (gecos) IRC users see in WHOIS: the Matrix ID, so they know who is behind a nick."""
    return " ".join(sanitize(user_id).split())


def sanitize_nick_part(text: str) -> str:
    """``text`` reduced to nick characters, never starting with a digit or ``-`` (may be empty)."""
    decomposed = unicodedata.normalize("NFKD", text)
    kept = "".join(character for character in decomposed if character in NICK_CHARS)
    if kept and kept[0] not in NICK_FIRST_CHARS:
        kept = "_" + kept
    return kept


def _template_parts(template: str) -> tuple[str, str, str]:
    placeholders = list(_PLACEHOLDER.finditer(template))
    if len(placeholders) != 1:
        raise ValueError(f"a nick template needs exactly one {{displayname}} or {{localpart}}: {template!r}")
    found = placeholders[0]
    prefix = "".join(c for c in template[: found.start()] if c in NICK_CHARS)
    suffix = "".join(c for c in template[found.end() :] if c in NICK_CHARS)
    return prefix, found[1], suffix


def _name(displayname: str | None, user_id: str) -> str:
    for candidate in (displayname or "", _localpart(user_id)):
        name = sanitize_nick_part(candidate)
        if name:
            return name
    return "m" + _digest(user_id)[:4]  # nothing usable at all: still a stable, distinct name


def _localpart(user_id: str) -> str:
    return user_id.removeprefix("@").partition(":")[0]


def _digest(text: str) -> str:
    return base64.b32encode(hashlib.sha256(text.encode("utf-8", "replace")).digest()).decode("ascii").lower()


def _collision_tag(user_id: str, attempt: int) -> str:
    # Start and stride both come from the Matrix ID; an odd stride visits all 1024 two-character
    # tags before repeating, so one user's attempts never repeat a tag.
    digest = hashlib.sha256(user_id.encode("utf-8", "replace")).digest()
    start = int.from_bytes(digest[:4], "big") % 1024
    stride = 2 * (int.from_bytes(digest[4:8], "big") % 512) + 1
    value = (start + attempt * stride) % 1024
    return _BASE32[value >> 5] + _BASE32[value & 31]
