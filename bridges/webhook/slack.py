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


def _inline(text: str) -> tuple[str, str]:
    """Text without code spans: entities become links, the rest is escaped and styled."""
    plain: list[str] = []
    marked: list[str] = []
    position = 0
    for match in _ENTITY.finditer(text):
        before = _unescape(text[position:match.start()])
        plain.append(before)
        marked.append(_styled(html.escape(before, quote=False)))
        entity_plain, entity_html = _entity(match.group(1))
        plain.append(entity_plain)
        marked.append(entity_html)
        position = match.end()
    rest = _unescape(text[position:])
    plain.append(rest)
    marked.append(_styled(html.escape(rest, quote=False)))
    return "".join(plain), "".join(marked)


def mrkdwn(text: str) -> tuple[str, str]:
    """Slack ``mrkdwn`` -> (plain text, Matrix HTML)."""
    plain: list[str] = []
    marked: list[str] = []
    # Code first: nothing inside ``` or ` is markup.
    for index, part in enumerate(re.split(r"(```[\s\S]*?```|`[^`\n]+`)", text)):
        if index % 2:
            code = _unescape(part.strip("`"))
            plain.append(part if part.startswith("```") else code)
            block = part.startswith("```")
            escaped = html.escape(code.strip("\n") if block else code, quote=False)
            marked.append(f"<pre><code>{escaped}</code></pre>" if block else f"<code>{escaped}</code>")
        else:
            part_plain, part_html = _inline(part)
            plain.append(part_plain)
            marked.append(part_html.replace("\n", "<br>"))
    return "".join(plain), "".join(marked)


def _text_of(value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping) and isinstance(value.get("text"), str):
        return str(value["text"])
    return ""


def _attachment(attachment: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """(plain lines, html parts) of one attachment's quoted content."""
    plain: list[str] = []
    parts: list[str] = []

    def add(text: str, *, bold: bool = False) -> None:
        if not text.strip():
            return
        line_plain, line_html = mrkdwn(text)
        plain.append(line_plain)
        parts.append(f"<strong>{line_html}</strong>" if bold else line_html)

    author = _text_of(attachment.get("author_name"))
    if author:
        add(author)
    title = _text_of(attachment.get("title"))
    link = attachment.get("title_link")
    if title and isinstance(link, str) and link.lower().startswith(_SAFE_LINK):
        plain.append(f"{title} ({link})")
        parts.append(f'<strong><a href="{html.escape(link, quote=True)}">{html.escape(title)}</a></strong>')
    else:
        add(title, bold=True)
    add(_text_of(attachment.get("text")))
    for field in attachment.get("fields") or []:
        if isinstance(field, Mapping):
            name, value = _text_of(field.get("title")), _text_of(field.get("value"))
            value_plain, value_html = mrkdwn(value)
            plain.append(f"{name}: {value_plain}" if name else value_plain)
            parts.append(f"<strong>{html.escape(name)}</strong>: {value_html}" if name else value_html)
    image = attachment.get("image_url")
    if isinstance(image, str) and image.lower().startswith(_SAFE_LINK):
        plain.append(image)
        parts.append(f'<a href="{html.escape(image, quote=True)}">{html.escape(image)}</a>')
    add(_text_of(attachment.get("footer")))
    if not plain:
        add(_text_of(attachment.get("fallback")))
    return plain, parts


def _blocks(blocks: list[Any]) -> tuple[list[str], list[str]]:
    plain: list[str] = []
    parts: list[str] = []
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
            plain.append(text_plain)
            parts.append(f"<p><strong>{text_html}</strong></p>" if kind == "header" else f"<p>{text_html}</p>")
    return plain, parts


def render_slack(fields: Mapping[str, Any]) -> tuple[str, str]:
    """A Slack message payload -> (plain text, HTML). Empty strings when there is nothing to show."""
    plain: list[str] = []
    parts: list[str] = []
    text = _text_of(fields.get("text"))
    if text:
        text_plain, text_html = mrkdwn(text)
        plain.append(text_plain)
        parts.append(text_html)
    blocks = fields.get("blocks")
    if isinstance(blocks, list):
        block_plain, block_html = _blocks(blocks)
        plain += block_plain
        parts += block_html
    for attachment in fields.get("attachments") or []:
        if not isinstance(attachment, Mapping):
            continue
        pretext = _text_of(attachment.get("pretext"))
        if pretext:
            pre_plain, pre_html = mrkdwn(pretext)
            plain.append(pre_plain)
            parts.append(f"<p>{pre_html}</p>")
        quoted_plain, quoted_html = _attachment(attachment)
        if quoted_plain:
            plain.append("\n".join(f"> {line}" for chunk in quoted_plain for line in chunk.split("\n")))
            parts.append("<blockquote>" + "<br>".join(quoted_html) + "</blockquote>")
    return "\n".join(plain).strip(), "".join(parts)


__all__ = ["SLACK_KEYS", "looks_like_slack", "mrkdwn", "render_slack"]
