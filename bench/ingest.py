"""Ingest benchmark: how fast a bridge durably accepts homeserver transactions.

    .venv/bin/python bench/ingest.py [--quick] [--events-per-txn 1,10,100] [--only NAME] [--json]

Every contender gets the same pre-serialised transactions of ``m.room.message`` events (see
:mod:`bench.workload`) in each transaction shape (1, 10 and 100 events per transaction by default:
homeservers send small transactions when traffic is light) and two modes: "sequential", one sender
that PUTs the next transaction only after the previous 200, as Synapse does; and "4 senders", four
connections each PUTting their own txnId sequence at once. Each shape and mode is measured in
rounds of a fixed duration (5 s, ``--quick`` 1 s), at least 5 of them, interleaved across the
contenders. Reported per contender, shape and mode: the median round's durable events/s (events
acknowledged over wall time) with the range and the best round, transaction latency p50/p95/max,
how many answers were 200, and the CPU the server and the load generator used (one core = 100 %),
so a reader sees who was the bottleneck.

Contenders: bridgekit (``bridgekit run``, no connectors) on SQLite and on PostgreSQL, each
acknowledging only after a commit; mautrix-python's AppService (answers before storing anything);
and, on request, a bare FastAPI + sqlite3 yardstick. Before them the load generator is aimed at a
null server, to print its own ceiling. bridgekit's start-up is timed from spawn to the first 200
on a real transaction, with 10,000 portals and 10,000 ghosts already in its database.

Everything binds 127.0.0.1; every process started here is stopped by its PID, also on errors;
temporary files (databases, configs with tokens) live under ``.bench/`` and are removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import secrets
import shutil
import signal
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

# Run as a script, Python puts bench/ (not the repository) on sys.path; the benchmark's modules
# and the tests' helpers are imported as packages from the repository root.
_REPO = Path(__file__).resolve().parent.parent
if str(_REPO) not in sys.path:
    sys.path.insert(0, str(_REPO))

from bench import wire  # noqa: E402
from bench.contenders import (  # noqa: E402
    BridgekitContender,
    Contender,
    MautrixContender,
    NullContender,
    ReferenceContender,
    ServerProcess,
    Skip,
    StubHomeserver,
    Tokens,
    process_cpu_seconds,
    wait_quiet,
)
from bench.workload import Round, Txn, TxnSource  # noqa: E402

SEQUENTIAL = "sequential"
CONCURRENT = "4 senders"

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

TARGET_SQLITE_EVENTS_PER_S = 8_000  # at 100 events per transaction
TARGET_P50_MS = 15.0  # sequential, 100 events per transaction
TARGET_STARTUP_S = 2.0
# Durable bridgekit over mautrix (which stores nothing), per transaction shape: small transactions
# are dominated by the fixed cost per transaction (one commit each), large ones gain from batching.
TARGET_RATIO_SMALL = 1.0  # 1 and 10 events per transaction
TARGET_RATIO_LARGE = 1.5  # 100 or more
LARGE_TXN = 100

DEFAULT_SHAPES = (1, 10, 100)
MIN_ROUNDS = 5
ROUND_S = 5.0
QUICK_ROUND_S = 1.0
WARMUP_S = 1.0
# Rounds run for a fixed time from transactions made before the clock starts; how many to make is
# estimated from the fastest rate seen so far (at first a guess per shape), with this margin. A
# round that runs out before its time is flagged "short" and the estimate grows.
POOL_MARGIN = 2.0


def target_ratio(events_per_txn: int) -> float:
    return TARGET_RATIO_LARGE if events_per_txn >= LARGE_TXN else TARGET_RATIO_SMALL


def first_guess_txns_per_s(events_per_txn: int) -> float:
    """A generous guess of a contender's transactions/s before any was measured (0.3 ms fixed +
    0.03 ms per event), so the first pool is big enough."""
    return 1000 / (0.3 + 0.03 * events_per_txn)

STARTUP_DEADLINE_S = 60.0
MODE_DEADLINE_S = 600.0
# Consecutive transport errors after which a sender gives up: the server is gone, not slow.
MAX_CONSECUTIVE_ERRORS = 5
# Before each measurement every server must go quiet: see Session.settle (contenders.wait_quiet).
# Other processes' CPU (% of one core) above which a result is flagged as disturbed.
BUSY_MACHINE_PCT = 25


class ContenderFailed(Exception):
    """The contender did not start or stopped answering; the message says what was seen."""


@dataclass(slots=True)
class ModeResult:
    contender: str
    mode: str
    round: int
    events_per_txn: int
    senders: int
    txns: int  # transactions sent (and answered or failed)
    ok: int
    events_acked: int
    wall_s: float
    events_per_s: float
    p50_ms: float
    p95_ms: float
    max_ms: float
    server_cpu_pct: float | None
    client_cpu_pct: float
    # CPU used by everything else on the machine meanwhile: a busy neighbour skews the numbers.
    other_cpu_pct: float | None
    # The senders ran out of prepared transactions before the round's time was up.
    short: bool = False
    failures: list[str] = field(default_factory=list)

    @property
    def all_ok(self) -> bool:
        return self.ok == self.txns

    @property
    def txns_per_s(self) -> float:
        return self.txns / self.wall_s if self.wall_s else math.nan


@dataclass(slots=True)
class Summary:
    """One contender's rounds of one shape and mode: the median round, its range and the best."""

    contender: str
    events_per_txn: int
    mode: str
    senders: int
    rounds: int
    events_per_s: float  # median over the rounds
    min_events_per_s: float
    max_events_per_s: float
    txns_per_s: float  # median
    p50_ms: float  # medians of the rounds' percentiles
    p95_ms: float
    max_ms: float  # the largest of any round
    ok: int  # over all rounds
    txns: int
    server_cpu_pct: float | None  # medians
    client_cpu_pct: float
    other_cpu_pct: float | None
    short_rounds: int
    round_rates: list[float]

    @classmethod
    def of(cls, rounds: list[ModeResult]) -> Summary:
        rates = [r.events_per_s for r in rounds]
        first = rounds[0]

        def med(values: list[float | None]) -> float | None:
            known = [v for v in values if v is not None]
            return statistics.median(known) if known else None

        return cls(
            contender=first.contender, events_per_txn=first.events_per_txn, mode=first.mode,
            senders=first.senders, rounds=len(rounds), events_per_s=statistics.median(rates),
            min_events_per_s=min(rates), max_events_per_s=max(rates),
            txns_per_s=statistics.median(r.txns_per_s for r in rounds),
            p50_ms=statistics.median(r.p50_ms for r in rounds),
            p95_ms=statistics.median(r.p95_ms for r in rounds),
            max_ms=max(r.max_ms for r in rounds),
            ok=sum(r.ok for r in rounds), txns=sum(r.txns for r in rounds),
            server_cpu_pct=med([r.server_cpu_pct for r in rounds]),
            client_cpu_pct=statistics.median(r.client_cpu_pct for r in rounds),
            other_cpu_pct=med([r.other_cpu_pct for r in rounds]),
            short_rounds=sum(r.short for r in rounds), round_rates=rates,
        )


