"""IRC formatting codes <-> Matrix HTML, both ways, as pure functions.

IRC styles text with in-band control codes that *toggle* (bold on ... bold off) and may overlap;
Matrix uses properly nested HTML. Towards Matrix, the toggles are replayed into one style per run
of text and rendered as nested tags, with every piece of text escaped: whatever an IRC user types
(``<script>`` included) must arrive as text. Towards IRC, the HTML is walked with the stdlib parser
and codes are written lazily, just before the text they style, so they always describe exactly the
text that follows and start afresh on every new line (IRC forgets formatting between messages).

Codes follow https://modern.ircdocs.horse/formatting.html, including its 99-colour palette.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from html.parser import HTMLParser
from typing import NamedTuple
from urllib.parse import unquote

BOLD = "\x02"
COLOUR = "\x03"
HEX_COLOUR = "\x04"
RESET = "\x0f"
MONOSPACE = "\x11"
REVERSE = "\x16"
ITALIC = "\x1d"
STRIKETHROUGH = "\x1e"
UNDERLINE = "\x1f"
FORMATTING_CODES = frozenset(
    BOLD + COLOUR + HEX_COLOUR + RESET + MONOSPACE + REVERSE + ITALIC + STRIKETHROUGH + UNDERLINE
)
"""Every character that starts an IRC formatting code; the output gate lets exactly these through."""

PALETTE: tuple[str, ...] = (
    # 0-15: the classic mIRC colours, the only ones most IRC clients can show.
    "#ffffff", "#000000", "#00007f", "#009300", "#ff0000", "#7f0000", "#9c009c", "#fc7f00",
    "#ffff00", "#00fc00", "#009393", "#00ffff", "#0000fc", "#ff00ff", "#7f7f7f", "#d2d2d2",
    # 16-98: the extended palette.
    "#470000", "#472100", "#474700", "#324700", "#004700", "#00472c", "#004747", "#002747",
    "#000047", "#2e0047", "#470047", "#47002a", "#740000", "#743a00", "#747400", "#517400",
    "#007400", "#007449", "#007474", "#004074", "#000074", "#4b0074", "#740074", "#740045",
    "#b50000", "#b56300", "#b5b500", "#7db500", "#00b500", "#00b571", "#00b5b5", "#0063b5",
    "#0000b5", "#7500b5", "#b500b5", "#b5006b", "#ff0000", "#ff8c00", "#ffff00", "#b2ff00",
    "#00ff00", "#00ffa0", "#00ffff", "#008cff", "#0000ff", "#a500ff", "#ff00ff", "#ff0098",
    "#ff5959", "#ffb459", "#ffff71", "#cfff60", "#6fff6f", "#65ffc9", "#6dffff", "#59b4ff",
    "#5959ff", "#c459ff", "#ff66ff", "#ff59bc", "#ff9c9c", "#ffd39c", "#ffff9c", "#e2ff9c",
    "#9cff9c", "#9cffdb", "#9cffff", "#9cd3ff", "#9c9cff", "#dc9cff", "#ff9cff", "#ff94d3",
    "#000000", "#131313", "#282828", "#363636", "#4d4d4d", "#656565", "#818181", "#9f9f9f",
    "#bcbcbc", "#e2e2e2", "#ffffff",
)  # fmt: skip
"""Colour number -> hex. 99 (not listed) means "the client's default colour"."""

DEFAULT_COLOUR = 99
CLASSIC_COLOURS = 16
"""Matrix colours are sent to IRC as one of the first 16, which nearly every IRC client shows."""

CODE_PATTERN = re.compile(
    "\x03(?:(?P<fg>[0-9]{1,2})(?:,(?P<bg>[0-9]{1,2}))?)?"
    "|\x04(?:(?P<hexfg>[0-9A-Fa-f]{6})(?:,(?P<hexbg>[0-9A-Fa-f]{6}))?)?"
    "|[\x02\x0f\x11\x16\x1d\x1e\x1f]"
)
"""One whole formatting code, as IRC clients read it (a colour code takes at most two digits)."""

Colour = int | str
"""A palette number (0-98, from ``\\x03``) or six hex digits (from ``\\x04``)."""


@dataclass(frozen=True, slots=True)
class Style:
    """What the IRC formatting codes seen so far make the next character look like."""

    bold: bool = False
    italic: bool = False
    underline: bool = False
    strikethrough: bool = False
    monospace: bool = False
    reverse: bool = False
    fg: Colour | None = None
    bg: Colour | None = None


PLAIN = Style()

_TOGGLES = {BOLD: "bold", ITALIC: "italic", UNDERLINE: "underline", STRIKETHROUGH: "strikethrough",
            MONOSPACE: "monospace", REVERSE: "reverse"}  # fmt: skip


@dataclass(frozen=True, slots=True)
class LinkSpan:
    """A link to lay over the plain body (``body[start:end]``), e.g. a mention pill."""

    start: int
    end: int
    href: str


# ---------------------------------------------------------------------------------------------
# Reading IRC codes


def strip_formatting(text: str) -> str:
    """The text without any formatting code: what the Matrix ``body`` shows."""
    return CODE_PATTERN.sub("", text)


def apply_code(style: Style, code: re.Match[str]) -> Style:
    """The style after one formatting code (a match of :data:`CODE_PATTERN`)."""
    first = code.group()[0]
    if first == RESET:
        return PLAIN
    if first == COLOUR:
        return _after_colour(style, code["fg"], code["bg"], _palette_number)
    if first == HEX_COLOUR:
        return _after_colour(style, code["hexfg"], code["hexbg"], str.lower)
    name = _TOGGLES[first]
    return replace(style, **{name: not getattr(style, name)})


def _after_colour(style: Style, fg: str | None, bg: str | None, read: Callable[[str], Colour | None]) -> Style:
    # A bare colour code ends both colours; a foreground alone keeps the background.
    if fg is None:
        return replace(style, fg=None, bg=None)
    return replace(style, fg=read(fg), bg=style.bg if bg is None else read(bg))


def _palette_number(digits: str) -> int | None:
    number = int(digits)
    return number if number < len(PALETTE) else None


def style_after(text: str, start: Style = PLAIN) -> Style:
    """The style in force at the end of ``text`` (for re-applying it on the next line)."""
    style = start
    for code in CODE_PATTERN.finditer(text):
        style = apply_code(style, code)
    return style


def styled_runs(text: str) -> list[tuple[str, Style]]:
    """``text`` cut into runs of code-free text, each with the style it is shown in."""
    runs: list[tuple[str, Style]] = []
    style, position = PLAIN, 0
    for code in CODE_PATTERN.finditer(text):
        if code.start() > position:
            runs.append((text[position : code.start()], style))
        style, position = apply_code(style, code), code.end()
    if position < len(text):
        runs.append((text[position:], style))
    return runs


def style_codes(style: Style, *, following: str = ",") -> str:
    """Codes that turn a fresh IRC line's (plain) style into ``style``, right before ``following``.

    Knowing the text that follows keeps the codes short and unambiguous: a colour is written with
    two digits, and its background too when ``following`` starts with a comma (``,5`` would
    otherwise be read as a background). The default assumes the worst.
    """
    return _transition(PLAIN, style, following)


def _colour_number(colour: Colour | None, palette_size: int = len(PALETTE)) -> int:
    if colour is None:
        return DEFAULT_COLOUR
    if isinstance(colour, int):
        return colour
    return nearest_colour(colour, palette_size=palette_size)


def nearest_colour(hex_colour: str, *, palette_size: int = CLASSIC_COLOURS) -> int:
    """The palette number that looks closest to ``hex_colour`` (``rrggbb``, ``#rrggbb`` or ``#rgb``).

    Distance is the "redmean" weighted RGB distance: cheap and much closer to what eyes see than
    plain RGB distance.
    """
    target = _rgb(hex_colour)
    return min(range(palette_size), key=lambda number: _distance(target, _rgb(PALETTE[number])))


def _rgb(hex_colour: str) -> tuple[int, int, int]:
    digits = hex_colour.removeprefix("#")
    if len(digits) == 3:
        digits = "".join(digit * 2 for digit in digits)
    return int(digits[0:2], 16), int(digits[2:4], 16), int(digits[4:6], 16)


def _distance(one: tuple[int, int, int], other: tuple[int, int, int]) -> float:
    red_mean = (one[0] + other[0]) / 2
    red, green, blue = (one[0] - other[0]), (one[1] - other[1]), (one[2] - other[2])
    return (2 + red_mean / 256) * red * red + 4 * green * green + (2 + (255 - red_mean) / 256) * blue * blue


# ---------------------------------------------------------------------------------------------
# IRC -> Matrix


class _Tag(NamedTuple):
    open: str
    close: str


def irc_to_matrix(text: str, *, links: Sequence[LinkSpan] = ()) -> tuple[str, str | None]:
    """An IRC line as a Matrix ``(body, formatted_body)``; ``formatted_body`` is None when plain.

    ``links`` (positions in the plain body, e.g. mention pills from ``bridges.irc.mentions``) are
    laid over the formatting, so one message can carry both. Reverse video (``\\x16``) has no
    Matrix equivalent and is dropped. URLs stay text: Matrix clients linkify them.
    """
    runs = styled_runs(text)
    body = "".join(piece for piece, _ in runs)
    return body, _render_html(_with_links(runs, links))


def _with_links(runs: list[tuple[str, Style]], links: Sequence[LinkSpan]) -> list[tuple[str, Style, str | None]]:
    spans = _usable_spans(links)
    cuts = sorted({point for span in spans for point in (span.start, span.end)})
    pieces: list[tuple[str, Style, str | None]] = []
    position = 0
    for piece, style in runs:
        end = position + len(piece)
        inner = [cut for cut in cuts if position < cut < end]
        for start, stop in zip([position, *inner], [*inner, end], strict=True):
            pieces.append((piece[start - position : stop - position], style, _href_at(spans, start)))
        position = end
    return pieces


def _usable_spans(links: Sequence[LinkSpan]) -> list[LinkSpan]:
    # Overlapping or empty spans cannot be nested sensibly: the first one wins.
    usable: list[LinkSpan] = []
    for span in sorted(links, key=lambda span: span.start):
        if span.start < span.end and (not usable or span.start >= usable[-1].end):
            usable.append(span)
    return usable


def _href_at(spans: list[LinkSpan], position: int) -> str | None:
    return next((span.href for span in spans if span.start <= position < span.end), None)


def _render_html(pieces: list[tuple[str, Style, str | None]]) -> str | None:
    out: list[str] = []
    stack: list[_Tag] = []
    tagged = False
    for text, style, href in pieces:
        if not text:
            continue
        wanted = _tags_for(style, href)
        keep = 0
        while keep < len(stack) and stack[keep] in wanted:
            keep += 1
        out.extend(tag.close for tag in reversed(stack[keep:]))
        del stack[keep:]
        for tag in wanted:
            if tag not in stack:
                out.append(tag.open)
                stack.append(tag)
                tagged = True
        out.append(html.escape(text).replace("\n", "<br>"))
    out.extend(tag.close for tag in reversed(stack))
    return "".join(out) if tagged else None


def _tags_for(style: Style, href: str | None) -> list[_Tag]:
    """The tags a run needs, outermost first (the order new tags are opened in)."""
    tags: list[_Tag] = []
    if href is not None:
        tags.append(_Tag(f'<a href="{html.escape(href)}">', "</a>"))
    font = _font_attributes(style)
    if font:
        tags.append(_Tag(f"<font{font}>", "</font>"))
    for name, tag in (("bold", "b"), ("italic", "i"), ("underline", "u"), ("strikethrough", "del"),
                      ("monospace", "code")):  # fmt: skip
        if getattr(style, name):
            tags.append(_Tag(f"<{tag}>", f"</{tag}>"))
    return tags


def _font_attributes(style: Style) -> str:
    attributes = ""
    if style.fg is not None:
        attributes += f' data-mx-color="{_hex(style.fg)}"'
    if style.bg is not None:
        attributes += f' data-mx-bg-color="{_hex(style.bg)}"'
    return attributes


def _hex(colour: Colour) -> str:
    return PALETTE[colour] if isinstance(colour, int) else f"#{colour}"


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
        self._out.append(_transition(self._emitted, wanted, text))
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


def _transition(current: Style, wanted: Style, following: str) -> str:
    """The codes that change ``current`` into ``wanted`` right before the text ``following``."""
    codes = "".join(code for code, name in _TOGGLES.items() if getattr(current, name) != getattr(wanted, name))
    if (current.fg, current.bg) == (wanted.fg, wanted.bg):
        return codes
    if wanted.fg is None and wanted.bg is None:
        # A bare \x03 would swallow digits that follow ("\x035 apples" is colour 5).
        ambiguous = following[:1] in _ASCII_DIGITS or following[:1] == ","
        return codes + (f"{COLOUR}99,99" if ambiguous else COLOUR)
    code = f"{COLOUR}{_colour_number(wanted.fg):02d}"
    if wanted.bg is not None or current.bg is not None or wanted.fg is None or following[:1] == ",":
        code += f",{_colour_number(wanted.bg):02d}"
    return codes + code


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
