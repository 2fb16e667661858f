"""``bridgekit-irc-keeper -c config.yaml``: which Redis a keeper serves, read from the bridge's
config (the same file the bridge reads)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridges.irc.keeper.__main__ import keeper_targets, main


def test_a_keeper_serves_the_redis_of_the_sections_naming_it() -> None:
    config = {"connectors": {
        "libera": {"factory": "irc", "keeper": {"redis_url": "redis://a/0"}},
        "oftc": {"factory": "irc", "keeper": {"redis_url": "redis://a/0", "keeper_id": "main"}},
        "other": {"factory": "irc", "keeper": {"redis_url": "redis://b/0", "keeper_id": "second"}},
        "plain": {"factory": "irc"},
        "hooks": {"factory": "webhook"},
    }}
    assert keeper_targets(config, "main") == {"redis://a/0"}
    assert keeper_targets(config, "second") == {"redis://b/0"}
    assert keeper_targets(config, "third") == set()


def test_a_keeper_of_a_group_serves_the_sections_naming_the_group() -> None:
    config = {"connectors": {
        "libera": {"factory": "irc", "keeper": {"redis_url": "redis://a/0", "group": "pool"}},
        "oftc": {"factory": "irc", "keeper": {"redis_url": "redis://b/0"}},
    }}
    assert keeper_targets(config, "k1", "pool") == {"redis://a/0"}
    assert keeper_targets(config, "main") == {"redis://b/0"}  # a lone keeper: not the group's network
    assert keeper_targets(config, "k1", "other") == set()


def test_a_keeper_id_that_could_be_taken_for_a_group_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--redis-url", "redis://a/0", "--keeper-id", "group:pool"]) == 2
    assert "may not start with 'group:'" in capsys.readouterr().err


def test_a_config_without_a_keeper_section_is_refused_with_the_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("connectors:\n  libera:\n    factory: irc\n    server: irc.example\n")
    assert main(["-c", str(config)]) == 2
    said = capsys.readouterr().err
    assert "keeper.redis_url" in said
