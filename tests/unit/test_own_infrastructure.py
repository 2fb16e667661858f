"""Storage and posting belong to the framework, checked on the source (like test_layering.py).

- Only ``bridgekit/store/`` opens databases: nowhere else ``create_engine``,
  ``create_async_engine`` or ``sqlite3``, and no write lock of its own (an ``asyncio.Lock`` in a
  module that uses SQLAlchemy: the store's single writer already serialises writes).
- Only ``bridgekit/core/`` posts messages into rooms (ordered, durable, retried: ``ctx.emit``): a
  bridge sends the bridge bot's notices at most (``send_text(..., msgtype="m.notice")``), never
  ``send_message``, so it cannot grow a posting queue of its own.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STORE = ROOT / "bridgekit" / "store"
SOURCES = sorted([*(ROOT / "bridgekit").rglob("*.py"), *(ROOT / "bridges").rglob("*.py")])
ENGINES = {"create_engine", "create_async_engine"}


def names_used(tree: ast.AST) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module.split(".")[0])
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.Name):
            found.add(node.id)
        elif isinstance(node, ast.Attribute):
            found.add(node.attr)
    return found


def creates_lock(tree: ast.AST) -> bool:
    return any(
        isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "Lock"
        and isinstance(node.func.value, ast.Name) and node.func.value.id == "asyncio"
        for node in ast.walk(tree)
    )


def outside_store() -> list[Path]:
    return [path for path in SOURCES if STORE not in path.parents]


@pytest.mark.parametrize("path", outside_store(), ids=lambda p: str(p.relative_to(ROOT)))
def test_only_the_store_opens_databases_and_serialises_writes(path: Path) -> None:
    tree = ast.parse(path.read_text(), filename=str(path))
    used = names_used(tree)
    assert not used & ENGINES, f"{path}: only bridgekit/store/ creates engines (use ctx.database)"
    assert "sqlite3" not in used, f"{path}: only bridgekit/store/ opens SQLite files (read_sqlite_file)"
    if "sqlalchemy" in used:
        assert not creates_lock(tree), f"{path}: a write lock beside database code; the store serialises writes"


def posts(tree: ast.AST) -> list[ast.Call]:
    return [
        node for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
        and node.func.attr in ("send_text", "send_message")
    ]


def is_notice(call: ast.Call) -> bool:
    if not isinstance(call.func, ast.Attribute) or call.func.attr != "send_text":
        return False
    return any(keyword.arg == "msgtype" and isinstance(keyword.value, ast.Constant)
               and keyword.value.value == "m.notice" for keyword in call.keywords)


@pytest.mark.parametrize("path", sorted((ROOT / "bridges").rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT)))
def test_bridges_post_only_notices_themselves(path: Path) -> None:
    tree = ast.parse(path.read_text(), filename=str(path))
    for call in posts(tree):
        assert is_notice(call), f"{path}:{call.lineno}: messages go into rooms through ctx.emit (the core's queue)"


def test_the_checks_see_what_they_forbid() -> None:
    old_store = ast.parse("import asyncio\nfrom sqlalchemy.ext.asyncio import create_async_engine\n"
                          "lock = asyncio.Lock()\n")
    assert names_used(old_store) & ENGINES
    assert creates_lock(old_store)
    [message] = posts(ast.parse("await bot.send_text(room, text, html=html, txn_id=t)"))
    assert not is_notice(message)
    [notice] = posts(ast.parse("await bot.send_text(room, text, msgtype='m.notice', txn_id=t)"))
    assert is_notice(notice)
