"""``scripts/demo``'s Python entry (``python -m bridgekit.demo``), run as a newcomer runs it: it
starts its own Synapse, IRC server and bridge, proves the three round trips, finds them running on
a second start, and ``--stop`` leaves none of the processes it started (checked by PID); started
again after that, it comes back on the same state."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest

from bridgekit.demo.ircd_config import find_binary
from bridgekit.demo.processes import pid_alive, terminate_pid

pytestmark = pytest.mark.integration

DEMO_DEADLINE_S = 150.0


async def run_demo(state_dir: Path, *args: str) -> tuple[int | None, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bridgekit.demo", "--state-dir", str(state_dir), *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    try:
        output, _ = await asyncio.wait_for(process.communicate(), DEMO_DEADLINE_S)
    except TimeoutError:
        process.kill()
        output, _ = await process.communicate()
    return process.returncode, output.decode()


def recorded_pids(state_dir: Path) -> dict[str, int]:
    pids: dict[str, int] = json.loads((state_dir / "state.json").read_text())["pids"]
    return pids


@pytest.mark.skipif(find_binary("inspircd") is None and find_binary("ngircd") is None,
                    reason="the demo needs InspIRCd or ngIRCd: apt-get install --no-install-recommends inspircd")
async def test_the_demo_proves_three_round_trips_reuses_what_runs_stops_all_and_comes_back(tmp_path: Path) -> None:
    state_dir = tmp_path / "demo"
    started: dict[str, int] = {}
    try:
        code, first = await run_demo(state_dir)
        if (state_dir / "state.json").exists():
            started = recorded_pids(state_dir)
        assert code == 0, first
        assert set(started) == {"synapse", "ircd", "bridge"}, first
        for trip, seen in (
            ("Matrix -> IRC: OK", "saw in #demo: <demo[m]> hello IRC, this is Matrix"),
            ("IRC -> Matrix: OK", "saw: @_irc_demo_visitor"),
            ("webhook -> Matrix: OK", "saw: @bridgebot:demo.localhost: curl: hello Matrix, this is a webhook"),
        ):
            assert trip in first, first
            assert seen in first, first
        for how_to_connect in ("password", "curl -H", "/join #demo"):
            assert how_to_connect in first, first

        code, second = await run_demo(state_dir)
        assert code == 0, second
        assert second.count("already running") == 3, second
        assert "already linked" in second, second
        assert "already made" in second, second
        assert recorded_pids(state_dir) == started  # nothing was started twice

        code, stopped = await run_demo(state_dir, "--stop")
        assert code == 0, stopped
        for name, pid in started.items():
            assert f"{name}: stopped PID {pid}" in stopped, stopped
            assert not pid_alive(pid), f"{name} (PID {pid}) is still running after --stop"
        assert recorded_pids(state_dir) == {}

        # Started again after --stop: the same state (user, portal, hook), new processes.
        code, again = await run_demo(state_dir)
        if (state_dir / "state.json").exists():
            started = recorded_pids(state_dir)
        assert code == 0, again
        assert again.count(" started ") == 3, again
        assert "already running" not in again, again
        assert "logged in" in again, again
        assert "already linked" in again, again
        assert again.count(": OK") == 3, again
        code, stopped = await run_demo(state_dir, "--stop")
        assert code == 0, stopped
        assert not any(pid_alive(pid) for pid in started.values()), stopped
    finally:
        for pid in started.values():  # whatever went wrong above, nothing the demo started stays
            if pid_alive(pid):
                terminate_pid(pid)