@dataclass(slots=True)
class ContenderReport:
    name: str
    summaries: list[Summary] = field(default_factory=list)  # per shape and mode, after the run
    all_rounds: list[ModeResult] = field(default_factory=list)
    startup_s: float | None = None
    notes: list[str] = field(default_factory=list)
    events_acked: int = 0
    stored: int | None = None
    error: str | None = None

    def summary(self, events_per_txn: int, mode: str) -> Summary | None:
        return next((m for m in self.summaries
                     if m.events_per_txn == events_per_txn and m.mode == mode), None)

    def rounds_of(self, events_per_txn: int, mode: str) -> list[ModeResult]:
        return [r for r in self.all_rounds if r.events_per_txn == events_per_txn and r.mode == mode]

    def summarise(self) -> None:
        keys = dict.fromkeys((r.events_per_txn, r.mode) for r in self.all_rounds)
        self.summaries = [Summary.of(self.rounds_of(shape, mode)) for shape, mode in keys]


def _percentile(sorted_values: list[float], pct: float) -> float:
    """Nearest-rank percentile: a value that was actually observed."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(pct / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def _txn_request(txn: Txn, port: int, hs_token: str) -> bytes:
    return wire.build_request("PUT", f"/_matrix/app/v1/transactions/{txn.txn_id}", port, txn.body,
                              {"Authorization": f"Bearer {hs_token}"})


@dataclass(slots=True)
class _Tally:
    latencies_ms: list[float] = field(default_factory=list)
    ok: int = 0
    events_acked: int = 0
    failures: list[str] = field(default_factory=list)
    failed: int = 0
    sent: int = 0
    ran_out: bool = False

    def fail(self, what: str) -> None:
        self.failed += 1
        if len(self.failures) < 5:  # the first few say enough; a wall of them says nothing more
            self.failures.append(what)


async def _sender(port: int, requests: list[tuple[str, bytes, int]], tally: _Tally,
                  stop_at: float | None) -> None:
    """PUT each transaction after the previous answer, on one keep-alive connection, until the
    requests or (when ``stop_at`` is set) the round's time run out."""
    conn = wire.Connection(port)
    consecutive_errors = 0
    try:
        for txn_id, raw, events in requests:
            started = time.perf_counter()
            if stop_at is not None and started >= stop_at:
                return
            tally.sent += 1
            try:
                response = await conn.request(raw)
            except (wire.HttpError, OSError, TimeoutError) as exc:
                tally.fail(f"txn {txn_id}: {exc!r}")
                consecutive_errors += 1
                if consecutive_errors >= MAX_CONSECUTIVE_ERRORS:
                    raise ContenderFailed(f"{consecutive_errors} transport errors in a row; "
                                          f"last: {exc!r}") from exc
                continue
            consecutive_errors = 0
            tally.latencies_ms.append((time.perf_counter() - started) * 1000)
            if response.status == 200:
                tally.ok += 1
                tally.events_acked += events
            else:
                tally.fail(f"txn {txn_id}: HTTP {response.status} {response.body[:200]!r}")
        if stop_at is not None:
            tally.ran_out = True
    finally:
        await conn.close()


