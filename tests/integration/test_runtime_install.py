"""``pip install .`` (what ``scripts/setup runtime`` and docs/admin.md do) installs the runtime
only: no homeserver, no test toolchain. Built from this checkout into a fresh venv (about a
minute), and the venv's distributions listed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
NOT_AT_RUNTIME = {"matrix-synapse", "mypy", "ruff", "pytest", "pytest-asyncio", "twisted"}


def run(*argv: str | Path) -> str:
    done = subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, f"{argv} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def test_the_runtime_install_has_no_synapse_and_no_test_tools(tmp_path: Path) -> None:
    venv = tmp_path / "runtime"
    run(sys.executable, "-m", "venv", venv)
    python = venv / "bin" / "python"
    run(python, "-m", "pip", "install", "-q", "--no-compile", "--disable-pip-version-check", REPO_ROOT)
    listed = json.loads(run(python, "-m", "pip", "list", "--format=json", "--disable-pip-version-check"))
    installed = {item["name"].lower().replace("_", "-") for item in listed}
    assert "bridgekit" in installed
    assert {"fastapi", "sqlalchemy", "irc"} <= installed  # the listing is real: the runtime is in it
    assert installed & NOT_AT_RUNTIME == set(), sorted(installed)
    # And it runs: the console script answers.
    assert "generate-config" in run(venv / "bin" / "bridgekit", "--help")
