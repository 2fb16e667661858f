"""``logging.format: json``: one JSON object per line, with the IDs given as ``extra=``."""

from __future__ import annotations

import json
import logging
import sys

import pytest
from pydantic import ValidationError

from bridgekit.config_sections import LoggingConfig
from bridgekit.log_format import JsonFormatter, formatter


def record(**extra: object) -> logging.LogRecord:
    return logging.getLogger("bridgekit.core.inbox").makeRecord(
        "bridgekit.core.inbox", logging.ERROR, __file__, 1, "giving up on inbox row %d", (7,), None, extra=extra)


def test_a_record_is_one_json_line_with_its_ids() -> None:
    line = JsonFormatter().format(record(event_id="$e1", remote_id="m1", row_id=7, missing=None))
    assert "\n" not in line
    parsed = json.loads(line)
    assert parsed["message"] == "giving up on inbox row 7"
    assert (parsed["level"], parsed["logger"]) == ("ERROR", "bridgekit.core.inbox")
    assert (parsed["event_id"], parsed["remote_id"], parsed["row_id"]) == ("$e1", "m1", 7)
    assert "missing" not in parsed  # None says nothing
    assert not {"args", "msg", "levelno"} & set(parsed)  # the standard attributes are not repeated
    assert parsed["ts"].endswith("Z")


def test_an_exception_is_kept_in_the_record() -> None:
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        made = record()
        made.exc_info = sys.exc_info()
    parsed = json.loads(JsonFormatter().format(made))
    assert "RuntimeError: boom" in parsed["exception"]


def test_the_config_chooses_text_or_json() -> None:
    assert LoggingConfig().format == "text"
    assert isinstance(formatter(LoggingConfig(format="json").format), JsonFormatter)
    assert not isinstance(formatter("text"), JsonFormatter)
    with pytest.raises(ValidationError):
        LoggingConfig.model_validate({"format": "xml"})