def _machine_busy_seconds() -> float | None:
    """CPU seconds all cores spent busy since boot (Linux /proc/stat; steal counts as busy)."""
    try:
        with open("/proc/stat") as stat:
            fields = [int(v) for v in stat.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    # user nice system idle iowait irq softirq steal ...: everything but idle and iowait.
    busy = sum(fields[:8]) - fields[3] - fields[4]
    return busy / _CLOCK_TICKS


async def _helper_cpu(contender: Contender) -> dict[int, float]:
    """CPU seconds so far of the processes that work for the contender (its database backends)."""
    usage = {}
    for pid in await contender.helper_pids():
        seconds = process_cpu_seconds(pid)
        if seconds is not None:
            usage[pid] = seconds
    return usage


async def run_mode(contender: Contender, mode: str, proc: ServerProcess,
                   sequences: list[list[Txn]], round_no: int = 0,
                   duration_s: float | None = None) -> ModeResult:
    """Send ``sequences`` (one per sender) at once; with ``duration_s``, each sender stops at the
    first transaction it would start after that time (the round is then at least that long)."""
    port, hs_token = contender.port, contender.tokens.hs_token
    # Requests are complete byte strings before the clock starts: only the exchange is timed.
    prepared = [[(t.txn_id, _txn_request(t, port, hs_token), t.events) for t in seq]
                for seq in sequences]
    tally = _Tally()

    async def all_senders() -> None:
        # Awaited inside a coroutine so a cancelled run leaves no unretrieved gather future.
        stop_at = None if duration_s is None else time.perf_counter() + duration_s
        await asyncio.gather(*(_sender(port, requests, tally, stop_at) for requests in prepared))

    helpers_before = await _helper_cpu(contender)
    server_cpu_before = proc.cpu_seconds()
    client_cpu_before = time.process_time()
    machine_cpu_before = _machine_busy_seconds()
    started = time.perf_counter()
    await asyncio.wait_for(all_senders(), MODE_DEADLINE_S)
    wall = time.perf_counter() - started
    client_cpu = time.process_time() - client_cpu_before
    server_cpu_after = proc.cpu_seconds()
    machine_cpu_after = _machine_busy_seconds()
    # Backends that connected during the mode started from zero; ones that left are not counted.
    helpers_after = await _helper_cpu(contender)
    helper_cpu = sum(cpu - helpers_before.get(pid, 0.0) for pid, cpu in helpers_after.items())
    server_cpu_pct = other_cpu_pct = None
    if server_cpu_before is not None and server_cpu_after is not None:
        server_cpu = server_cpu_after - server_cpu_before + helper_cpu
        server_cpu_pct = 100 * server_cpu / wall
        if machine_cpu_before is not None and machine_cpu_after is not None:
            other = machine_cpu_after - machine_cpu_before - server_cpu - client_cpu
            other_cpu_pct = max(0.0, 100 * other / wall)
    latencies = sorted(tally.latencies_ms)
    return ModeResult(
        contender=contender.name, mode=mode, round=round_no,
        events_per_txn=sequences[0][0].events if sequences and sequences[0] else 0,
        senders=len(sequences), txns=tally.sent, ok=tally.ok, events_acked=tally.events_acked,
        wall_s=wall, events_per_s=tally.events_acked / wall,
        p50_ms=_percentile(latencies, 50), p95_ms=_percentile(latencies, 95),
        max_ms=latencies[-1] if latencies else math.nan,
        server_cpu_pct=server_cpu_pct, client_cpu_pct=100 * client_cpu / wall,
        other_cpu_pct=other_cpu_pct, short=tally.ran_out,
        failures=tally.failures,
    )


async def _first_accept(proc: ServerProcess, port: int, raw: bytes, spawned_at: float) -> float:
    """Seconds from spawn to the first 200 on a real transaction, polling every 10 ms."""
    last = "no answer"
    while True:
        if proc.exited:
            raise ContenderFailed(f"exited during start-up; log:\n{proc.log_tail()}")
        conn = wire.Connection(port, timeout=10)
        try:
            response = await conn.request(raw)
            if response.status == 200:
                return time.perf_counter() - spawned_at
            last = f"HTTP {response.status} {response.body[:200]!r}"
        except (wire.HttpError, OSError, TimeoutError) as exc:
            last = repr(exc)
        finally:
            await conn.close()
        if time.perf_counter() - spawned_at > STARTUP_DEADLINE_S:
            raise ContenderFailed(f"no 200 within {STARTUP_DEADLINE_S:.0f} s (last: {last}); "
                                  f"log:\n{proc.log_tail()}")
        await asyncio.sleep(0.01)


async def _wait_ready(proc: ServerProcess, port: int) -> None:
    raw = wire.build_request("GET", "/health/ready", port)
    deadline = time.perf_counter() + 30
    last = "no answer"
    conn = wire.Connection(port, timeout=5)
    try:
        while time.perf_counter() < deadline:
            try:
                response = await conn.request(raw)
                if response.status == 200:
                    return
                last = f"HTTP {response.status} {response.body[:200]!r}"
            except (wire.HttpError, OSError, TimeoutError) as exc:
                last = repr(exc)
            if proc.exited:
                break
            await asyncio.sleep(0.05)
    finally:
        await conn.close()
    raise ContenderFailed(f"GET /health/ready never answered 200 (last: {last})")


class Session:
    """One contender from start to stop: its process, its report, and whether it still runs."""

    def __init__(self, contender: Contender) -> None:
        self.contender = contender
        self.report = ContenderReport(contender.name)
        self.proc: ServerProcess | None = None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.report.error is None

    async def start(self, startup: Txn) -> None:
        """Prepare, spawn, time the first accepted transaction, wait for readiness."""
        contender, report = self.contender, self.report
        print(f"- {contender.name}", flush=True)
        try:
            await contender.prepare()
        except Skip as exc:
            report.error = f"skipped: {exc}"
            print(f"  {report.error}", flush=True)
            return
        report.notes = contender.notes
        argv, env = contender.command()
        self.proc = proc = ServerProcess(argv, env, contender.workdir / f"{contender.name}.log",
                                         contender.workdir)
        port = contender.port
        try:
            spawned_at = time.perf_counter()
            await proc.spawn()
            report.startup_s = await _first_accept(
                proc, port, _txn_request(startup, port, contender.tokens.hs_token), spawned_at)
            report.events_acked += startup.events
            print(f"  first transaction accepted {report.startup_s:.2f} s after spawn", flush=True)
            if contender.has_ready_endpoint:
                await _wait_ready(proc, port)
        except (ContenderFailed, TimeoutError) as exc:
            await self._failed(exc)

    async def warm_up(self, txns: list[Txn], duration_s: float) -> float | None:
        """First-request costs of a shape (imports, caches, prepared statements) stay off the
        clock; returns the transactions/s seen, which sizes the rounds' pools."""
        if not self.running or self.proc is None:
            return None
        try:
            warm = await run_mode(self.contender, "warm-up", self.proc, [txns],
                                  duration_s=duration_s)
            self.report.events_acked += warm.events_acked
            if not warm.all_ok:
                raise ContenderFailed(f"warm-up failed: {warm.failures}")
            return warm.txns_per_s
        except (ContenderFailed, TimeoutError) as exc:
            await self._failed(exc)
            return None

    async def measure(self, round_no: int, measured: Round, others: list[Session],
                      duration_s: float) -> None:
        """Both modes of one round, each after every running server has gone quiet."""
        if not self.running or self.proc is None:
            return
        try:
            for mode, sequences in ((SEQUENTIAL, [measured.sequential]),
                                    (CONCURRENT, measured.concurrent)):
                await asyncio.gather(*(other.settle() for other in others))
                result = await run_mode(self.contender, mode, self.proc, sequences, round_no,
                                        duration_s)
                self.report.all_rounds.append(result)
                self.report.events_acked += result.events_acked
                short = "  SHORT (ran out of transactions)" if result.short else ""
                print(f"  {self.contender.name:<22}{result.events_per_txn:>4}/txn round "
                      f"{round_no + 1} {mode:<11}{result.events_per_s:>9,.0f} events/s "
                      f"{result.txns_per_s:>7,.0f} txns/s  p50 {result.p50_ms:5.1f} ms  "
                      f"p95 {result.p95_ms:5.1f} ms  {result.ok}/{result.txns} answered 200  "
                      f"(other CPU {_fmt_pct(result.other_cpu_pct)}){short}", flush=True)
            if self.proc.exited:
                raise ContenderFailed(f"exited during the run; log:\n{self.proc.log_tail()}")
        except (ContenderFailed, TimeoutError) as exc:
            await self._failed(exc)

    async def settle(self) -> None:
        """Wait until the server stops working off what it acknowledged (at most 15 s).

        Work a server does after answering (handing events to its workers) must not land on the
        next measurement's clock, whether that is its own next mode or another contender's.
        """
        pid = self.proc.pid if self.proc is not None else None
        if self.running and pid is not None:
            await wait_quiet([pid])

    async def finish(self) -> None:
        """Stop the process (by its PID), count what it stored, drop its database."""
        report = self.report
        if self.proc is not None:
            await self.proc.stop()
        report.summarise()
        try:
            if self.proc is not None:
                report.stored = await self.contender.stored_events()
        except Exception as exc:  # a failed count must not hide the measurements
            report.notes.append(f"could not count stored events: {exc!r}")
        finally:
            await self.contender.cleanup()

    async def _failed(self, exc: BaseException) -> None:
        self.report.error = f"failed: {exc or 'timed out'}"
        print(f"  {self.contender.name}: {self.report.error}", flush=True)
        if self.proc is not None:
            await self.proc.stop()


# --- report --------------------------------------------------------------------------------------


def _mark(ok: bool) -> str:
    return "ok" if ok else "MISS"


def _fmt_pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}%"


