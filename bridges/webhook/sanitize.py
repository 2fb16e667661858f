"""HTML from webhook senders, reduced to what the Matrix spec allows in ``formatted_body``.

The spec (client-server API, "m.room.message msgtypes", HTML) lists the tags and attributes
clients should accept; anything else is dropped here, so a sender cannot smuggle scripts, styles
or tracking images into the room. Text inside a dropped tag stays (as text), except for tags whose
content is never meant to be read (script, style...). Links keep only web, mail and magnet
schemes; images only ``mxc://`` sources (clients must not fetch arbitrary URLs).
"""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

ALLOWED_TAGS = frozenset({
    "font", "del", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "p", "a", "ul", "ol", "sup", "sub",
    "li", "b", "i", "u", "strong", "em", "s", "code", "hr", "br", "div", "table", "thead", "tbody", "tr",
    "th", "td", "caption", "pre", "span", "img", "details", "summary",
})
ALLOWED_ATTRIBUTES: dict[str, frozenset[str]] = {
    "font": frozenset({"data-mx-bg-color", "data-mx-color", "color"}),
    "span": frozenset({"data-mx-bg-color", "data-mx-color", "data-mx-spoiler", "data-mx-maths"}),
    "div": frozenset({"data-mx-maths"}),
    "a": frozenset({"target", "href"}),
    "img": frozenset({"width", "height", "alt", "title", "src"}),
    "ol": frozenset({"start"}),
    "code": frozenset({"class"}),
}
LINK_SCHEMES = ("https:", "http:", "ftp:", "mailto:", "magnet:")
VOID_TAGS = frozenset({"br", "hr", "img"})
DROP_CONTENT = frozenset({
    "script", "style", "head", "title", "iframe", "object", "embed", "template", "noscript", "mx-reply",
})
MAX_DEPTH = 100
"""The spec lets clients limit nesting to 100 levels; deeper tags are dropped (their text kept)."""

_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")


def _clean_attribute(tag: str, name: str, value: str) -> str | None:
    if name not in ALLOWED_ATTRIBUTES.get(tag, frozenset()):
        return None
    value = value.strip()
    if name == "href":
        return value if value.lower().startswith(LINK_SCHEMES) else None
    if name == "src":
        return value if value.startswith("mxc://") else None
    if name in ("color", "data-mx-color", "data-mx-bg-color"):
        return value if _COLOR.match(value) else None
    if name == "class":
        return value if re.fullmatch(r"language-[\w+#.-]+", value) else None
    if name in ("width", "height", "start"):
        return value if value.isdigit() else None
    return value


class _Sanitizer(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.open: list[str] = []  # allowed tags we emitted and have not closed
        self.dropping: list[str] = []  # DROP_CONTENT tags we are inside

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in DROP_CONTENT:
            if tag not in VOID_TAGS:
                self.dropping.append(tag)
            return
        if self.dropping or tag not in ALLOWED_TAGS:
            return
        if tag == "img" and not any(k == "src" and v and v.startswith("mxc://") for k, v in attrs):
            return  # an image we may not show: drop it rather than keep an empty <img>
        if tag not in VOID_TAGS and len(self.open) >= MAX_DEPTH:
            return
        kept = []
        for name, value in attrs:
            cleaned = _clean_attribute(tag, name, value or "")
            if cleaned is not None:
                kept.append(f' {name}="{html.escape(cleaned, quote=True)}"')
        self.out.append(f"<{tag}{''.join(kept)}>")
        if tag not in VOID_TAGS:
            self.open.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in VOID_TAGS and self.open and self.open[-1] == tag:
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in DROP_CONTENT:
            if tag in self.dropping:
                while self.dropping and self.dropping.pop() != tag:
                    pass
            return
        if self.dropping or tag not in self.open:
            return
        # Close what was left open inside it, so the output is always well nested.
        while self.open:
            inner = self.open.pop()
            self.out.append(f"</{inner}>")
            if inner == tag:
                break

    def handle_data(self, data: str) -> None:
        if not self.dropping:
            self.out.append(html.escape(data, quote=False))

    def result(self) -> str:
        self.close()
        return "".join(self.out) + "".join(f"</{tag}>" for tag in reversed(self.open))


def sanitize_html(fragment: str) -> str:
    """``fragment`` with only the tags and attributes the Matrix spec allows."""
    parser = _Sanitizer()
    parser.feed(fragment)
    return parser.result()


_BLOCK_TAGS = frozenset({
    "p", "div", "blockquote", "pre", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "table", "tr", "details",
})


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip = 0
        self.href: list[str | None] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in DROP_CONTENT:
            self.skip += 1
        elif tag == "br":
            self.parts.append("\n")
        elif tag == "li":
            self.parts.append("\n- ")
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")
        elif tag == "a":
            self.href.append(dict(attrs).get("href"))

    def handle_endtag(self, tag: str) -> None:
        if tag in DROP_CONTENT:
            self.skip = max(0, self.skip - 1)
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")
        elif tag == "a" and self.href:
            href = self.href.pop()
            if href and href.lower().startswith(("http:", "https:")) and not self._ends_with(href):
                self.parts.append(f" ({href})")

    def _ends_with(self, text: str) -> bool:
        return "".join(self.parts[-3:]).endswith(text)

    def handle_data(self, data: str) -> None:
        if not self.skip:
            self.parts.append(data)


def html_to_text(fragment: str) -> str:
    """A readable plain-text ``body`` for an HTML message (links written out after their text)."""
    parser = _TextExtractor()
    parser.feed(fragment)
    parser.close()
    text = "".join(parser.parts)
    text = re.sub(r"[ \t]+\n", "\n", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


__all__ = ["ALLOWED_ATTRIBUTES", "ALLOWED_TAGS", "html_to_text", "sanitize_html"]
