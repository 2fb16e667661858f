"""Remote identifiers <-> Matrix user IDs: the one stable, reversible mapping for ghosts.

Homeservers store every ghost user ID a bridge registers, forever. Changing any rule below after a
release strands every existing ghost (its messages, memberships and power levels stay with the old
ID), so this scheme is frozen: extend it only with new, opt-in functions, never by editing these.

The scheme, exactly
-------------------

**Escaping** (:func:`escape_localpart`), after the Matrix spec's "mapping from other character sets"
(appendix, identifier grammar). The text is encoded as UTF-8 and each byte is written as follows:

- ``a-z``, ``0-9``, ``.``, ``-``: written as themselves, in both modes.
- ``_``: itself when ``keep_case=False``; ``__`` when ``keep_case=True``.
- ``A-Z``: ``=41``..``=5a`` when ``keep_case=False``; ``_`` plus the lower-case letter when
  ``keep_case=True`` (``A`` -> ``_a``).
- every other byte, including ``=``, ``/``, ``+``, space, NUL and each byte of a multi-byte
  character: ``=xx`` (``=`` -> ``=3d``, ``|`` -> ``=7c``, ``é`` -> ``=c3=a9``).

``xx`` is the byte's value as two **lower-case** hex digits. The output therefore only ever contains
``[a-z0-9._=-]``. Two deliberate differences from the spec: ``/`` and ``+`` are escaped although the
grammar allows them (DESIGN §5; a raw ``/`` breaks naive URL paths and ``+`` reads as a space in
form-encoded text), and with ``keep_case=False`` upper-case ASCII is escaped as ``=41``..``=5a``
instead of lower-cased. Callers are meant to fold case first (as their network does), so upper case
should not arrive; if it does, escaping it keeps the mapping injective, where silently
lower-casing would merge ``Alice`` into ``alice``.

**Unescaping** (:func:`unescape_localpart`) accepts only the canonical form the escaper produces, so
each remote id has exactly one localpart and each localpart at most one remote id. A ``ValueError``
names the position and the reason for: ``=`` not followed by two lower-case hex digits; ``=xx`` for a
byte that is written another way (``=61`` for ``a``; with ``keep_case=True`` also ``=41`` for ``A``
and ``=5f`` for ``_``); with ``keep_case=True``, ``_`` not followed by ``_`` or ``a-z``; any character
outside ``[a-z0-9._=-]``; bytes that are not valid UTF-8.

Strings holding lone surrogates (which have no UTF-8 form) are refused with ``ValueError``.

**Ghost user IDs** (:func:`ghost_user_id`)::

    @{prefix}{network}_{escape_localpart(remote_id, keep_case=...)}:{server_name}

e.g. prefix ``_irc_``, network ``libera``, nick ``Alice`` folded to ``alice``, server ``example.org``
gives ``@_irc_libera_alice:example.org``. ``network`` is ``[a-z0-9-]+``: it never contains ``_``, so
the first ``_`` after the prefix ends it and ``libera`` can never claim ``libera-chat``'s ghosts.
``prefix`` uses the localpart grammar ``[a-z0-9._=/+-]*``. Remote ids must not be empty. The whole
user ID is limited to 255 bytes (Matrix spec); a longer one raises :class:`IdentifierTooLong`
rather than being truncated, since truncation is irreversible and would merge remote users whose
ids share a beginning. :func:`parse_ghost_user_id` is the exact inverse; it compares the server
name as an exact string and answers ``None`` for anything this scheme could not have produced.

**A connector section's ghosts** (:func:`section_ghost_user_id`, the rule the bridge uses; opt-in
above the frozen functions, which stay as they are): when the section's ghost prefix is the
default ``_{network}_``, the prefix already names the network, so it is not repeated::

    @{prefix}{escape_localpart(remote_id)}:{server_name}      (prefix == "_" + network + "_")

e.g. the webhook connector ``hooks`` (prefix ``_hooks_``) gives ``@_hooks_0123.ab12:example.org``
rather than ``@_hooks_hooks_0123.ab12:example.org``. Any other prefix (IRC's shared ``_irc_`` for
the network ``libera``) keeps :func:`ghost_user_id`'s form, ``@_irc_libera_alice``. One exception
keeps the short form unambiguous: a remote id whose escaped form itself begins with
``{network}_`` gets the long form (``hooks_x`` -> ``@_hooks_hooks_hooks_x``). So a short-form
localpart never begins with ``{network}_`` after the prefix, and :func:`parse_section_ghost_user_id`
reads both forms: after the prefix, ``{network}_`` means the long form (a ghost made before the
rule, or the exception), anything else the short form. Ghosts made under the long form keep their
IDs: the core remembers them (``bridgekit/core/ghost_ids.py``).
"""

from __future__ import annotations

import re
from typing import Final

from bridgekit.errors import BridgekitError
from bridgekit.ids import UserID

MAX_USER_ID_BYTES: Final = 255
"""The Matrix spec's limit on a whole user ID, ``@localpart:server``, in bytes."""

