"""IRC formatting codes, as pure functions: what they are, the style they leave text in, and the
codes that put text in a style. Both directions build on this: IRC -> Matrix HTML in
``formatting_to_matrix.py``, Matrix HTML -> IRC in ``formatting_from_matrix.py``.

IRC styles text with in-band control codes that *toggle* (bold on ... bold off) and may overlap;
Matrix uses properly nested HTML. Codes follow https://modern.ircdocs.horse/formatting.html,
including its 99-colour palette.
"""


from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace

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

TOGGLES = {BOLD: "bold", ITALIC: "italic", UNDERLINE: "underline", STRIKETHROUGH: "strikethrough",
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
    name = TOGGLES[first]
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
    return transition(PLAIN, style, following)


def colour_number(colour: Colour | None, palette_size: int = len(PALETTE)) -> int:
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


_ASCII_DIGITS = frozenset("0123456789")


def transition(current: Style, wanted: Style, following: str) -> str:
    """The codes that change ``current`` into ``wanted`` right before the text ``following``."""
    codes = "".join(code for code, name in TOGGLES.items() if getattr(current, name) != getattr(wanted, name))
    if (current.fg, current.bg) == (wanted.fg, wanted.bg):
        return codes
    if wanted.fg is None and wanted.bg is None:
        # A bare \x03 would swallow digits that follow ("\x035 apples" is colour 5).
        ambiguous = following[:1] in _ASCII_DIGITS or following[:1] == ","
        return codes + (f"{COLOUR}99,99" if ambiguous else COLOUR)
    code = f"{COLOUR}{colour_number(wanted.fg):02d}"
    if wanted.bg is not None or current.bg is not None or wanted.fg is None or following[:1] == ",":
        code += f",{colour_number(wanted.bg):02d}"
    return codes + code
