"""Matrix HTML -> IRC text with formatting codes, as pure functions (:func:`matrix_to_irc`).

The HTML is walked with the stdlib parser and codes are written lazily, just before the text they
style, so they always describe exactly the text that follows and start afresh on every new line
(IRC forgets formatting between messages).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import unquote

from bridges.irc.formatting import (
    PLAIN,
    RESET,
    Style,
    nearest_colour,
    strip_formatting,
    transition,
)

# ---------------------------------------------------------------------------------------------
# Matrix -> IRC


def matrix_to_irc(formatted_body: str, *, pill_to_nick: Callable[[str], str | None]) -> str:
    """A Matrix ``formatted_body`` as IRC text with formatting codes; lines separated by ``\\n``.

    ``pill_to_nick`` gives the IRC nick for a mentioned Matrix user (None: keep the pill's label).
    The result never contains CR or NUL; it may be longer than an IRC line: the output gate splits.
    """
    writer = _IrcWriter(pill_to_nick)
    writer.feed(formatted_body)
    writer.close()
    return writer.result()


def strip_reply_fallback(body: str) -> str:
    """``body`` without the legacy reply fallback: leading ``> `` lines followed by a blank line.

    Without the blank line the quote is the user's own text, so it stays.
    """
    lines = body.split("\n")
    quoted = 0
    while quoted < len(lines) and (lines[quoted].startswith("> ") or lines[quoted] == ">"):
        quoted += 1
    if quoted == 0 or quoted == len(lines) or lines[quoted].strip():
        return body
    return "\n".join(lines[quoted + 1 :])


_BLOCKS = frozenset({
    "p", "div", "ul", "ol", "table", "thead", "tbody", "tfoot", "tr", "caption", "details", "summary",
    "section", "article", "header", "footer", "dl", "dt", "dd", "figure", "figcaption",
})  # fmt: skip
_HEADINGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})
_SKIPPED = frozenset({"mx-reply", "script", "style", "head", "title", "template", "noscript"})
"""Content never meant to be read as text: the reply fallback and page machinery."""
_COUNTED = {"b": "bold", "strong": "bold", "i": "italic", "em": "italic", "u": "underline", "ins": "underline",
            "s": "strikethrough", "del": "strikethrough", "strike": "strikethrough"}  # fmt: skip
_ASCII_DIGITS = frozenset("0123456789")
_HTML_SPACE = re.compile("[ \t\n\r\f]+")
_TEXT_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f]")
"""Control characters in HTML text: formatting must come from tags, and the rest is never text."""
_HEX_ATTRIBUTE = re.compile(r"#?(?:[0-9a-fA-F]{6}|[0-9a-fA-F]{3})")
_MATRIX_TO_USER = re.compile(r"https://matrix\.to/#/([^/?#]+)", re.IGNORECASE)
_MATRIX_URI_USER = re.compile(r"matrix:u/([^/?#]+)")
_URL_JUNK = re.compile(r"[\x00-\x20\x7f]")
SPOILER_COLOUR = 1
"""Spoilers go out black on black: hidden until an IRC user selects the text."""


@dataclass
class _Element:
    """An open HTML element and how to undo what opening it did."""

    tag: str
    undo: list[Callable[[], object]] = field(default_factory=list)


@dataclass(frozen=True)
class _Mark:
    """The writer's position and state, so a pill's label can be taken back and replaced."""

    length: int
    emitted: Style
    line_has_text: bool
    pending_break: bool
    pending_bullet: str


class _IrcWriter(HTMLParser):
    def __init__(self, pill_to_nick: Callable[[str], str | None]) -> None:
        super().__init__(convert_charrefs=True)
        self._pill_to_nick = pill_to_nick
        self._out: list[str] = []
        self._open: list[_Element] = []
        self._open_tags: dict[str, int] = {}  # how many of each tag are open: stray end tags cost O(1)
        self._counts = {"bold": 0, "italic": 0, "underline": 0, "strikethrough": 0, "monospace": 0}
        self._colours: list[tuple[int | None, int | None]] = []
        self._emitted = PLAIN
        self._line_has_text = False
        self._pending_break = False
        self._pending_bullet = ""
        self._quote_depth = 0
        self._pre_depth = 0
        self._skip_depth = 0
        self._lists: list[list[int]] = []  # per open list: [next number], or [] for bullets
        self._cells: list[int] = []

    # -- parser callbacks --------------------------------------------------------------------

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._skip_depth and tag not in _SKIPPED:
            return
        attributes = {name: value or "" for name, value in attrs}
        if self._void(tag, attributes):
            return
        element = _Element(tag)
        self._open.append(element)
        self._open_tags[tag] = self._open_tags.get(tag, 0) + 1
        self._start(element, attributes)

    def handle_endtag(self, tag: str) -> None:
        if self._skip_depth and tag not in _SKIPPED:
            return
        if not self._open_tags.get(tag):
            return  # a stray end tag closes nothing
        while self._open:
            element = self._open.pop()
            self._open_tags[element.tag] -= 1
            for undo in reversed(element.undo):
                undo()
            if element.tag == tag:
                return

    def handle_data(self, data: str) -> None:
        if self._skip_depth:
            return
        data = _TEXT_CONTROLS.sub("", data.replace("\t", "    " if self._pre_depth else " "))
        if self._pre_depth:
            self._write_preformatted(data)
        else:
            self._write_flowing(data)

    def result(self) -> str:
        if self._emitted != PLAIN:
            self._out.append(RESET)  # so text a caller appends is not styled by accident
        lines = "".join(self._out).replace("\r", "").replace("\0", "").split("\n")
        return "\n".join(line.rstrip(" ") for line in lines).strip("\n")

    # -- elements ----------------------------------------------------------------------------

    def _void(self, tag: str, attributes: dict[str, str]) -> bool:
        if tag == "br":
            self._hard_break()
        elif tag == "hr":
            self._block()
            self._write_flowing("----")
            self._block()
        elif tag == "img":
            self._write_flowing(attributes.get("alt") or attributes.get("title") or attributes.get("src", ""))
        else:
            return False
        return True

    def _start(self, element: _Element, attributes: dict[str, str]) -> None:
        tag = element.tag
        if tag in _SKIPPED:
            self._skip_depth += 1
            element.undo.append(self._end_skip)
        elif tag in _COUNTED:
            self._count(element, _COUNTED[tag])
        elif tag == "code" and not self._pre_depth:
            self._count(element, "monospace")
        elif tag in ("font", "span"):
            self._start_colour(element, attributes)
        elif tag == "a":
            self._start_link(element, attributes.get("href", ""))
        else:
            self._start_block(element, attributes)

    def _start_block(self, element: _Element, attributes: dict[str, str]) -> None:
        tag = element.tag
        if tag not in _BLOCKS and tag not in _HEADINGS and tag not in ("blockquote", "pre", "li", "td", "th"):
            return  # unknown tags: only their text counts
        if tag in ("td", "th"):
            self._start_cell()
            return
        self._block()
        element.undo.append(self._block)
        if tag in _HEADINGS:
            self._count(element, "bold")
        elif tag == "blockquote":
            self._quote_depth += 1
            element.undo.append(self._end_quote)
        elif tag == "pre":
            self._pre_depth += 1
            element.undo.append(self._end_pre)
        elif tag in ("ul", "ol"):
            self._lists.append([_list_start(attributes.get("start", ""))] if tag == "ol" else [])
            element.undo.append(self._lists.pop)
        elif tag == "li":
            self._pending_bullet = self._bullet()
        elif tag == "tr":
            self._cells.append(0)
            element.undo.append(self._cells.pop)

    def _count(self, element: _Element, name: str) -> None:
        self._counts[name] += 1

        def undo() -> None:
            self._counts[name] -= 1

        element.undo.append(undo)

    def _start_colour(self, element: _Element, attributes: dict[str, str]) -> None:
        outer_fg, outer_bg = self._colours[-1] if self._colours else (None, None)
        fg: int | None
        bg: int | None
        if "data-mx-spoiler" in attributes:
            fg = bg = SPOILER_COLOUR
        else:
            fg = _attribute_colour(attributes.get("data-mx-color") or attributes.get("color"))
            bg = _attribute_colour(attributes.get("data-mx-bg-color"))
        if fg is None and bg is None:
            return
        self._colours.append((outer_fg if fg is None else fg, outer_bg if bg is None else bg))
        element.undo.append(self._colours.pop)

    def _start_link(self, element: _Element, href: str) -> None:
        mark = _Mark(len(self._out), self._emitted, self._line_has_text, self._pending_break, self._pending_bullet)
        href = _URL_JUNK.sub("", href)

        def finish() -> None:
            self._finish_link(mark, href)

        element.undo.append(finish)

    def _finish_link(self, mark: _Mark, href: str) -> None:
        label = " ".join(strip_formatting("".join(self._out[mark.length :])).split())
        user_id = _pill_user(href)
        if user_id is not None:
            nick = self._pill_to_nick(user_id) or label or user_id
            if nick != label:
                self._rewind(mark)
                self._write_flowing(nick)
        elif href and not label:
            self._write_flowing(href)
        elif href and not _same_link(label, href):
            self._write_flowing(f" ({href})")

    def _rewind(self, mark: _Mark) -> None:
        del self._out[mark.length :]
        self._emitted, self._line_has_text = mark.emitted, mark.line_has_text
        self._pending_break, self._pending_bullet = mark.pending_break, mark.pending_bullet

    def _start_cell(self) -> None:
        if self._cells:
            if self._cells[-1]:
                self._write_flowing(" | ")
            self._cells[-1] += 1

    def _bullet(self) -> str:
        indent = "  " * max(0, len(self._lists) - 1)
        if self._lists and self._lists[-1]:
            number = self._lists[-1][0]
            self._lists[-1][0] += 1
            return f"{indent}{number}. "
        return f"{indent}• "

    def _end_skip(self) -> None:
        self._skip_depth -= 1

    def _end_quote(self) -> None:
        self._quote_depth -= 1

    def _end_pre(self) -> None:
        self._pre_depth -= 1

    # -- writing -----------------------------------------------------------------------------

    def _block(self) -> None:
        """A block starts or ends: whatever comes next goes on a new line."""
        self._pending_break = True

    def _hard_break(self) -> None:
        if self._line_has_text:
            self._new_line()

    def _new_line(self) -> None:
        self._out.append("\n")
        self._line_has_text = False
        self._emitted = PLAIN  # every IRC line starts unformatted

    def _write_flowing(self, text: str) -> None:
        text = _HTML_SPACE.sub(" ", text)
        if not self._line_has_text or self._pending_break:
            text = text.lstrip(" ")
        self._emit(text)

    def _write_preformatted(self, text: str) -> None:
        for number, line in enumerate(text.split("\n")):
            if number:
                self._hard_break()
            self._emit(line)

    def _emit(self, text: str) -> None:
        if not text:
            return
        if self._pending_break and self._line_has_text:
            self._new_line()
        self._pending_break = False
        if not self._line_has_text:
            self._out.append("> " * self._quote_depth + self._pending_bullet)
            self._pending_bullet = ""
        wanted = self._wanted_style()
        self._out.append(transition(self._emitted, wanted, text))
        self._emitted = wanted
        self._out.append(text)
        self._line_has_text = True

    def _wanted_style(self) -> Style:
        fg, bg = self._colours[-1] if self._colours else (None, None)
        counts = self._counts
        return Style(
            bold=counts["bold"] > 0,
            italic=counts["italic"] > 0,
            underline=counts["underline"] > 0,
            strikethrough=counts["strikethrough"] > 0,
            monospace=counts["monospace"] > 0,
            fg=fg,
            bg=bg,
        )


def _attribute_colour(value: str | None) -> int | None:
    if value is None or not _HEX_ATTRIBUTE.fullmatch(value.strip()):
        return None
    return nearest_colour(value.strip())


def _list_start(value: str) -> int:
    return int(value) if value.isdigit() and len(value) < 7 else 1


def _pill_user(href: str) -> str | None:
    """The Matrix user a link points at (``https://matrix.to/#/@u:s`` or ``matrix:u/u:s``), if any."""
    web = _MATRIX_TO_USER.match(href)
    if web is not None:
        user_id = unquote(web[1])
    else:
        uri = _MATRIX_URI_USER.match(href)
        if uri is None:
            return None
        user_id = "@" + unquote(uri[1])
    valid = user_id.startswith("@") and ":" in user_id and not _URL_JUNK.search(user_id)
    return user_id if valid else None


def _same_link(label: str, href: str) -> bool:
    """Whether the label already says where the link goes (so ``(url)`` would only repeat it)."""
    bare = re.sub(r"^(?:https?://|mailto:)", "", href, flags=re.IGNORECASE).rstrip("/")
    return label.rstrip("/").lower() in (href.rstrip("/").lower(), bare.lower())