def _krate(value: float) -> str:
    return f"{value / 1000:.1f}k" if value >= 1000 else f"{value:.0f}"


def _filesystem_of(path: Path) -> str:
    """Filesystem type holding ``path`` (fsync on tmpfs is free, which would fake durability)."""
    best, kind = "", "?"
    try:
        for line in Path("/proc/mounts").read_text().splitlines():
            _, mount_point, fs_type, *_ = line.split()
            if str(path).startswith(mount_point) and len(mount_point) > len(best):
                best, kind = mount_point, fs_type
    except OSError:
        pass
    return kind


def _fsync_ms(directory: Path) -> float:
    """Median cost of a small write + fsync here: the floor under every durable commit."""
    probe = directory / "fsync-probe"
    costs = []
    with probe.open("wb") as handle:
        for _ in range(20):
            handle.write(os.urandom(4096))
            handle.flush()
            started = time.perf_counter()
            os.fsync(handle.fileno())
            costs.append((time.perf_counter() - started) * 1000)
    probe.unlink()
    return sorted(costs)[len(costs) // 2]


def _ratio_rows(reports: list[ContenderReport], shapes: list[int]
                ) -> tuple[list[str], dict[str, dict[str, dict[str, Any]]]]:
    """Durable events/s over mautrix's, per contender, shape and mode: the ratio of the medians,
    and the range of the per-round ratios (round n of each ran back to back, interleaved)."""
    by_name = {r.name: r for r in reports}
    mautrix = by_name.get("mautrix")
    lines: list[str] = []
    ratios: dict[str, dict[str, dict[str, Any]]] = {}
    if mautrix is None or not mautrix.summaries:
        return ["  (mautrix not measured in this run)"], ratios
    for shape in shapes:
        goal = target_ratio(shape)
        for name in ("bridgekit-sqlite", "bridgekit-sqlite-base", "bridgekit-postgres", "reference-sqlite"):
            candidate = by_name.get(name)
            if candidate is None:
                continue
            for mode in (SEQUENTIAL, CONCURRENT):
                ours, theirs = candidate.summary(shape, mode), mautrix.summary(shape, mode)
                if ours is None or theirs is None or theirs.events_per_s == 0:
                    continue
                ratio = ours.events_per_s / theirs.events_per_s
                theirs_by_round = {r.round: r.events_per_s for r in mautrix.rounds_of(shape, mode)}
                paired = [r.events_per_s / theirs_by_round[r.round]
                          for r in candidate.rounds_of(shape, mode)
                          if theirs_by_round.get(r.round)]
                spread = f"rounds {min(paired):.2f}-{max(paired):.2f}" if paired else ""
                ratios.setdefault(name, {}).setdefault(str(shape), {})[mode] = {
                    "ratio_of_medians": ratio, "per_round": paired, "target": goal}
                lines.append(f"  {shape:>4}/txn  {mode:<11} {name} / mautrix = {ratio:.2f}x  "
                             f"({spread}; target >= {goal}x) {_mark(ratio >= goal)}")
    return lines, ratios


def print_report(ceiling: ContenderReport | None, reports: list[ContenderReport],
                 populate: int, shapes: list[int]) -> dict[str, Any]:
    """Print the table, start-up, durability check, ratios and targets; return them for --json."""
    print()
    if ceiling is not None and ceiling.summaries:
        parts = [f"{m.events_per_txn}/txn {m.mode} {m.events_per_s:,.0f} events/s "
                 f"(p50 {m.p50_ms:.2f} ms, client CPU {_fmt_pct(m.client_cpu_pct)})"
                 for m in ceiling.summaries]
        print("Load generator ceiling (raw asyncio client -> null server, median rounds): "
              + "; ".join(parts))
    elif ceiling is not None:
        print(f"Load generator ceiling: not measured ({ceiling.error})")
    header = (f"{'ev/txn':>6}  {'contender':<22}{'mode':<11}{'events/s':>9}{'min-max':>14}"
              f"{'best':>8}{'txns/s':>8}{'p50 ms':>8}{'p95 ms':>8}{'max ms':>8}{'200s':>13}"
              f"{'srv CPU':>8}{'gen CPU':>8}{'other':>6}")
    print()
    print(header)
    print("-" * len(header))
    for shape in shapes:
        for report in reports:
            if not report.summaries and shape == shapes[0]:
                print(f"{'':>6}  {report.name:<22}{report.error or 'no result'}")
                continue
            for mode in (SEQUENTIAL, CONCURRENT):
                m = report.summary(shape, mode)
                if m is None:
                    continue
                answered = f"{m.ok}/{m.txns}"
                spread = f"{_krate(m.min_events_per_s)}-{_krate(m.max_events_per_s)}"
                print(f"{shape:>6}  {report.name:<22}{m.mode:<11}{m.events_per_s:>9,.0f}"
                      f"{spread:>14}{_krate(m.max_events_per_s):>8}{m.txns_per_s:>8,.0f}"
                      f"{m.p50_ms:>8.2f}{m.p95_ms:>8.2f}{m.max_ms:>8.1f}{answered:>13}"
                      f"{_fmt_pct(m.server_cpu_pct):>8}{_fmt_pct(m.client_cpu_pct):>8}"
                      f"{_fmt_pct(m.other_cpu_pct):>6}")
        print()
    for report in reports:
        if report.error:
            print(f"{report.name}: {report.error}")
    rounds = {m.rounds for r in reports for m in r.summaries}
    print(f"events/s, txns/s, p50, p95 and the CPU columns are medians over the rounds "
          f"({'/'.join(str(n) for n in sorted(rounds)) or '-'} per row); min-max and best are "
          "the slowest and fastest round; max ms is the slowest transaction of any round.")
    print("CPU columns: % of one core during the round; 'other' is the rest of the machine "
          f"({os.cpu_count()} cores): if it is high, a neighbour took CPU and the numbers are low.")
    busy = [f"{m.events_per_txn}/txn {r.name} {m.mode}" for r in reports for m in r.summaries
            if m.other_cpu_pct is not None and m.other_cpu_pct > BUSY_MACHINE_PCT]
    if busy:
        print(f"WARNING: other processes used > {BUSY_MACHINE_PCT}% CPU (median) during: "
              f"{', '.join(busy)}; those numbers understate the contender (rerun on a quiet "
              "machine)")
    short = [f"{m.events_per_txn}/txn {r.name} {m.mode} x{m.short_rounds}" for r in reports
             for m in r.summaries if m.short_rounds]
    if short:
        print(f"SHORT ROUNDS (ran out of prepared transactions before their time): {', '.join(short)}")
    for r in reports:
        for bad in r.all_rounds:
            if not bad.all_ok:
                print(f"NOT ALL 200: {r.name} {bad.events_per_txn}/txn {bad.mode} round "
                      f"{bad.round + 1}: {bad.txns - bad.ok} failed, e.g. {bad.failures[:2]}")

    print()
    print("Every round, events/s in run order (a store whose inbox grows slows down over a run):")
    for shape in shapes:
        for report in reports:
            for mode in (SEQUENTIAL, CONCURRENT):
                m = report.summary(shape, mode)
                if m is not None:
                    print(f"  {shape:>4}/txn  {report.name:<22}{mode:<11}"
                          + " ".join(f"{rate:>8,.0f}" for rate in m.round_rates))

    print()
    print("Start-up: spawn to first accepted transaction (100 events)")
    for report in reports:
        if report.startup_s is None:
            continue
        line = f"  {report.name:<22}{report.startup_s:>6.2f} s"
        if report.name.startswith("bridgekit"):
            populated = next((n for n in report.notes if "portals" in n), None)
            line += (f"   {populated or f'NOT populated with {populate:,} portals/ghosts'}"
                     f"   target <= {TARGET_STARTUP_S:.0f} s {_mark(report.startup_s <= TARGET_STARTUP_S)}")
        print(line)

    print()
    print("Durability check: events in the contender's inbox table after it stopped")
    for report in reports:
        if report.stored is None:
            what = "no inbox table (stores nothing)" if report.name == "mautrix" else "not counted"
            print(f"  {report.name:<22}{what}")
        else:
            lost = report.events_acked - report.stored
            verdict = "ok" if lost <= 0 else f"LOST {lost:,} acknowledged events"
            print(f"  {report.name:<22}{report.stored:,} stored / {report.events_acked:,} "
                  f"acknowledged   {verdict}")

    print()
    print("Ratios of durable events/s to mautrix (answers before storing), median round over "
          "median round, same run")
    ratio_lines, ratios = _ratio_rows(reports, shapes)
    for line in ratio_lines:
        print(line)

    by_name = {r.name: r for r in reports}
    print()
    print(f"Targets at {LARGE_TXN} events per transaction: SQLite >= "
          f"{TARGET_SQLITE_EVENTS_PER_S:,} events/s durable, transaction p50 <= "
          f"{TARGET_P50_MS:.0f} ms (sequential, as Synapse sends); medians")
    for name in ("bridgekit-sqlite", "bridgekit-postgres"):
        bridge = by_name.get(name)
        if bridge is None:
            continue
        for m in bridge.summaries:
            if m.events_per_txn != LARGE_TXN:
                continue
            parts = []
            if name == "bridgekit-sqlite":
                parts.append(f"{m.events_per_s:,.0f} events/s "
                             f"{_mark(m.events_per_s >= TARGET_SQLITE_EVENTS_PER_S)}")
            if m.senders == 1:
                parts.append(f"p50 {m.p50_ms:.1f} ms {_mark(m.p50_ms <= TARGET_P50_MS)}")
            else:
                # With n transactions in flight each one also waits for the others (Little's law),
                # so the latency target, which is Synapse's one-at-a-time case, is checked above.
                mean = (1000 * m.senders * m.events_per_txn / m.events_per_s
                        if m.events_per_s else math.nan)
                parts.append(f"p50 {m.p50_ms:.1f} ms (info: {m.senders} in flight, so mean "
                             f"latency = {m.senders} x {m.events_per_txn} events / rate = "
                             f"{mean:.0f} ms)")
            print(f"  {name:<22}{m.mode:<12}" + "; ".join(parts))
        if not bridge.summaries:
            print(f"  {name:<22}not measured ({bridge.error})")
    return {
        "ceiling": asdict(ceiling) if ceiling else None,
        "contenders": [asdict(r) for r in reports],
        "ratios_to_mautrix": ratios,
        "targets": {"sqlite_events_per_s_at_100": TARGET_SQLITE_EVENTS_PER_S,
                    "ratio_small": TARGET_RATIO_SMALL, "ratio_large": TARGET_RATIO_LARGE,
                    "p50_ms_at_100": TARGET_P50_MS, "startup_s": TARGET_STARTUP_S},
    }


def _print_profiles(contenders: list[Contender]) -> None:
    import pstats

    for contender in contenders:
        path = getattr(contender, "profile_path", None)
        if path is None:
            continue
        if not path.exists():
            print(f"\nno profile written for {contender.name} (did it exit cleanly?)")
            continue
        print(f"\nProfile of {contender.name} ({path.relative_to(_REPO)}): top functions by own "
              "time. Event-loop thread only (driver threads such as aiosqlite's are not seen); "
              "under cProfile, so its numbers above are slower than real.")
        pstats.Stats(str(path), stream=sys.stdout).sort_stats("tottime").print_stats(25)


# --- command line --------------------------------------------------------------------------------

CHOICES = ("sqlite", "postgres", "mautrix", "reference")
DEFAULT_CONTENDERS = ("mautrix", "sqlite", "postgres")


def _shapes(text: str) -> list[int]:
    try:
        shapes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a list of numbers: {text!r}") from exc
    if not shapes or min(shapes) < 1:
        raise argparse.ArgumentTypeError("events per transaction must be >= 1")
    return list(dict.fromkeys(shapes))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true",
                        help=f"short rounds ({QUICK_ROUND_S:.0f} s instead of {ROUND_S:.0f} s): a "
                             "check that everything runs, not figures to quote")
    parser.add_argument("--events-per-txn", type=_shapes, metavar="N[,N...]",
                        default=list(DEFAULT_SHAPES),
                        help="transaction shapes to measure, each against every contender "
                             f"(default {','.join(map(str, DEFAULT_SHAPES))})")
    parser.add_argument("--baseline", type=Path, metavar="DIR",
                        help="also run DIR's bridgekit (another checkout, e.g. `git worktree add` of "
                             "main) on SQLite as 'bridgekit-sqlite-base', interleaved with the "
                             "others: a before/after in one run")
    parser.add_argument("--only", action="append", choices=CHOICES, metavar="NAME",
                        help=f"run only this contender (repeatable; one of {', '.join(CHOICES)}; "
                             "'reference' is a bare FastAPI+sqlite3 yardstick, never run by default)")
    parser.add_argument("--json", nargs="?", const=str(_REPO / ".bench" / "ingest-results.json"),
                        metavar="PATH", help="also write the results as JSON "
                        "(default path .bench/ingest-results.json)")
    parser.add_argument("--round-seconds", type=float,
                        help=f"length of each round (default {ROUND_S:.0f}, --quick "
                             f"{QUICK_ROUND_S:.0f})")
    parser.add_argument("--rounds", type=int, default=MIN_ROUNDS,
                        help=f"rounds per shape and mode; the table shows the median "
                             f"(default and minimum for a quotable figure: {MIN_ROUNDS})")
    parser.add_argument("--portals", type=int, default=10_000,
                        help="portals and ghosts put in bridgekit's database before start-up "
                             "(0: none)")
    parser.add_argument("--profile", action="store_true",
                        help="run bridgekit under cProfile (slower: numbers are not comparable), "
                             "print its hottest functions and keep .bench/profile-bridgekit-*.prof")
    parser.add_argument("--no-ceiling", action="store_true",
                        help="skip measuring the load generator against the null server")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be >= 1")
    return args


