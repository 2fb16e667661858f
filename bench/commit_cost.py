"""What a durable commit costs on this disk: the inbox's store of one transaction, in process.

    .venv/bin/python bench/commit_cost.py [--transactions N] [--events-per-txn 1,10] [--rounds R]

No HTTP, no parsing in the clock: :meth:`InboxStore.store_transaction` of pre-parsed transactions,
one after another (as Synapse sends them), on a fresh SQLite database under ``.bench/``, with
SQLite's ``synchronous`` at FULL (what bridgekit ships: the commit waits for the fsync of the WAL),
NORMAL (no fsync at commit: survives the process being killed, not power loss) and OFF. The rows
alternate between the settings round by round. What FULL costs over NORMAL is the fsync, which no
code change can remove while a 200 means "on disk"; ``bench/ingest.py`` compares the whole round
trip with mautrix, whose answer stores nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

_REPO = Path(__file__).resolve().parent.parent
# Run as a script, bench/ is first on sys.path and bench/irc.py would shadow the `irc` package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _REPO / "bench"]
if str(_REPO) not in sys.path:
    sys.path.insert(0, str(_REPO))

from bench.workload import TxnSource  # noqa: E402
from bridgekit.core.transactions import parse_transaction_body  # noqa: E402
from bridgekit.store import Database, engine  # noqa: E402
from bridgekit.store.inbox import InboxStore  # noqa: E402

SETTINGS = ("FULL", "NORMAL", "OFF")


async def one_round(workdir: Path, synchronous: str, events: int, count: int, source: TxnSource) -> tuple[float, float]:
    """p50 wall time and CPU time per transaction, in microseconds."""
    shipped = engine._SQLITE_PRAGMAS  # the benchmark varies exactly this setting
    varied: Any = tuple(
        f"PRAGMA synchronous={synchronous}" if "synchronous" in pragma else pragma for pragma in shipped)
    engine._SQLITE_PRAGMAS = varied
    directory = Path(tempfile.mkdtemp(dir=workdir))
    try:
        db = await Database.open(f"sqlite+aiosqlite:///{directory / 'inbox.db'}")
        try:
            store = InboxStore(db)
            parsed = [parse_transaction_body(source.txn(f"{synchronous}-{i}", events).body) for i in range(count)]
            walls: list[float] = []
            cpu_before = time.process_time()
            for n, transaction in enumerate(parsed):
                started = time.perf_counter()
                await store.store_transaction(f"{synchronous}-{n}", transaction.fingerprint, transaction.rows)
                walls.append(time.perf_counter() - started)
                # As when events are handled between transactions: progress rides along.
                store.record_handled(transaction.rows[0].queue_key, n + 1)
            cpu = time.process_time() - cpu_before
        finally:
            await db.close()
    finally:
        engine._SQLITE_PRAGMAS = shipped
        shutil.rmtree(directory, ignore_errors=True)
    return statistics.median(walls) * 1e6, cpu / count * 1e6


async def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--transactions", type=int, default=2000, help="per round (default 2000)")
    parser.add_argument("--events-per-txn", default="1,10", help="comma-separated sizes (default 1,10)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per setting; the median is shown (default 3)")
    args = parser.parse_args()
    sizes = [int(size) for size in args.events_per_txn.split(",")]
    workdir = _REPO / ".bench"
    workdir.mkdir(exist_ok=True)
    source = TxnSource()
    print(f"commit cost: {args.transactions} transactions per round, {args.rounds} rounds per setting, "
          f"SQLite {sqlite3.sqlite_version}, scratch under {workdir}")
    print(f"{'ev/txn':>6}  {'synchronous':<11} {'p50 us':>8} {'CPU us/txn':>11}   rounds (p50 us)")
    for events in sizes:
        results: dict[str, list[tuple[float, float]]] = {setting: [] for setting in SETTINGS}
        for _ in range(args.rounds):
            for setting in SETTINGS:
                results[setting].append(await one_round(workdir, setting, events, args.transactions, source))
        for setting in SETTINGS:
            walls = [wall for wall, _cpu in results[setting]]
            cpus = [cpu for _wall, cpu in results[setting]]
            print(f"{events:>6}  {setting:<11} {statistics.median(walls):>8.0f} {statistics.median(cpus):>11.0f}   "
                  + " ".join(f"{wall:.0f}" for wall in walls))
    print("FULL is what bridgekit ships; FULL - NORMAL is the fsync each acknowledged transaction waits for.")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
