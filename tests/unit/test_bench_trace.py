"""The benchmark hook (``BRIDGEKIT_BENCH_TRACE``): the bridge's stamps as written, and as
``bench/bridge_trace.py`` pairs them into what the bridge adds to each message."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from bench import bridge_trace
from bridgekit import bench_trace

STAMP_SCRIPT = """
from bridgekit import bench_trace
assert bench_trace.enabled
bench_trace.record_transaction(b'{"events": [{"event_id": "$a"}, {"event_id": "$b"}, {"no": "id"}]}', 1000)
bench_trace.record_transaction(b'not json', 2000)
bench_trace.record("irc_out", "t1 0000 hello")
"""


def test_with_the_variable_set_the_bridge_appends_one_line_per_stamp(tmp_path: Path) -> None:
    trace = tmp_path / "trace.jsonl"
    done = subprocess.run([sys.executable, "-c", STAMP_SCRIPT], env={"BRIDGEKIT_BENCH_TRACE": str(trace)},
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in trace.read_text().splitlines()]
    assert [(r["stage"], r["key"]) for r in records] == [("matrix_in", "$a"), ("matrix_in", "$b"),
                                                          ("irc_out", "t1 0000 hello")]
    assert [r["ns"] for r in records[:2]] == [1000, 1000]  # the arrival's time, not the writing's
    assert records[2]["ns"] > 0


def test_without_it_nothing_is_recorded() -> None:
    assert not bench_trace.enabled  # the test runner does not set it
    bench_trace.record("irc_out", "anything")  # and this is a no-op, not an error


def write(path: Path, *records: tuple[str, str, int]) -> None:
    path.write_text("".join(json.dumps({"stage": s, "key": k, "ns": ns}) + "\n" for s, k, ns in records))


def test_stamps_pair_into_the_bridge_share_of_each_message(tmp_path: Path) -> None:
    trace = tmp_path / "trace.jsonl"
    write(trace,
          ("matrix_in", "$e0", 1_000_000), ("matrix_in", "$e1", 2_000_000), ("matrix_in", "$e2", 3_000_000),
          ("irc_out", "tg 0000 the quick", 3_500_000), ("irc_out", "tg 0001 brown", 4_000_000),
          ("irc_out", "tg 0000 the quick", 9_000_000),  # a line written again: the first one counts
          ("irc_out", "other 0002 fox", 5_000_000),  # another run's tag
          ("irc_in", "tg 0000 a", 10_000_000), ("matrix_send", "tg 0000 a", 17_000_000),
          ("irc_in", "tg 0001 b", 20_000_000))  # not sent to Matrix (yet)
    # $e2's line never came: left out (the benchmark counts it as missed).
    assert bridge_trace.matrix_to_irc_s(trace, "tg", ["$e0", "$e1", "$e2"]) == [0.0025, 0.002]
    assert bridge_trace.irc_to_matrix_s(trace, "tg") == [0.007]
    assert bridge_trace.matrix_to_irc_s(tmp_path / "missing.jsonl", "tg", ["$e0"]) == []
