"""bridgekit's pytest plugin loads in every pytest run where bridgekit is installed: loading it
costs nothing beyond bridgekit itself, and without the ``testing`` extra its fixtures skip,
saying what to install (instead of failing on an import)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

PLUGIN = "bridgekit.testing.pytest_plugin"


def test_loading_the_plugin_imports_nothing_but_itself() -> None:
    # What pytest has loaded already when it loads the entry point: pytest, its asyncio plugin,
    # and bridgekit (the package the plugin is in).
    probe = textwrap.dedent(f"""
        import sys, pytest, pytest_asyncio, bridgekit
        before = set(sys.modules)
        import {PLUGIN}
        print(" ".join(sorted(set(sys.modules) - before)))
    """)
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.split() == ["bridgekit.testing", PLUGIN]


def run_pytest(folder: Path, *options: str) -> str:
    """pytest on ``folder`` in a process of its own; no conftest names the plugin: the entry point
    loads it. Returns the output, once the run passed."""
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-rs", "-p", "no:cacheprovider", *options, str(folder)],
        capture_output=True, text=True, timeout=120, cwd=folder, env=env, check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:]
    return done.stdout


def test_without_synapse_the_fixtures_skip_and_say_what_to_install(tmp_path: Path) -> None:
    # sys.modules[name] = None makes the module unfindable, as if it were not installed.
    (tmp_path / "conftest.py").write_text("import sys\nsys.modules['synapse'] = None\n")
    (tmp_path / "test_needs_synapse.py").write_text(
        "def test_uses_the_homeserver(synapse):\n    raise AssertionError('must not run')\n"
        "def test_uses_a_bridge(run_bridge):\n    raise AssertionError('must not run')\n"
    )
    output = run_pytest(tmp_path)
    assert "2 skipped" in output, output[-3000:]
    assert "bridgekit's test fixtures need matrix-synapse: pip install 'bridgekit[testing]'" in output


def test_without_pytest_asyncio_the_fixtures_skip_too(tmp_path: Path) -> None:
    (tmp_path / "test_needs_a_loop.py").write_text(
        "def test_uses_chatnet(chatnet):\n    raise AssertionError('must not run')\n"
    )
    output = run_pytest(tmp_path, "-p", "no:asyncio")
    assert "1 skipped" in output, output[-3000:]
    assert "need pytest-asyncio (turned off with -p no:asyncio)" in output
