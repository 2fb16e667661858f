"""Child processes of the demo and of the test harness: spawn with output to a log file, stop by
PID (SIGTERM, then SIGKILL after a deadline), and the tail of a log for error messages.

The test harness ties each child to its runner (``die_with_parent``: the kernel sends the child
SIGTERM when the runner dies, so no server outlives a test session); the demo does not, because
its servers keep running after ``scripts/demo`` returns, until ``scripts/demo --stop``.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    # Runs in the child between fork and exec.
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def spawn(
    argv: list[str],
    *,
    log_path: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    die_with_parent: bool = True,
) -> subprocess.Popen[bytes]:
    """Start ``argv`` with stdout and stderr appended to ``log_path``."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        return subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            # Its own session: a Ctrl-C in the terminal reaches the parent only, and the parent
            # stops the child by PID in an orderly way.
            start_new_session=True,
            preexec_fn=_die_with_parent if die_with_parent else None,
        )


def terminate(proc: subprocess.Popen[bytes], deadline_s: float = 15.0) -> int:
    """SIGTERM by PID, SIGKILL if it is still alive after ``deadline_s``; returns the exit code."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGTERM)
        try:
            return proc.wait(timeout=deadline_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)
    return proc.wait()


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return False
    # The state is the field after the command name, which is in parentheses and may hold spaces.
    return stat.rpartition(")")[2].split()[0] != "Z"


def pid_command_line(pid: int) -> list[str]:
    """The argv of ``pid`` (empty if it is gone)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def terminate_pid(pid: int, deadline_s: float = 15.0) -> bool:
    """Stop a process that is not our child (started by an earlier run): SIGTERM, SIGKILL after
    ``deadline_s``; True once it is gone. The caller checks the PID is still the process it
    recorded (:func:`pid_command_line`): PIDs are reused."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    # Not our child, so it cannot be waited for: poll /proc until it is gone.
    end = time.monotonic() + deadline_s
    while pid_alive(pid) and time.monotonic() < end:
        time.sleep(0.05)
    if pid_alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        end = time.monotonic() + 5.0
        while pid_alive(pid) and time.monotonic() < end:
            time.sleep(0.05)
    return not pid_alive(pid)


def log_tail(path: Path, lines: int = 60) -> str:
    """The last ``lines`` lines of a log file, for failure messages."""
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:])


def bridge_environment() -> dict[str, str]:
    """Our environment without BRIDGEKIT_* variables: they would override the bridge's config keys
    and tokens."""
    return {k: v for k, v in os.environ.items() if not k.startswith("BRIDGEKIT_")}


def bridgekit_command() -> list[str]:
    """This venv's ``bridgekit`` console script, or the same entry point through this Python."""
    script = Path(sys.executable).with_name("bridgekit")
    if script.exists():
        return [str(script)]
    # bridgekit.cli has no __main__ guard, so `python -m bridgekit.cli` would do nothing.
    return [sys.executable, "-c", "import sys; from bridgekit.cli import main; sys.exit(main())"]
