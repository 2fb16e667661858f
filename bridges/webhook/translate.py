"""Request body -> :class:`HookMessage`: the one pure path every inbound request takes.

Bodies may be JSON, form-encoded (with a Slack-style ``payload=`` JSON field or plain fields) or
plain text. The fields: ``text`` (plain), ``html`` (sanitised), ``markdown`` (rendered with raw
HTML off), ``msgtype``, ``username``, ``avatar_url``. Slack-compatible payloads are recognised by
their keys (or Slack links in ``text``); GitHub events by the ``X-GitHub-Event`` header.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import parse_qsl

from markdown_it import MarkdownIt

from bridges.webhook.github import render_github
from bridges.webhook.sanitize import html_to_text, sanitize_html
from bridges.webhook.slack import looks_like_slack, render_slack

MAX_NAME_LENGTH = 100
MSGTYPES = {"text": "m.text", "notice": "m.notice", "emote": "m.emote"}

# Raw HTML off: markdown is the safe format, anything that looks like a tag stays text.
_MARKDOWN = MarkdownIt("commonmark", {"html": False}).enable(["strikethrough", "table"])


@dataclass(frozen=True)
class HookMessage:
    """What one inbound request asks to post (stored as JSON until it is in the room)."""

    text: str
    """The plain-text ``body``; always set."""
    html: str | None = None
    """Sanitised ``formatted_body``, or None for plain text."""
    msgtype: str = "m.text"
    username: str | None = None
    """Who the sender says it is: the ghost's name, or the bold name in bot style."""
    avatar_url: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> HookMessage:
        return cls(
            text=str(data["text"]), html=data.get("html"), msgtype=str(data.get("msgtype") or "m.text"),
            username=data.get("username"), avatar_url=data.get("avatar_url"),
        )


class PayloadError(ValueError):
    """The request body cannot become a message; ``code`` and the message go back to the sender."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


def render_markdown(source: str) -> str:
    """Markdown -> Matrix HTML (rendered without raw HTML, then sanitised for links and images)."""
    return sanitize_html(_MARKDOWN.render(source)).strip()


def parse_body(content_type: str, body: bytes) -> dict[str, Any]:
    """The request's fields. JSON must be an object; ``text/*`` becomes ``{"text": body}``."""
    media_type = content_type.split(";", 1)[0].strip().lower()
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise PayloadError("bad_encoding", "the body must be UTF-8") from None
    looks_json = not media_type and text.lstrip()[:1] == "{"
    if media_type == "application/json" or media_type.endswith("+json") or looks_json:
        return _json_object(text)
    if media_type == "application/x-www-form-urlencoded":
        fields = dict(parse_qsl(text, keep_blank_values=True))
        payload = fields.get("payload")
        return _json_object(payload) if payload is not None else dict(fields)
    if media_type.startswith("text/") or not media_type:
        return {"text": text}
    raise PayloadError(
        "unsupported_media_type",
        f"cannot read a {media_type} body: send application/json, application/x-www-form-urlencoded, "
        "multipart/form-data or text/plain",
        status=415,
    )


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise PayloadError("bad_json", f"the body is not valid JSON: {error}") from None
    if not isinstance(value, dict):
        raise PayloadError("bad_json", f"the JSON body must be an object, not {type(value).__name__}")
    return value


def _optional_str(fields: Mapping[str, Any], *keys: str) -> str | None:
    for key in keys:
        value = fields.get(key)
        if value is None or value == "":
            continue
        if not isinstance(value, str):
            raise PayloadError("bad_field", f"{key} must be a string")
        return value
    return None


def _name(fields: Mapping[str, Any]) -> str | None:
    name = _optional_str(fields, "username", "displayName", "display_name")
    if name is None:
        return None
    name = " ".join(name.split())  # no newlines or runs of spaces in a display name
    return name[:MAX_NAME_LENGTH] or None


def normalise_msgtype(value: object) -> str:
    """``text``/``notice``/``emote`` (or their ``m.`` forms) -> the Matrix msgtype."""
    if value is None or value == "":
        return "m.text"
    if isinstance(value, str):
        short = value.strip().lower().removeprefix("m.")
        if short in MSGTYPES:
            return MSGTYPES[short]
    raise PayloadError("bad_msgtype", f"msgtype must be text, notice or emote, not {value!r}")


def to_message(fields: Mapping[str, Any], *, github_event: str | None = None) -> HookMessage | None:
    """The message a request asks for; None when it asks for nothing to be posted (GitHub ping).

    Raises PayloadError when the fields are wrong or there is nothing to post.
    """
    if github_event:
        rendered = render_github(github_event, fields)
        if rendered is None:
            return None
        return HookMessage(text=rendered[0], html=sanitize_html(rendered[1]), msgtype="m.notice")
    msgtype = normalise_msgtype(fields.get("msgtype"))
    username = _name(fields)
    avatar = _optional_str(fields, "avatar_url", "icon_url", "avatarUrl")
    text = _optional_str(fields, "text")
    given_html = _optional_str(fields, "html")
    markdown = _optional_str(fields, "markdown")
    if given_html is not None:
        cleaned = sanitize_html(given_html)
        body = text or html_to_text(cleaned)
        formatted: str | None = cleaned
    elif markdown is not None:
        body, formatted = markdown, render_markdown(markdown)
    elif looks_like_slack(fields):
        body, formatted = render_slack(fields)
    elif text is not None:
        body, formatted = text, None
    else:
        body, formatted = "", None
    if not body.strip():
        raise PayloadError("empty_message", "nothing to post: send text, html, markdown or Slack attachments")
    return HookMessage(text=body, html=formatted or None, msgtype=msgtype, username=username, avatar_url=avatar)


def bot_style(message: HookMessage, fallback_name: str) -> tuple[str, str]:
    """(body, html) as the bridge bot posts it: ``**name**: text``."""
    name = message.username or fallback_name
    formatted = message.html if message.html is not None else html.escape(message.text).replace("\n", "<br>")
    if message.msgtype == "m.emote":
        return f"* {name} {message.text}", f"* <strong>{html.escape(name)}</strong> {formatted}"
    return f"{name}: {message.text}", f"<strong>{html.escape(name)}</strong>: {formatted}"


__all__ = ["HookMessage", "PayloadError", "bot_style", "parse_body", "render_markdown", "to_message"]
