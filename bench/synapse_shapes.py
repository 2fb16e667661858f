"""How fast Synapse takes sequential sends of different shapes into one room: no bridge at all.

    .venv/bin/python bench/synapse_shapes.py               # 100 sends per burst, 5 rounds (~2 min)
    .venv/bin/python bench/synapse_shapes.py --sends 300 --rounds 3

One Synapse (SQLite), a plain user who reads the room with a long-polling ``/sync`` all along,
and two null appservices (``irc_peer.NullAppservice``: they answer ``200 {}``). Each shape is a
burst of sequential ``PUT /send`` as fast as they are answered; the shapes take turns within
each round (rounds rotate, so drift on a noisy machine hits every shape alike) and the table
shows each shape's median rate and its ratio to the plain user's body-only sends.

It is how the IRC benchmark's Synapse rows were chosen (bench/README.md, irc.py): a bridge sends
as an appservice user, with ``?ts=`` and ``m.mentions``, into rooms its appservice is interested
in, and each of those costs Synapse something a plain client's body-only message does not.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

_REPO = Path(__file__).resolve().parent.parent
if str(_REPO) not in sys.path:
    sys.path.insert(0, str(_REPO))

from bench.irc_peer import AsUsers, NullAppservice  # noqa: E402
from bridgekit.demo.matrix_client import MatrixTestClient  # noqa: E402
from bridgekit.testing.synapse import SynapseServer  # noqa: E402

_C = "/_matrix/client/v3"
BODY = "the quick brown fox jumps over the lazy dog"


class SecondAppservice(NullAppservice):
    localpart_prefix = "_nullb_"


@dataclass(frozen=True)
class Shape:
    name: str
    room: str
    http: httpx.AsyncClient
    user_id: str | None  # an appservice user (sent with ?user_id=); None for the plain user
    ts: bool
    mentions: bool


async def burst(shape: Shape, n: int) -> float:
    """Sends per second of ``n`` sequential sends of ``shape``."""
    started = time.perf_counter()
    for i in range(n):
        params: dict[str, str] = {"user_id": shape.user_id} if shape.user_id else {}
        if shape.ts:
            params["ts"] = str(int(time.time() * 1000) - 1000)
        content: dict[str, Any] = {"msgtype": "m.text", "body": f"{i:04d} {BODY}"}
        if shape.mentions:
            content["m.mentions"] = {}
        path = f"{_C}/rooms/{quote(shape.room)}/send/m.room.message/{secrets.token_hex(8)}"
        response = await shape.http.put(path, params=params, json=content)
        response.raise_for_status()
    return n / (time.perf_counter() - started)


async def read_forever(synapse_url: str, token: str) -> None:
    """The room's reader: a /sync long-poll always open, as a Matrix client keeps one."""
    since: str | None = None
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=synapse_url, headers=headers, timeout=60) as http:
        while True:
            params = {"timeout": "30000", **({"since": since} if since else {})}
            since = (await http.get(f"{_C}/sync", params=params)).json()["next_batch"]


async def measure(args: argparse.Namespace, work: Path) -> dict[str, list[float]]:
    synapse = SynapseServer(work / "synapse")
    first, second = NullAppservice(synapse.server_name), SecondAppservice(synapse.server_name)
    synapse.write_config()
    synapse.appservice_registrations = [first.write_registration(work / "first.yaml"),
                                        second.write_registration(work / "second.yaml")]
    first.start()
    second.start()
    closers: list[Callable[[], Awaitable[None]]] = []
    reader_task: asyncio.Task[None] | None = None
    try:
        await asyncio.to_thread(synapse.start)
        plain = await MatrixTestClient.create_user(synapse, "plain")
        reader = await MatrixTestClient.create_user(synapse, "reader")
        closers += [plain.aclose, reader.aclose]
        as_first, as_second = AsUsers(synapse.url, first), AsUsers(synapse.url, second)
        closers += [as_first.aclose, as_second.aclose]
        ghost = await as_first.register(f"{first.localpart_prefix}ghost")
        other_bot = await as_second.register(f"{second.localpart_prefix}bot")

        plain_room = await plain.create_room(name="plain", invite=[reader.user_id])
        as_room = await plain.create_room(name="one appservice", invite=[reader.user_id, ghost])
        two_room = await plain.create_room(name="two appservices", invite=[reader.user_id, ghost, other_bot])
        for room in (plain_room, as_room, two_room):
            await reader.join(room)
        await as_first.join(ghost, as_room)
        await as_first.join(ghost, two_room)
        await as_second.join(other_bot, two_room)

        plain_http = httpx.AsyncClient(base_url=synapse.url, timeout=60,
                                       headers={"Authorization": f"Bearer {plain.access_token}"})
        as_http = httpx.AsyncClient(base_url=synapse.url, timeout=60,
                                    headers={"Authorization": f"Bearer {first.as_token}"})
        closers += [plain_http.aclose, as_http.aclose]
        shapes = [
            Shape("plain user, body only (reference)", plain_room, plain_http, None, False, False),
            Shape("plain user, + m.mentions", plain_room, plain_http, None, False, True),
            Shape("appservice user, body only", as_room, as_http, ghost, False, False),
            Shape("appservice user, + ?ts=", as_room, as_http, ghost, True, False),
            Shape("appservice user, + ?ts= + m.mentions", as_room, as_http, ghost, True, True),
            Shape("appservice user, body only, 2 appservices", two_room, as_http, ghost, False, False),
        ]
        reader_task = asyncio.create_task(read_forever(synapse.url, reader.access_token))
        for shape in shapes:  # warm-up: caches, first events
            await burst(shape, 5)
        rates: dict[str, list[float]] = {shape.name: [] for shape in shapes}
        for round_no in range(args.rounds):
            turn = shapes[round_no % len(shapes):] + shapes[:round_no % len(shapes)]
            for shape in turn:
                rates[shape.name].append(await burst(shape, args.sends))
            print(f"round {round_no + 1}/{args.rounds} done", flush=True)
        return rates
    finally:
        if reader_task is not None:
            reader_task.cancel()
        for close in closers:
            await close()
        await asyncio.to_thread(synapse.stop)
        first.stop()
        second.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--sends", type=int, default=100, help="sequential sends per burst")
    parser.add_argument("--rounds", type=int, default=5, help="rounds (each shape once per round)")
    args = parser.parse_args()
    (_REPO / ".bench").mkdir(exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="shapes-", dir=_REPO / ".bench"))
    try:
        rates = asyncio.run(measure(args, work))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    reference = statistics.median(next(iter(rates.values())))
    print(f"\nSynapse, {args.sends} sequential sends per burst, {args.rounds} rounds (median sends/s)")
    print(f"{'shape':44s} {'sends/s':>8s} {'ratio':>6s}   rounds")
    for name, values in rates.items():
        median = statistics.median(values)
        rounds = " ".join(f"{value:5.1f}" for value in values)
        print(f"{name:44s} {median:8.1f} {median / reference:6.2f}   {rounds}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
