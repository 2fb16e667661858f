"""Slack-compatible payloads (what Grafana, Alertmanager and CI tools send) as Matrix text and HTML.

Slack's ``mrkdwn`` escapes ``&``, ``<`` and ``>`` as entities and writes links and mentions as
``<url|label>``, ``<@U123>``, ``<!channel>``; ``*bold*``, ``_italic_``, ``~strike~`` and backticks
mark up the rest. Attachments become quotes (their colour bar has no Matrix equivalent), Block
Kit sections and headers become paragraphs.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from typing import Any

SLACK_KEYS = frozenset({"attachments", "blocks", "icon_url", "icon_emoji", "mrkdwn", "channel"})
_ENTITY = re.compile(r"<([^<>\n]+)>")
_STYLES = (
    (re.compile(r"(?<![\w*])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![\w*])"), "strong"),
    (re.compile(r"(?<![\w_])_(?=\S)([^_\n]+?)(?<=\S)_(?![\w_])"), "em"),
    (re.compile(r"(?<![\w~])~(?=\S)([^~\n]+?)(?<=\S)~(?![\w~])"), "del"),
)
_SAFE_LINK = ("http://", "https://", "mailto:")


def looks_like_slack(fields: Mapping[str, Any]) -> bool:
    """A payload with Slack-only keys, or text with Slack links (``<https://...|label>``)."""
    if SLACK_KEYS & fields.keys():
        return True
    text = fields.get("text")
    return isinstance(text, str) and re.search(r"<(https?://|mailto:|[@#!])[^<>\n]*>", text) is not None


def _unescape(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _entity(inner: str) -> tuple[str, str]:
    """(plain, html) for one ``<...>``."""
    target, _, label = inner.partition("|")
    target, label = _unescape(target), _unescape(label)
    if target.startswith(("@", "#")):
        shown = label or target
        shown = shown if shown.startswith(("@", "#")) else target[0] + shown
        return shown, html.escape(shown)
    if target.startswith("!"):
        word = label or "@" + target[1:].split("^", 1)[0]
        return word, html.escape(word)
    if target.lower().startswith(_SAFE_LINK):
        shown = label or target
        plain = shown if not label or label == target else f"{label} ({target})"
        return plain, f'<a href="{html.escape(target, quote=True)}">{html.escape(shown)}</a>'
    return f"<{inner}>", html.escape(f"<{inner}>")


def _styled(escaped: str) -> str:
    for pattern, tag in _STYLES:
        escaped = pattern.sub(rf"<{tag}>\1</{tag}>", escaped)
    return escaped


class Lines:
    """Plain-text and HTML renderings built side by side (also GitHub's, ``github.py``)."""

    def __init__(self) -> None:
        self.plain: list[str] = []
        self.html: list[str] = []

    def add(self, plain: str, marked: str) -> None:
        self.plain.append(plain)
        self.html.append(marked)


def _inline(text: str) -> tuple[str, str]:
    """Text without code spans: entities become links, the rest is escaped and styled."""
    out = Lines()
    position = 0
    for match in _ENTITY.finditer(text):
        before = _unescape(text[position:match.start()])
        out.add(before, _styled(html.escape(before, quote=False)))
        out.add(*_entity(match.group(1)))
        position = match.end()
    rest = _unescape(text[position:])
    out.add(rest, _styled(html.escape(rest, quote=False)))
    return "".join(out.plain), "".join(out.html)


def mrkdwn(text: str) -> tuple[str, str]:
    """Slack ``mrkdwn`` -> (plain text, Matrix HTML)."""
    out = Lines()
    # Code first: nothing inside ``` or ` is markup.
    for index, part in enumerate(re.split(r"(```[\s\S]*?```|`[^`\n]+`)", text)):
        if index % 2:
            code = _unescape(part.strip("`"))
            block = part.startswith("```")
            escaped = html.escape(code.strip("\n") if block else code, quote=False)
            out.add(part if block else code,
                    f"<pre><code>{escaped}</code></pre>" if block else f"<code>{escaped}</code>")
        else:
            part_plain, part_html = _inline(part)
            out.add(part_plain, part_html.replace("\n", "<br>"))
    return "".join(out.plain), "".join(out.html)


def _text_of(value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping) and isinstance(value.get("text"), str):
        return str(value["text"])
    return ""


def _attachment(attachment: Mapping[str, Any]) -> Lines:
    """The plain lines and html parts of one attachment's quoted content."""
    out = Lines()

    def add(text: str, *, bold: bool = False) -> None:
        if not text.strip():
            return
        line_plain, line_html = mrkdwn(text)
        out.add(line_plain, f"<strong>{line_html}</strong>" if bold else line_html)

    author = _text_of(attachment.get("author_name"))
    if author:
        add(author)
    title = _text_of(attachment.get("title"))
    link = attachment.get("title_link")
    if title and isinstance(link, str) and link.lower().startswith(_SAFE_LINK):
        out.add(f"{title} ({link})",
                f'<strong><a href="{html.escape(link, quote=True)}">{html.escape(title)}</a></strong>')
    else:
        add(title, bold=True)
    add(_text_of(attachment.get("text")))
    for field in attachment.get("fields") or []:
        if isinstance(field, Mapping):
            name, value = _text_of(field.get("title")), _text_of(field.get("value"))
            value_plain, value_html = mrkdwn(value)
            out.add(f"{name}: {value_plain}" if name else value_plain,
                    f"<strong>{html.escape(name)}</strong>: {value_html}" if name else value_html)
    image = attachment.get("image_url")
    if isinstance(image, str) and image.lower().startswith(_SAFE_LINK):
        out.add(image, f'<a href="{html.escape(image, quote=True)}">{html.escape(image)}</a>')
    add(_text_of(attachment.get("footer")))
    if not out.plain:
        add(_text_of(attachment.get("fallback")))
    return out


def _blocks(blocks: list[Any], out: Lines) -> None:
    for block in blocks:
        if not isinstance(block, Mapping):
            continue
        kind = block.get("type")
        texts = [_text_of(block.get("text"))]
        texts += [_text_of(field) for field in block.get("fields") or []]
        if kind == "context":
            texts += [_text_of(element) for element in block.get("elements") or []]
        for text in filter(None, texts):
            text_plain, text_html = mrkdwn(text)
            out.add(text_plain, f"<p><strong>{text_html}</strong></p>" if kind == "header" else f"<p>{text_html}</p>")


def render_slack(fields: Mapping[str, Any]) -> tuple[str, str]:
    """A Slack message payload -> (plain text, HTML). Empty strings when there is nothing to show."""
    out = Lines()
    text = _text_of(fields.get("text"))
    if text:
        out.add(*mrkdwn(text))
    blocks = fields.get("blocks")
    if isinstance(blocks, list):
        _blocks(blocks, out)
    for attachment in fields.get("attachments") or []:
        if not isinstance(attachment, Mapping):
            continue
        pretext = _text_of(attachment.get("pretext"))
        if pretext:
            pre_plain, pre_html = mrkdwn(pretext)
            out.add(pre_plain, f"<p>{pre_html}</p>")
        quoted = _attachment(attachment)
        if quoted.plain:
            out.add("\n".join(f"> {line}" for chunk in quoted.plain for line in chunk.split("\n")),
                    "<blockquote>" + "<br>".join(quoted.html) + "</blockquote>")
    return "\n".join(out.plain).strip(), "".join(out.html)


__all__ = ["SLACK_KEYS", "Lines", "looks_like_slack", "mrkdwn", "render_slack"]
