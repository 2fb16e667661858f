"""``scripts/run`` on first use writes the config and stops with the edit to make: it must not go on
to write a registration for the example's ``localhost`` and serve it.

Run from a copy of the script in a temporary checkout: ``scripts/setup`` there is a stand-in (the
real one installs the venv; its own tests are the demo's), and ``.venv-runtime/bin/bridgekit`` is this
venv's console script, so the script runs exactly as it would in a checkout.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bridgekit.testing.bridge_process import bridgekit_command

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    shutil.copy2(REPO_ROOT / "scripts" / "run", scripts / "run")
    setup = scripts / "setup"
    setup.write_text("#!/usr/bin/env bash\ntouch setup-ran\n")
    setup.chmod(0o755)
    venv_bin = tmp_path / ".venv-runtime" / "bin"
    venv_bin.mkdir(parents=True)
    bridgekit = venv_bin / "bridgekit"
    command = bridgekit_command()
    if len(command) == 1:
        bridgekit.symlink_to(command[0])
    else:  # no console script beside this Python: the same entry point through it
        bridgekit.write_text(f"#!/usr/bin/env bash\nexec {sys.executable} -c "
                             "'import sys; from bridgekit.cli import main; sys.exit(main())' \"$@\"\n")
        bridgekit.chmod(0o755)
    return tmp_path


def test_a_first_run_writes_the_config_and_stops_with_the_edit_to_make(checkout: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BRIDGEKIT_")}
    done = subprocess.run([str(checkout / "scripts" / "run")], env=env, cwd=checkout / "scripts",
                          capture_output=True, text=True, timeout=60, check=False)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert (checkout / "setup-ran").exists()
    assert (checkout / "config.yaml").exists()
    assert not (checkout / "registration.yaml").exists()  # no registration for localhost
    assert "homeserver.url" in output  # the edit to make
    assert "homeserver.server_name" in output
    assert "again" in output.splitlines()[-1]
    assert "accepting transactions" not in output  # and it did not serve

