"""IRC text -> Matrix HTML, as a pure function (:func:`irc_to_matrix`).

The toggles are replayed into one style per run of text and rendered as nested tags, with every
piece of text escaped: whatever an IRC user types (``<script>`` included) must arrive as text.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import NamedTuple

from bridges.irc.formatting import PALETTE, Colour, LinkSpan, Style, styled_runs

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


