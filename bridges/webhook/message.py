"""What one inbound webhook request asks to post: the value translation produces and delivery uses."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

MSGTYPES = {"text": "m.text", "notice": "m.notice", "emote": "m.emote"}


@dataclass(frozen=True)
class HookMessage:
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


def normalise_msgtype(value: object) -> str:
    """``text``/``notice``/``emote`` (or their ``m.`` forms) -> the Matrix msgtype."""
    if value is None or value == "":
        return "m.text"
    if isinstance(value, str):
        short = value.strip().lower().removeprefix("m.")
        if short in MSGTYPES:
            return MSGTYPES[short]
    raise PayloadError("bad_msgtype", f"msgtype must be text, notice or emote, not {value!r}")


__all__ = ["MSGTYPES", "HookMessage", "PayloadError", "normalise_msgtype"]
