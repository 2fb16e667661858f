"""A bare FastAPI + sqlite3 transaction endpoint: the smallest thing that keeps the durability promise.

It is a yardstick, not a bridge: it checks the token, parses the body, stores the txnId and every
event in one SQLite transaction (WAL, ``synchronous=FULL``, so the commit is on disk) and only then
answers 200. What bridgekit adds on top (validation, dedup rules, queues, workers) costs something;
this contender shows how much headroom the same stack leaves, and it let the benchmark be built
and checked before ``bridgekit run`` existed. Run with ``--only reference``.
"""

from __future__ import annotations

import argparse
import asyncio
import hmac
import json
import os
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import uvicorn
from fastapi import FastAPI, Request, Response

_SCHEMA = """
CREATE TABLE IF NOT EXISTS as_txn (txn_id TEXT PRIMARY KEY, received_ts REAL NOT NULL);
CREATE TABLE IF NOT EXISTS inbox_event (
    event_id TEXT PRIMARY KEY, txn_id TEXT NOT NULL, room_id TEXT, body TEXT NOT NULL
);
"""


def create_app(db_path: str, hs_token: str) -> FastAPI:
    # One connection, used only from one thread: SQLite has one writer anyway, and a single
    # thread serialises commits without "database is locked" retries.
    writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-writer")
    conn = sqlite3.connect(db_path, check_same_thread=False, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.executescript(_SCHEMA)
    expected = f"Bearer {hs_token}".encode()

    def store(txn_id: str, events: list[dict[str, Any]]) -> None:
        rows = [
            (ev.get("event_id"), txn_id, ev.get("room_id"), json.dumps(ev))
            for ev in events
            if isinstance(ev, dict) and isinstance(ev.get("event_id"), str)
        ]
        conn.execute("BEGIN IMMEDIATE")
        try:
            cur = conn.execute(
                "INSERT OR IGNORE INTO as_txn (txn_id, received_ts) VALUES (?, julianday('now'))",
                (txn_id,),
            )
            if cur.rowcount:
                conn.executemany("INSERT OR IGNORE INTO inbox_event VALUES (?, ?, ?, ?)", rows)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    app = FastAPI()

    @app.put("/_matrix/app/v1/transactions/{txn_id}")
    async def put_transaction(txn_id: str, request: Request) -> Response:
        given = request.headers.get("authorization", "").encode()
        if not hmac.compare_digest(given, expected):
            return Response(b'{"errcode":"M_FORBIDDEN"}', status_code=403)
        payload = json.loads(await request.body())
        events = payload.get("events")
        if not isinstance(events, list):
            return Response(b'{"errcode":"M_BAD_JSON"}', status_code=400)
        await asyncio.get_running_loop().run_in_executor(writer, store, txn_id, events)
        return Response(b"{}", media_type="application/json")

    @app.get("/health/ready")
    async def ready() -> Response:
        return Response(b"{}", media_type="application/json")

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description="Bare FastAPI + sqlite3 durable transaction endpoint")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--db", required=True)
    args = parser.parse_args()
    app = create_app(args.db, os.environ["BENCH_HS_TOKEN"])
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