async def main_async(args: argparse.Namespace) -> int:
    round_s = args.round_seconds or (QUICK_ROUND_S if args.quick else ROUND_S)
    rounds = args.rounds
    shapes: list[int] = args.events_per_txn
    wanted = tuple(dict.fromkeys(args.only)) if args.only else DEFAULT_CONTENDERS
    started = time.perf_counter()
    source = TxnSource()
    startup = source.txn("start-0", LARGE_TXN)
    sizes = sorted(source.event_sizes)
    scratch = _REPO / ".bench"
    scratch.mkdir(exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="ingest-", dir=scratch))
    quick = " (--quick: short rounds, not figures to quote)" if args.quick else ""
    few = f" (fewer than {MIN_ROUNDS}: not figures to quote)" if rounds < MIN_ROUNDS else ""
    print(f"ingest benchmark: {', '.join(map(str, shapes))} events per transaction; per shape and "
          f"mode {rounds} rounds{few} of {round_s:g} s{quick}, median reported; events "
          f"{sizes[0]}-{sizes[-1]} bytes (median {sizes[len(sizes) // 2]})")
    print(f"machine: {os.cpu_count()} CPUs, Python {platform.python_version()}, scratch on "
          f"{_filesystem_of(workdir)} (fsync {_fsync_ms(workdir):.2f} ms median)", flush=True)
    tokens = Tokens(as_token=secrets.token_hex(24), hs_token=secrets.token_hex(24))
    stub = StubHomeserver()
    await stub.start()
    contenders: list[Contender] = []
    if not args.no_ceiling:
        contenders.append(NullContender(workdir, tokens))
    for choice in wanted:
        if choice == "mautrix":
            contenders.append(MautrixContender(workdir, tokens))
        elif choice == "reference":
            contenders.append(ReferenceContender(workdir, tokens))
        else:
            profile = scratch / f"profile-bridgekit-{choice}.prof" if args.profile else None
            contenders.append(BridgekitContender(workdir, tokens, choice, stub.port, args.portals,
                                                 profile))
    if args.baseline is not None:  # another checkout's code, on SQLite, in the same interleaved run
        contenders.append(BridgekitContender(workdir, tokens, "sqlite", stub.port, args.portals,
                                             code=args.baseline.resolve()))
    sessions = [Session(contender) for contender in contenders]
    try:
        # Start-up is timed for one contender at a time, each after the others went quiet.
        for session in sessions:
            await asyncio.gather(*(other.settle() for other in sessions))
            await session.start(startup)
        for shape in shapes:
            await _measure_shape(sessions, source, shape, rounds, round_s)
    finally:
        try:
            for session in sessions:
                try:
                    await session.finish()
                except Exception as exc:  # one failed clean-up must not leave the others running
                    session.report.error = session.report.error or f"clean-up failed: {exc!r}"
        finally:
            await stub.stop()
            # The scratch directory holds databases and configs with this run's tokens.
            shutil.rmtree(workdir, ignore_errors=True)
    reports = [session.report for session in sessions]
    ceiling = reports.pop(0) if not args.no_ceiling else None
    results = print_report(ceiling, reports, args.portals, shapes)
    if stub.calls:
        calls = ", ".join(f"{route} x{count}" for route, count in sorted(stub.calls.items()))
        print(f"\nStub homeserver saw: {calls}")
    if args.profile:
        _print_profiles(contenders)
    print(f"\nTotal time {time.perf_counter() - started:.0f} s")
    if args.json:
        results["meta"] = {"events_per_txn": shapes, "round_seconds": round_s, "rounds": rounds,
                           "quick": args.quick, "senders": 4,
                           "cpus": os.cpu_count(), "python": platform.python_version(),
                           "stub_homeserver_calls": stub.calls}
        await asyncio.to_thread(Path(args.json).write_text, json.dumps(results, indent=2))
        print(f"Results written to {args.json}")
    failed = any(r.error and not r.error.startswith("skipped") for r in reports)
    failed |= any(not m.all_ok for r in reports for m in r.all_rounds)
    return 1 if failed else 0