# Bytes written as themselves in both modes. '_' is added when case is not kept: only the
# case-keeping mode gives '_' a meaning of its own.
_PLAIN: Final = frozenset(b"abcdefghijklmnopqrstuvwxyz0123456789.-")
_PLAIN_FOLDED: Final = _PLAIN | {ord("_")}
_UPPER: Final = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_HEX_DIGITS: Final = frozenset("0123456789abcdef")

_NETWORK_RE: Final = re.compile(r"[a-z0-9-]+")
_PREFIX_RE: Final = re.compile(r"[a-z0-9._=/+-]*")
# Spec server-name grammar: DNS name, IPv4 or bracketed IPv6 literal, optional port.
_SERVER_NAME_RE: Final = re.compile(r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?::[0-9]{1,5})?")

class IdentifierTooLong(BridgekitError):
    """A Matrix ID built from a remote id would exceed the spec's byte limit.

    Raised instead of truncating: a truncated ID could not be mapped back and could merge two
    remote users into one ghost.
    """

    def __init__(self, what: str, length: int, limit: int, detail: str) -> None:
        self.length = length
        self.limit = limit
        super().__init__(
            f"{what} would be {length} bytes, over the Matrix limit of {limit} ({detail}); "
            "it is refused rather than truncated, because a truncated ID cannot be mapped back"
        )


def escape_localpart(text: str, *, keep_case: bool = False) -> str:
    """Escape ``text`` into ``[a-z0-9._=-]`` as the module docstring specifies (reversible)."""
    plain = _PLAIN if keep_case else _PLAIN_FOLDED
    out: list[str] = []
    for byte in _utf8(text):
        if byte in plain:
            out.append(chr(byte))
        elif keep_case and byte in _UPPER:
            out.append("_" + chr(byte).lower())
        elif keep_case and byte == ord("_"):
            out.append("__")
        else:
            out.append(f"={byte:02x}")
    return "".join(out)


def unescape_localpart(escaped: str, *, keep_case: bool = False) -> str:
    """Reverse :func:`escape_localpart` exactly; ``ValueError`` for anything it could not have produced.

    ``keep_case`` must be the value the text was escaped with.
    """
    plain = _PLAIN if keep_case else _PLAIN_FOLDED
    out = bytearray()
    i = 0
    while i < len(escaped):
        char = escaped[i]
        if char == "=":
            digits = escaped[i + 1 : i + 3]
            if len(digits) != 2 or not set(digits) <= _HEX_DIGITS:
                raise ValueError(
                    f"malformed escape in {escaped!r} at position {i}: '=' must be followed by two "
                    f"lower-case hex digits, found {digits!r}"
                )
            byte = int(digits, 16)
            # Only the canonical spelling is accepted, so no two localparts name one remote id.
            if byte in plain or (keep_case and (byte in _UPPER or byte == ord("_"))):
                canonical = escape_localpart(chr(byte), keep_case=keep_case)
                raise ValueError(
                    f"non-canonical escape in {escaped!r} at position {i}: {chr(byte)!r} is written "
                    f"{canonical!r}, never '={digits}'"
                )
            out.append(byte)
            i += 3
        elif keep_case and char == "_":
            following = escaped[i + 1 : i + 2]
            if following == "_":
                out.append(ord("_"))
            elif following and following in "abcdefghijklmnopqrstuvwxyz":
                out.append(ord(following.upper()))
            else:
                raise ValueError(
                    f"malformed escape in {escaped!r} at position {i}: with keep_case, '_' must be "
                    f"followed by '_' or a lower-case letter, found {following!r}"
                )
            i += 2
        elif char.isascii() and ord(char) in plain:
            out.append(ord(char))
            i += 1
        else:
            raise ValueError(
                f"character {char!r} at position {i} of {escaped!r} cannot appear in an escaped "
                "localpart (only [a-z0-9._=-])"
            )
    try:
        return out.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"escaped localpart {escaped!r} does not decode to valid UTF-8: {exc.reason}") from None


def ghost_localpart(prefix: str, network: str, remote_id: str, *, keep_case: bool = False) -> str:
    """The localpart ``{prefix}{network}_{escaped remote_id}`` of a ghost.

    No case folding happens here: fold first (as the network does) unless ``keep_case``.
    Raises :class:`IdentifierTooLong` when no server name could make a valid user ID of it.
    """
    _check_prefix(prefix)
    _check_network(network)
    if not remote_id:
        raise ValueError(f"remote id for network {network!r} is empty: a ghost needs a non-empty id")
    localpart = f"{prefix}{network}_{escape_localpart(remote_id, keep_case=keep_case)}"
    # '@', ':' and a one-character server name are the least a user ID adds.
    shortest = len(localpart) + 3
    if shortest > MAX_USER_ID_BYTES:
        raise IdentifierTooLong(
            "a ghost user ID", shortest, MAX_USER_ID_BYTES,
            f"localpart alone {len(localpart)} bytes for a remote id of {len(remote_id.encode('utf-8'))} bytes",
        )
    return localpart


