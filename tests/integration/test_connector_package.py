"""A connector package outside bridgekit's repository passes the conformance kit through the
pytest plugin, with no copied code: the tutorial's package (tests/data/tutorial_package: its
connector, its pyproject.toml and its own kit test, nothing else) is installed with
``bridgekit[testing]`` from this checkout into a fresh venv, and pytest runs the package's test
there. Nothing of this repository's tests/ is importable in that run: the fixtures come from the
plugin the entry point loads. About two minutes (installing Synapse into the venv is most of it)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
PACKAGE = REPO_ROOT / "tests" / "data" / "tutorial_package"
INSTALL_DEADLINE_S = 600
RUN_DEADLINE_S = 300


def run(argv: list[str | Path], *, cwd: Path, env: dict[str, str], deadline_s: float) -> str:
    done = subprocess.run(
        [str(a) for a in argv], capture_output=True, text=True, timeout=deadline_s, cwd=cwd, env=env, check=False
    )
    assert done.returncode == 0, f"{argv} failed:\n{done.stdout[-4000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def test_a_connector_package_passes_its_kit_test_in_a_fresh_venv(tmp_path: Path) -> None:
    package = tmp_path / "tutorial_package"  # a copy: building writes into the source tree
    shutil.copytree(PACKAGE, package, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "build"))
    assert sorted(p.name for p in package.iterdir()) == ["pyproject.toml", "test_tutorial_kit.py",
                                                         "tutorial_connector.py"]
    # The runner's environment without what would let the venv see this checkout or its settings.
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("BRIDGEKIT_", "PYTEST_", "VIRTUAL_ENV")) and k != "PYTHONPATH"}
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", venv], cwd=tmp_path, env=env, deadline_s=60)
    python = venv / "bin" / "python"
    # --no-compile: byte-compiling all of Synapse's dependencies was a third of the install.
    run([python, "-m", "pip", "install", "-q", "--no-compile", "--disable-pip-version-check",
         f"bridgekit[testing] @ {REPO_ROOT.as_uri()}", f"{package}[test]"],
        cwd=tmp_path, env=env, deadline_s=INSTALL_DEADLINE_S)

    output = run([python, "-m", "pytest", "-p", "no:cacheprovider", "-rs", "-v"],
                 cwd=package, env=env, deadline_s=RUN_DEADLINE_S)
    plugins = next(line for line in output.splitlines() if line.startswith("plugins:"))
    assert "bridgekit-0.1.0" in plugins  # loaded by its entry point
    assert "4 passed, 2 skipped" in output, output[-4000:]
    # The two skips are the network's, said by the kit: not a missing fixture or extra.
    assert "the network has no edits or deletions of its own" in output
    assert "cannot make the network refuse" in output
