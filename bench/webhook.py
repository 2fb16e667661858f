"""Webhook benchmark: how long an inbound hook takes to become a Matrix event, and how many per second.

    .venv/bin/python bench/webhook.py [--requests N] [--concurrency C] [--quick]

Starts a Synapse and a ``bridgekit run`` with the webhook connector (both on 127.0.0.1, under a
temporary directory removed at the end), creates a hook by command as a real user would, then:

- **hook latency**: N sequential POSTs; each is answered 200 only once the homeserver returned
  the event ID (the message is in the room), so the time to the answer is hook -> Matrix event.
- **direct send latency**, in the same run on the same Synapse: N sequential ``PUT /send`` of a
  logged-in user, and N of the appservice bot (what the bridge itself pays per message).
- **sustained hooks/s**: C concurrent senders POSTing N requests (rate limit lifted), measured
  until the last message is in the room (read back with ``/messages``), not just acknowledged.

Prints a table: p50, p95, max (nearest rank) and rate per line.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import re
import secrets
import shutil
import sys
import tempfile
import time
from pathlib import Path

import httpx
from cryptography.fernet import Fernet

_REPO = Path(__file__).resolve().parent.parent
if str(_REPO) not in sys.path:
    sys.path.insert(0, str(_REPO))

from bridgekit.demo.matrix_client import MatrixTestClient  # noqa: E402
from bridgekit.testing.bridge_process import BridgeProcess  # noqa: E402
from bridgekit.testing.synapse import AppserviceSlot, SynapseServer  # noqa: E402


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def row(name: str, samples: list[float], rate: float | None = None) -> str:
    ms = [s * 1000 for s in samples]
    rate_text = f"{rate:10.1f}" if rate is not None else f"{len(samples) / sum(samples):10.1f}"
    return (f"{name:<34} {len(samples):>6} {percentile(ms, 0.5):>9.1f} {percentile(ms, 0.95):>9.1f} "
            f"{max(ms):>9.1f} {rate_text}")


def rate_row(name: str, count: int, rate: float) -> str:
    return f"{name:<34} {count:>6} {'':>9} {'':>9} {'':>9} {rate:10.1f}"


async def timed(samples: list[float], call: object) -> None:
    started = time.perf_counter()
    await call  # type: ignore[misc]
    samples.append(time.perf_counter() - started)


class Setup:
    def __init__(self, work: Path) -> None:
        self.work = work
        self.synapse = SynapseServer(work / "synapse")
        self.slot: AppserviceSlot | None = None
        self.bridge: BridgeProcess | None = None

    async def start(self) -> tuple[AppserviceSlot, MatrixTestClient]:
        self.synapse.write_config()
        slot = self.slot = AppserviceSlot(
            "bench", appservice_id=f"bench-{secrets.token_hex(3)}", prefix="_wh_",
            homeserver_url=self.synapse.url, server_name=self.synapse.server_name, connector="webhook",
        )
        self.synapse.appservice_registrations = [slot.write_registration(self.work / "registration.yaml")]
        self.synapse.start()
        section = {
            "factory": "bridges.webhook.connector:WebhookConnector", "public_url": slot.bridge_url,
            "database": f"sqlite+aiosqlite:///{self.work / 'webhook.db'}",
            "secrets_key": Fernet.generate_key().decode(), "rate_per_second": 1e6, "rate_burst": 1_000_000,
        }
        config = slot.write_bridge_config(
            self.work / "bridge.yaml", f"sqlite+aiosqlite:///{self.work / 'bridge.db'}",
            connectors={slot.connector: section}, permissions={self.synapse.server_name: "admin"},
            logging={"level": "WARNING", "access_log": False},
        )
        self.bridge = BridgeProcess(config, env={"PYTHONPATH": str(_REPO)})
        await self.bridge.start_ready()
        user = await MatrixTestClient.create_user(self.synapse, f"bench_{secrets.token_hex(3)}", admin=True)
        await user.override_ratelimit(user.user_id)
        return slot, user

    async def stop(self) -> None:
        if self.bridge is not None:
            await self.bridge.stop()
        self.synapse.stop()
        if self.slot is not None:
            self.slot.release()


async def create_hook(slot: AppserviceSlot, user: MatrixTestClient) -> tuple[str, str]:
    """(room, hook URL), through the commands a user would send."""
    dm = await user.create_room(is_direct=True, invite=[slot.bot_user_id])
    await user.wait_for_membership(dm, slot.bot_user_id)
    room = await user.create_room(name="bench", invite=[slot.bot_user_id])
    await user.wait_for_membership(room, slot.bot_user_id)
    await user.send_text(room, "!bk webhook create bench")
    notice = await user.wait_for_event(dm, lambda e: "URL (keep it secret)" in e["content"].get("body", ""))
    url = re.search(r"URL \(keep it secret\): (\S+)", notice["content"]["body"]).group(1)  # type: ignore[union-attr]
    return room, url


async def count_in_room(user: MatrixTestClient, room: str, prefix: str) -> int:
    events = await user.room_messages(room, page=1000)
    return sum(1 for e in events if e["type"] == "m.room.message" and prefix in e["content"].get("body", ""))


async def run(requests: int, concurrency: int) -> int:
    scratch = _REPO / ".bench"
    work = Path(tempfile.mkdtemp(prefix="bench-webhook-", dir=scratch if scratch.is_dir() else None))
    setup = Setup(work)
    try:
        slot, user = await setup.start()
        room, url = await create_hook(slot, user)
        bot_headers = {"Authorization": f"Bearer {slot.as_token}"}
        hook: list[float] = []
        direct_user: list[float] = []
        direct_bot: list[float] = []
        async with httpx.AsyncClient(timeout=30) as http:
            for i in range(10):  # warm-up: ghosts, joins, connections
                (await http.post(url, json={"text": f"warm-up {i}"})).raise_for_status()
            for i in range(requests):
                await timed(hook, _ok(http.post(url, json={"text": f"latency {i}"})))
                await timed(direct_user, user.send_text(room, f"direct {i}"))
                path = f"/_matrix/client/v3/rooms/{room}/send/m.room.message/{secrets.token_hex(8)}"
                await timed(direct_bot, _ok(http.put(f"{setup.synapse.url}{path}", headers=bot_headers,
                                                    json={"msgtype": "m.text", "body": f"bot {i}"})))
            queue: asyncio.Queue[int] = asyncio.Queue()
            for i in range(requests):
                queue.put_nowait(i)
            statuses: list[int] = []

            async def sender() -> None:
                while not queue.empty():
                    i = queue.get_nowait()
                    statuses.append((await http.post(url, json={"text": f"burst {i}"})).status_code)

            started = time.perf_counter()
            await asyncio.gather(*(sender() for _ in range(concurrency)))
            acknowledged = time.perf_counter() - started
            while await count_in_room(user, room, "burst ") < requests:
                await user.sync_once(timeout_ms=1000)
            in_room = time.perf_counter() - started
        accepted = sum(1 for s in statuses if s in (200, 202))
        print(f"\nwebhook bridge vs Synapse, {requests} sequential requests each; burst of {requests} "
              f"with {concurrency} senders\n")
        print(f"{'measure':<34} {'n':>6} {'p50 ms':>9} {'p95 ms':>9} {'max ms':>9} {'per s':>10}")
        print(row("hook POST -> event in room (200)", hook))
        print(row("Synapse direct send (user)", direct_user))
        print(row("Synapse direct send (appservice)", direct_bot))
        print(rate_row("sustained hooks, acknowledged", accepted, accepted / acknowledged))
        print(rate_row("sustained hooks, all in the room", requests, requests / in_room))
        overhead = percentile(hook, 0.5) - percentile(direct_bot, 0.5)
        print(f"\nbridge overhead at p50 over the appservice's own send: {overhead * 1000:.1f} ms")
        return 0 if accepted == requests else 1
    finally:
        await setup.stop()
        shutil.rmtree(work, ignore_errors=True)


async def _ok(call: object) -> None:
    response: httpx.Response = await call  # type: ignore[misc]
    response.raise_for_status()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--quick", action="store_true", help="100 requests")
    args = parser.parse_args()
    return asyncio.run(run(100 if args.quick else args.requests, args.concurrency))


if __name__ == "__main__":
    sys.exit(main())
