"""docs/architecture.md draws the path of a message each way: every module it names there exists
under that name (a renamed or split module makes the drawing lie)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _diagram() -> str:
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    start = text.index("```\nMatrix -> remote")
    return text[start:text.index("```", start + 3)]


def test_the_message_paths_name_modules_that_exist() -> None:
    diagram = _diagram()
    assert "Remote -> Matrix" in diagram
    modules = set(re.findall(r"[a-z_]+(?:/[a-z_]+)*\.py", diagram))
    assert {"core/remote_to_matrix.py", "core/matrix_to_remote.py", "store/outbox.py"} <= modules
    missing = sorted(module for module in modules if not (ROOT / "bridgekit" / module).is_file())
    assert missing == []
