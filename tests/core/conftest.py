"""Fixtures of the middle layer's fast tests: the wired core of ``wiring.py``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.core.wiring import Middle, middle


@pytest.fixture
async def core(tmp_path: Path) -> AsyncIterator[Middle]:
    """The core with a relay-only network (no virtual users)."""
    async with middle(tmp_path) as wired:
        yield wired
