"""The one gate every outgoing IRC text passes through: cleaned, then cut into lines that fit.

Users lost messages and bridges got flood-kicked whenever some path (notices, HTML-only messages)
skipped the line limit (matrix-appservice-irc #1835, #490), so there is exactly one way out:
:func:`sanitize` makes sure nothing from Matrix can end an IRC command early (CR, LF, NUL) or
smuggle a CTCP, :func:`split_lines` cuts by UTF-8 bytes so each line *as other clients receive it*
fits 512 bytes, and :func:`plan` decides when a message is too long to send line by line.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from bridges.irc.formatting import CODE_PATTERN, FORMATTING_CODES, PLAIN, strip_formatting, style_after, style_codes
from bridges.irc.lines import Line, as_received

IRC_LINE_BYTES = 512
"""RFC 1459/2812: a whole line, CR LF included. Message tags are counted separately by servers."""
ACTION_OVERHEAD = len("\x01ACTION ") + len("\x01")
DEFAULT_HOST_ALLOWANCE = 63
"""The longest hostname a server shows (RFC 1123 label limit servers use); assume it when unsure."""
UNKNOWN_HOST = "x" * DEFAULT_HOST_ALLOWANCE
"""A placeholder host for :func:`line_budget` before the server has told us our real host."""
SUFFIX_ALLOWANCE = 80
"""Bytes :func:`plan` leaves free after a truncated excerpt, for `` … (full message: URL)``."""
MIN_BUDGET = 4
"""The smallest budget that always fits one character (UTF-8 needs up to four bytes)."""

_NEWLINES = ("\r\n", "\u2028", "\u2029", "\x85")
_SPACES = "\t\x0b\x0c\r"
_SURROGATES = re.compile("[\ud800-\udfff]")
_ZERO_WIDTH_JOINER = "\u200d"
_BREAKS_AND_SPACES = re.compile("[ \n]+")


def _removal_table() -> dict[int, str | None]:
    table: dict[int, str | None] = {}
    for code in [*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0)]:
        if chr(code) not in FORMATTING_CODES and chr(code) != "\n":
            table[code] = None
    table.update({ord(space): " " for space in _SPACES})
    return table


_REMOVED = _removal_table()


def sanitize(text: str) -> str:
    """``text`` with nothing that could break the IRC wire: only LF and formatting codes remain.

    CR LF and Unicode line separators become LF (a line break the sender meant: it starts a new
    PRIVMSG, never a new command). A lone CR, the classic injection (``text\\rQUIT``), becomes a
    space, like tabs and other whitespace controls, so such an attempt stays one harmless line.
    NUL, ``\\x01`` (CTCP), DEL, C1 and other controls go; lone surrogates (which cannot be
    encoded) become U+FFFD.
    """
    text = _SURROGATES.sub("\ufffd", text)
    for newline in _NEWLINES:
        text = text.replace(newline, "\n")
    return text.translate(_REMOVED)


def one_line(text: str, max_bytes: int) -> str:
    """``text`` sanitised and flattened to one line (every line break and run of spaces becomes
    one space), cut to ``max_bytes`` UTF-8 bytes: for what IRC takes as a command's last
    parameter only (a PART or KICK reason), where a line break would end the command early."""
    flat = _BREAKS_AND_SPACES.sub(" ", sanitize(text)).strip(" ")  # not str.split(): it eats \x1d-\x1f codes
    cut = cut_bytes(flat, max_bytes)
    return cut if len(cut) == len(flat) else cut.rstrip()  # a cut may end in the space it fell on


def cut_bytes(text: str, max_bytes: int) -> str:
    """``text`` itself when it fits ``max_bytes`` UTF-8 bytes, else its longest start that does
    (never half a character)."""
    encoded = text.encode("utf-8")
    if len(encoded) <= max_bytes:
        return text
    return encoded[:max_bytes].decode("utf-8", errors="ignore")


def line_budget(
    *, nick: str, ident: str, host: str | None, target: str, command: str = "PRIVMSG", action: bool = False
) -> int:
    """Bytes left for the text of one line: ``:nick!ident@host COMMAND target :text`` + CR LF <= 512.

    ``host=None`` means not known yet: :data:`DEFAULT_HOST_ALLOWANCE` bytes are assumed. One byte is
    always counted for the ``~`` servers put before an ident identd did not confirm, because a byte
    too few costs nothing while a byte too many cuts the end of someone's message.
    """
    shown_ident = ident if ident.startswith("~") else "~" + ident
    source = f"{nick}!{shown_ident}@{UNKNOWN_HOST if host is None else host}"
    prefix = as_received(Line(command, (target,), ""), source=source)
    budget = IRC_LINE_BYTES - _size(prefix) - len("\r\n") - (ACTION_OVERHEAD if action else 0)
    if budget < MIN_BUDGET:
        raise ValueError(f"no room for text in an IRC line to {target!r} from {nick!r}: {budget} bytes left")
    return budget


@dataclass(frozen=True)
class Plan:
    """What to send for one message.

    ``truncated`` False: send ``lines`` as they are. ``truncated`` True: the message had more lines
    than allowed; ``lines`` holds one excerpt (the start of the first line) whose UTF-8 size is at
    most ``budget - suffix_allowance``, with formatting closed (``\\x0f``) if it was left open, and
    the caller appends its own suffix of at most ``suffix_allowance`` bytes, such as
    `` … (full message: https://...)``.
    """

    lines: list[str]
    truncated: bool


def plan(text: str, budget: int, max_lines: int, *, suffix_allowance: int = SUFFIX_ALLOWANCE) -> Plan:
    """Lines for ``text`` (see :func:`split_lines`), or an excerpt when more than ``max_lines``."""
    if max_lines < 1:
        raise ValueError(f"max_lines must be at least 1, not {max_lines}")
    lines = split_lines(text, budget)
    if len(lines) <= max_lines:
        return Plan(lines, truncated=False)
    return Plan([_excerpt(lines[0], budget - suffix_allowance)], truncated=True)


def _excerpt(line: str, room: int) -> str:
    head = split_lines(line, room - 1)[0]  # one byte kept for the reset
    return head + "\x0f" if style_after(head) != PLAIN else head


def split_lines(text: str, budget: int) -> list[str]:
    """``text`` (sanitised here again) as IRC lines of at most ``budget`` UTF-8 bytes each.

    Every LF starts a new line; blank lines (nothing visible) are dropped. A longer line is cut at
    its last space that fits (the space is dropped, so no words are lost or reordered); a word too
    long for a line of its own is cut between characters, keeping combining marks, emoji ZWJ
    sequences, skin tones and flags with their base, and never inside a formatting code. Formatting
    still active at a cut is re-applied at the start of the next line, so bold stays bold.
    """
    if budget < MIN_BUDGET:
        raise ValueError(f"an IRC line budget must be at least {MIN_BUDGET} bytes, not {budget}")
    lines: list[str] = []
    for line in sanitize(text).split("\n"):
        if not _is_blank(line):
            lines.extend(_split_line(line, budget))
    return lines


def _split_line(line: str, budget: int) -> list[str]:
    atoms = _atoms(line, budget)
    chunks: list[str] = []
    carry = ""  # codes re-applying the style in force at the last cut
    start = 0
    while start < len(atoms):
        room = budget - _size(carry)
        if _size(atoms[start]) > room:
            carry, room = "", budget  # the style is lost rather than the text
        end, resume = _cut(atoms, start, room)
        chunk = carry + "".join(atoms[start:end]).rstrip(" ")
        if not _is_blank(chunk):
            chunks.append(chunk)
        start = resume
        while start < len(atoms) and atoms[start] == " ":
            start += 1
        carry = style_codes(style_after(chunk), following=atoms[start] if start < len(atoms) else "")
    return chunks


def _cut(atoms: list[str], start: int, room: int) -> tuple[int, int]:
    """Where this line's atoms end, and where the next line resumes (after a dropped space)."""
    used, fitting, last_space, seen_text = 0, start, 0, False
    for index in range(start, len(atoms)):
        atom = atoms[index]
        if atom == " " and seen_text:
            last_space = index
        size = _size(atom)
        if used + size > room:
            break
        used, fitting = used + size, index + 1
        seen_text = seen_text or (atom != " " and not _is_code(atom))
    else:
        return len(atoms), len(atoms)
    if last_space:
        return last_space, last_space + 1
    end = max(fitting, start + 1)
    return end, end


def _atoms(line: str, budget: int) -> list[str]:
    """``line`` as pieces never to be cut: whole formatting codes and user-perceived characters."""
    atoms: list[str] = []
    position = 0
    for code in CODE_PATTERN.finditer(line):
        atoms.extend(_clusters(line[position : code.start()]))
        atoms.append(code.group())
        position = code.end()
    atoms.extend(_clusters(line[position:]))
    # A "character" bigger than a whole line (a thousand stacked combining marks) is cut anyway.
    return [piece for atom in atoms for piece in ([atom] if _size(atom) <= budget else list(atom))]


def _clusters(text: str) -> list[str]:
    clusters: list[str] = []
    start = 0
    for index in range(1, len(text)):
        if not _joins(text[index - 1], text[index], single=index - start == 1):
            clusters.append(text[start:index])
            start = index
    if text:
        clusters.append(text[start:])
    return clusters


def _joins(previous: str, character: str, *, single: bool) -> bool:
    """Whether ``character`` belongs to the character cluster before it (an approximation of UAX #29).

    ``single``: that cluster is one character so far (two regional indicators make one flag).
    """
    if unicodedata.category(character) in ("Mn", "Me", "Mc"):
        return True
    if _ZERO_WIDTH_JOINER in (character, previous):
        return True
    code = ord(character)
    if 0xFE00 <= code <= 0xFE0F or 0x1F3FB <= code <= 0x1F3FF or 0xE0020 <= code <= 0xE007F:
        return True  # variation selectors, skin tones, tag sequences (subdivision flags)
    return single and _regional_indicator(character) and _regional_indicator(previous)


def _regional_indicator(character: str) -> bool:
    return 0x1F1E6 <= ord(character) <= 0x1F1FF


def _is_code(atom: str) -> bool:
    return CODE_PATTERN.fullmatch(atom) is not None


def _is_blank(line: str) -> bool:
    return not strip_formatting(line).strip()


def _size(text: str) -> int:
    return len(text.encode("utf-8"))
