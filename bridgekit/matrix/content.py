"""Building message content: pure functions, so the rules are read and tested without I/O.

Every message carries ``m.mentions`` (spec v1.7 intentional mentions): an empty object when it
mentions nobody, so clients notify only the users the bridge names and never guess from the body
text (an IRC line that happens to contain a Matrix user's display name must not ping them).
Replies carry no fallback quote: spec v1.13 removed it.
"""

from __future__ import annotations

from collections.abc import Iterable

from bridgekit.events import JSONDict
from bridgekit.ids import EventID, UserID


def mentions(user_ids: Iterable[UserID] = (), *, room: bool = False) -> JSONDict:
    """The ``m.mentions`` object: the given users (deduplicated, in order) and the room flag."""
    result: JSONDict = {}
    unique = list(dict.fromkeys(user_ids))
    if unique:
        result["user_ids"] = unique
    if room:
        result["room"] = True
    return result


def text_content(
    body: str,
    *,
    html: str | None = None,
    msgtype: str = "m.text",
    mentioned: Iterable[UserID] = (),
    mention_room: bool = False,
    reply_to: EventID | None = None,
) -> JSONDict:
    """The content of an ``m.room.message`` text event (m.text, m.notice, m.emote)."""
    content: JSONDict = {"msgtype": msgtype, "body": body}
    if html is not None:
        content["format"] = "org.matrix.custom.html"
        content["formatted_body"] = html
    content["m.mentions"] = mentions(mentioned, room=mention_room)
    if reply_to is not None:
        content["m.relates_to"] = {"m.in_reply_to": {"event_id": reply_to}}
    return content


def edit_content(original: EventID, body: str, *, html: str | None = None, msgtype: str = "m.text") -> JSONDict:
    """An edit (``m.replace``) of ``original``: clients show ``m.new_content``; the outer body,
    starred, is the fallback for clients that do not know edits."""
    new_content = text_content(body, html=html, msgtype=msgtype)
    content = text_content(f"* {body}", html=f"* {html}" if html is not None else None, msgtype=msgtype)
    content["m.new_content"] = new_content
    content["m.relates_to"] = {"rel_type": "m.replace", "event_id": original}
    return content


def reaction_content(target: EventID, key: str) -> JSONDict:
    """An ``m.reaction`` (annotation) of ``target`` with ``key`` (usually an emoji)."""
    return {"m.relates_to": {"rel_type": "m.annotation", "event_id": target, "key": key}}


__all__ = ["edit_content", "mentions", "reaction_content", "text_content"]
