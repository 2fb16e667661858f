"""The comparison peer: mautrix-python's ``AppService`` with a no-op event handler.

This script runs inside its own virtualenv (``.bench/mautrix-venv``, made by ``bench/ingest.py``),
never in bridgekit's, so mautrix's pinned dependencies cannot disturb ours. It is mautrix as a
bridge built on it receives transactions: the transaction route checks the token, deserialises
every event, schedules the handlers as background tasks and answers 200 before anything is stored
(its idea of "seen" transactions is an in-memory set). The state store is the in-memory one, so
the peer does no disk work at all; that is its best case, and the point of comparing against it.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
from typing import Any

# mautrix lives only in the peer's virtualenv; bridgekit's type checker never sees it.
from mautrix.appservice import AppService  # type: ignore[import-not-found]
from mautrix.appservice.state_store import ASStateStore  # type: ignore[import-not-found]
from mautrix.client.state_store import MemoryStateStore  # type: ignore[import-not-found]


class _MemoryASStateStore(MemoryStateStore, ASStateStore):  # type: ignore[misc]
    """mautrix ships a file-backed AS state store only; this is the same without the file."""

    def __init__(self) -> None:
        MemoryStateStore.__init__(self)
        ASStateStore.__init__(self)


async def _run(port: int, as_token: str, hs_token: str) -> None:
    appservice = AppService(
        server="http://127.0.0.1:9",  # never called: the peer only receives
        domain="bench.example.org",
        as_token=as_token,
        hs_token=hs_token,
        bot_localpart="benchbot",
        id="bench",
        state_store=_MemoryASStateStore(),
    )

    @appservice.matrix_event_handler  # type: ignore[untyped-decorator]
    async def _noop(event: Any) -> None:
        # A bridge would translate and forward here; the benchmark measures intake only.
        return None

    await appservice.start(host="127.0.0.1", port=port)
    appservice.ready = True
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await appservice.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description="mautrix-python AppService with a no-op handler")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    # Per-transaction INFO lines would cost the peer time the bridge under test does not spend.
    logging.basicConfig(level=logging.WARNING)
    # Tokens come through the environment, not argv, where every local user could read them.
    asyncio.run(_run(args.port, os.environ["BENCH_AS_TOKEN"], os.environ["BENCH_HS_TOKEN"]))


if __name__ == "__main__":
    main()