async def _measure_shape(sessions: list[Session], source: TxnSource, shape: int, rounds: int,
                         round_s: float) -> None:
    """Warm every contender up on this shape, then its rounds, interleaved across contenders."""
    print(f"- {shape} event(s) per transaction", flush=True)
    guess = first_guess_txns_per_s(shape)
    warm_s = min(WARMUP_S, round_s)
    fastest = 0.0
    for session in sessions:
        await asyncio.gather(*(other.settle() for other in sessions))
        pool = source.sequence(f"s{shape}-warm-{session.contender.name}",
                               math.ceil(warm_s * guess * POOL_MARGIN), shape)
        rate = await session.warm_up(pool, warm_s)
        if rate is not None and session.contender.name != NullContender.name:
            fastest = max(fastest, rate)
    # Rounds are interleaved across contenders (A1 B1 C1 A2 B2 C2, in a rotating order), so a
    # neighbour's burst of load hits one round of each, not every round of one contender. All
    # contenders get the same transactions in a round (their databases are separate).
    for round_no in range(rounds):
        count = math.ceil(round_s * max(fastest, 1.0) * POOL_MARGIN) + 10
        measured = source.round(f"s{shape}-r{round_no}", count, shape, senders=4)
        turn = round_no % len(sessions)
        for session in sessions[turn:] + sessions[:turn]:
            await session.measure(round_no, measured, sessions, round_s)
        fastest = max([fastest, *(r.txns_per_s for s in sessions
                                  if s.contender.name != NullContender.name
                                  for mode in (SEQUENTIAL, CONCURRENT)
                                  for r in s.report.rounds_of(shape, mode)
                                  if r.round == round_no)])


async def _main_cancellable(args: argparse.Namespace) -> int:
    # SIGTERM (and SIGINT, which asyncio.run already handles) cancel the run, so the `finally`
    # blocks stop every server this process started and drop the scratch database and files.
    task = asyncio.current_task()
    if task is not None:
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    return await main_async(args)


def main() -> None:
    try:
        sys.exit(asyncio.run(_main_cancellable(parse_args())))
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("\ninterrupted; every server started by the benchmark was stopped", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