def ghost_user_id(
    prefix: str, network: str, remote_id: str, server_name: str, *, keep_case: bool = False
) -> UserID:
    """The ghost user ID ``@{ghost_localpart(...)}:{server_name}``, at most 255 bytes."""
    _check_server_name(server_name)
    localpart = ghost_localpart(prefix, network, remote_id, keep_case=keep_case)
    user_id = f"@{localpart}:{server_name}"
    # The ID is pure ASCII by construction, so characters are bytes.
    if len(user_id) > MAX_USER_ID_BYTES:
        raise IdentifierTooLong(
            "ghost user ID", len(user_id), MAX_USER_ID_BYTES,
            f"localpart {len(localpart)} bytes for a remote id of {len(remote_id.encode('utf-8'))} bytes, "
            f"server name {server_name!r} {len(server_name)} bytes",
        )
    return UserID(user_id)


def parse_ghost_user_id(
    user_id: str, prefix: str, network: str, server_name: str, *, keep_case: bool = False
) -> str | None:
    """The remote id behind a ghost user ID, or ``None`` if this scheme could not have produced it.

    ``None`` covers another server, prefix or network, a malformed or non-canonical escape, an
    empty remote id and an over-long ID. ``prefix``, ``network`` and ``keep_case`` must be the ones
    the ghost was built with; invalid ``prefix``/``network`` values raise ``ValueError``.
    """
    _check_prefix(prefix)
    _check_network(network)
    _check_server_name(server_name)
    if len(user_id.encode("utf-8", "surrogatepass")) > MAX_USER_ID_BYTES:
        return None
    head = f"@{prefix}{network}_"
    tail = f":{server_name}"
    if not user_id.startswith(head) or not user_id.endswith(tail) or len(user_id) <= len(head) + len(tail):
        return None
    try:
        return unescape_localpart(user_id[len(head) : -len(tail)], keep_case=keep_case)
    except ValueError:
        return None


def prefix_names_network(prefix: str, network: str) -> bool:
    """Whether a ghost prefix already names the network: the default prefix, ``_{network}_``."""
    return prefix == f"_{network}_"


def section_ghost_user_id(
    prefix: str, network: str, remote_id: str, server_name: str, *, keep_case: bool = False
) -> UserID:
    """A connector section's ghost: :func:`ghost_user_id`, without repeating the network when the
    prefix is the default ``_{network}_`` (see the module docstring)."""
    long_form = ghost_user_id(prefix, network, remote_id, server_name, keep_case=keep_case)  # checks all
    escaped = escape_localpart(remote_id, keep_case=keep_case)
    if not prefix_names_network(prefix, network) or escaped.startswith(f"{network}_"):
        return long_form
    return UserID(f"@{prefix}{escaped}:{server_name}")  # shorter than the long form, which fitted


def parse_section_ghost_user_id(
    user_id: str, prefix: str, network: str, server_name: str, *, keep_case: bool = False
) -> str | None:
    """The remote id behind a ghost of :func:`section_ghost_user_id`, in either form (None: not
    one of the section's ghosts)."""
    long_form = parse_ghost_user_id(user_id, prefix, network, server_name, keep_case=keep_case)
    if long_form is not None or not prefix_names_network(prefix, network):
        return long_form
    if len(user_id.encode("utf-8", "surrogatepass")) > MAX_USER_ID_BYTES:
        return None
    head, tail = f"@{prefix}", f":{server_name}"
    if not user_id.startswith(head) or not user_id.endswith(tail) or len(user_id) <= len(head) + len(tail):
        return None
    localpart = user_id[len(head) : -len(tail)]
    if localpart.startswith(f"{network}_"):
        return None  # the long form, which did not parse
    try:
        return unescape_localpart(localpart, keep_case=keep_case)
    except ValueError:
        return None


def _utf8(text: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(
            f"{text!r} holds a lone surrogate at position {exc.start}, which has no UTF-8 form and "
            "cannot be put in a Matrix ID"
        ) from None


def _check_network(network: str) -> None:
    if not _NETWORK_RE.fullmatch(network):
        raise ValueError(
            f"network name {network!r} is invalid: use lower-case letters, digits and '-' only "
            "(no '_', which separates the network from the remote id)"
        )


def _check_prefix(prefix: str) -> None:
    if not _PREFIX_RE.fullmatch(prefix):
        raise ValueError(f"ghost prefix {prefix!r} is invalid: use only [a-z0-9._=/+-] (e.g. '_irc_')")


def _check_server_name(server_name: str) -> None:
    if not _SERVER_NAME_RE.fullmatch(server_name):
        raise ValueError(
            f"server name {server_name!r} is invalid: expected a host name or IP literal with an "
            "optional port, e.g. 'example.org' or 'localhost:8448'"
        )


__all__ = [
    "MAX_USER_ID_BYTES",
    "IdentifierTooLong",
    "escape_localpart",
    "ghost_localpart",
    "ghost_user_id",
    "parse_ghost_user_id",
    "parse_section_ghost_user_id",
    "prefix_names_network",
    "section_ghost_user_id",
    "unescape_localpart",
]
