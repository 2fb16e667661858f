"""Small modules: no file of the framework is over 450 lines (issue 11), read from the tree.

A module that grows past the limit holds more than one concept; split it along them (and keep
the old import path working) rather than raise the limit.
"""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FRAMEWORK = ROOT / "bridgekit"
MAX_LINES = 450

# The contract is documentation as much as code: its docstrings are the connector author's manual.
EXCEPTED = frozenset({"connector.py"})

# Files other branches of issue 11 are splitting. Temporary: the lead empties this set when
# those branches are merged (the test then holds them to the limit like every other file).
SPLIT_ELSEWHERE: frozenset[str] = frozenset()

FRAMEWORK_FILES = sorted(FRAMEWORK.rglob("*.py"))


def relative(path: Path) -> str:
    return path.relative_to(FRAMEWORK).as_posix()


def line_count(path: Path) -> int:
    with path.open(encoding="utf-8") as file:
        return sum(1 for _line in file)


def test_the_tree_is_read() -> None:
    # A wrong root would find no files and pass every check below.
    assert len(FRAMEWORK_FILES) > 50
    assert "core/transactions.py" in {relative(path) for path in FRAMEWORK_FILES}


@pytest.mark.parametrize("path", FRAMEWORK_FILES, ids=relative)
def test_no_framework_file_is_over_the_limit(path: Path) -> None:
    name = relative(path)
    if name in EXCEPTED or name in SPLIT_ELSEWHERE:
        pytest.skip(f"{name} is excepted (see the lists above)")
    lines = line_count(path)
    assert lines <= MAX_LINES, f"bridgekit/{name} has {lines} lines (at most {MAX_LINES}): split it along its concepts"


def test_every_listed_exception_exists() -> None:
    # A renamed or removed file must not stay listed (and silently excuse its successor's name).
    names = {relative(path) for path in FRAMEWORK_FILES}
    missing = (EXCEPTED | SPLIT_ELSEWHERE) - names
    assert not missing, f"listed but not in bridgekit/: {sorted(missing)}"
