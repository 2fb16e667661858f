"""``bridgekit run`` goes on under ``python -OO`` when the optimised bytecode is there
(``bridgekit_launch.py``); every other command, and an admin's own ``PYTHONOPTIMIZE``, run as
started. A bridge under ``-OO`` holds about 4 MB less at rest (bench/idle.py)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from bridgekit_launch import optimized_argv, optimized_bytecode_ready

SCRIPT = __file__  # any file that exists stands for the console script


def decide(argv: list[str], *, optimize: int = 0, environ: dict[str, str] | None = None,
           ready: bool = True) -> list[str] | None:
    return optimized_argv(argv, optimize=optimize, environ=environ or {}, executable="/venv/bin/python",
                          bytecode_ready=lambda: ready)


def test_run_is_started_again_under_minus_oo_with_the_same_arguments() -> None:
    argv = [SCRIPT, "run", "-c", "/etc/bridgekit/config.yaml"]
    assert decide(argv) == ["/venv/bin/python", "-OO", *argv]


@pytest.mark.parametrize("argv", [
    [SCRIPT, "generate-config"],  # reads the config models' docstrings
    [SCRIPT, "doctor", "-c", "x.yaml"],
    [SCRIPT, "--help"],
    [SCRIPT],
])
def test_other_commands_run_where_they_were_started(argv: list[str]) -> None:
    assert decide(argv) is None


def test_an_interpreter_already_optimised_is_not_started_again() -> None:
    assert decide([SCRIPT, "run"], optimize=2) is None


@pytest.mark.parametrize("value", ["0", "1", "2", ""])
def test_an_admins_pythonoptimize_decides(value: str) -> None:
    assert decide([SCRIPT, "run"], environ={"PYTHONOPTIMIZE": value}) is None


def test_without_the_optimised_bytecode_run_stays_as_started() -> None:
    """Every module would be compiled from source at each start: slower, and bigger."""
    assert decide([SCRIPT, "run"], ready=False) is None


def test_without_a_script_to_start_again_run_stays_as_started() -> None:
    assert decide(["-c", "run"]) is None
    assert decide(["", "run"]) is None


def test_the_bytecode_check_looks_for_each_modules_opt2_file(tmp_path: Path) -> None:
    package = tmp_path / "launchprobe"
    (package / "__pycache__").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    code = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(tmp_path)!r})
        from bridgekit_launch import optimized_bytecode_ready
        print(optimized_bytecode_ready(["launchprobe"]), optimized_bytecode_ready(["no_such_module_here"]))
    """)
    before = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    subprocess.run([sys.executable, "-OO", "-m", "compileall", "-q", str(package)], check=True)
    after = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert before == ["False", "False"]
    assert after == ["True", "False"]
    assert optimized_bytecode_ready(["sys"]) is False  # built in: no source, no bytecode file
