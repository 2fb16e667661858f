"""Log records as one JSON object per line (``logging.format: json``), for log collectors.

Each line has the time (UTC, ISO 8601 with milliseconds), the level, the logger, the message and,
when the code that logged had them, the IDs of what it was about: ``event_id`` (Matrix),
``remote_id`` (the remote network's message, or the idempotency key of a remote event),
``room_id``, ``network``, ``row_id``... Those come from ``extra=`` on the log call: every
attribute a record has beyond the standard ones is written, so a new ID needs no change here.
"""

from __future__ import annotations

import datetime
import json
import logging
from typing import Any

_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}
"""The attributes every record has: not written again under their own names."""


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        when = datetime.datetime.fromtimestamp(record.created, datetime.UTC)
        line: dict[str, Any] = {
            "ts": when.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and value is not None:
                line[key] = value if isinstance(value, str | int | float | bool) else str(value)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def formatter(kind: str) -> logging.Formatter:
    """The formatter of ``logging.format``: ``text`` (one readable line) or ``json``."""
    return JsonFormatter() if kind == "json" else logging.Formatter(TEXT_FORMAT)


__all__ = ["TEXT_FORMAT", "JsonFormatter", "formatter"]
