"""``bridgekit.__all__`` is honest: everything listed exists, everything public is listed."""

from __future__ import annotations

import types

import bridgekit


def test_every_name_in_all_exists() -> None:
    missing = [name for name in bridgekit.__all__ if not hasattr(bridgekit, name)]
    assert missing == []


def test_every_public_name_is_in_all() -> None:
    public = {
        name for name, value in vars(bridgekit).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert public - set(bridgekit.__all__) == set()


def test_all_is_sorted_and_unique() -> None:
    names = [name for name in bridgekit.__all__ if name != "__version__"]
    assert names == sorted(set(names))
