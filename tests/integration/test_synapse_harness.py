"""The real-Synapse harness itself: users, rooms, sync back-fill and an appservice token."""

from __future__ import annotations

import secrets
import signal
import sys
from pathlib import Path

import httpx
import pytest

from bridgekit.config_loader import load_config, load_tokens, read_registration
from bridgekit.demo.matrix_client import MatrixRequestError, MatrixTestClient, is_text
from bridgekit.demo.ports import PortReservation, port_accepts
from bridgekit.registration import check_registration_matches
from bridgekit.testing.bridge_process import BridgeNotReady, BridgeProcess
from bridgekit.testing.synapse_harness import MakeMatrixUser, SynapseHarness
from tests.servers.fault_proxy import FaultProxy

pytestmark = pytest.mark.integration


async def test_alice_says_hi_to_bob(make_matrix_user: MakeMatrixUser) -> None:
    alice = await make_matrix_user("alice")
    bob = await make_matrix_user("bob")
    room_id = await alice.create_room(name="harness story", invite=[bob.user_id])

    await bob.wait_for_invite(room_id, timeout=10)
    assert await bob.join(room_id) == room_id
    await alice.wait_for_event(
        room_id,
        lambda ev: ev["type"] == "m.room.member"
        and ev.get("state_key") == bob.user_id
        and ev["content"].get("membership") == "join",
        timeout=10,
    )
    event_id = await alice.send_text(room_id, "hi")

    seen = await bob.wait_for_event(room_id, is_text("hi"), timeout=10)
    assert seen["event_id"] == event_id
    assert seen["sender"] == alice.user_id
    assert (await bob.get_event(room_id, event_id))["content"]["body"] == "hi"
    assert await alice.joined_members(room_id) == {alice.user_id, bob.user_id}


async def test_burst_of_sixty_arrives_complete_and_in_order(make_matrix_user: MakeMatrixUser) -> None:
    alice = await make_matrix_user("alice")
    bob = await make_matrix_user("bob")
    room_id = await alice.create_room(name="burst", invite=[bob.user_id])
    await bob.join(room_id)
    # Bob has synced before the burst, so the burst reaches him as incremental syncs whose
    # timelines exceed the limit: this is the back-fill path, not the initial sync.
    await bob.wait_for_event(room_id, lambda ev: ev["type"] == "m.room.create", timeout=10)

    sent = [await alice.send_text(room_id, f"burst {i}") for i in range(60)]

    def is_burst(ev: dict[str, object]) -> bool:
        content = ev.get("content")
        return isinstance(content, dict) and str(content.get("body", "")).startswith("burst ")

    got = await bob.wait_for_events(room_id, is_burst, 60, timeout=60)
    assert [ev["event_id"] for ev in got] == sent
    assert [ev["content"]["body"] for ev in got] == [f"burst {i}" for i in range(60)]
    assert bob.limited_syncs >= 1, "the burst never exceeded the sync timeline limit"
    # /messages paging sees the same 60, in the same order.
    history = [ev for ev in await bob.room_messages(room_id) if is_burst(ev)]
    assert [ev["event_id"] for ev in history] == sent


async def test_main_slot_bot_whoami_with_as_token(synapse: SynapseHarness) -> None:
    slot = synapse.slot("main")
    async with httpx.AsyncClient(base_url=synapse.url, timeout=10) as http:
        resp = await http.get(
            "/_matrix/client/v3/account/whoami",
            headers={"Authorization": f"Bearer {slot.as_token}"},
        )
    assert resp.status_code == 200, resp.text
    assert resp.json()["user_id"] == slot.bot_user_id == f"@_bk_bot:{synapse.server_name}"


async def test_human_users_are_exempt_from_the_low_message_rate(
    make_matrix_user: MakeMatrixUser,
) -> None:
    # rc_message is 0.5/s burst 3 server-wide (for the "ratelimited" slot); without the
    # override the fifth quick message would be answered 429.
    carol = await make_matrix_user("carol")
    room_id = await carol.create_room(name="no limits for humans")
    for i in range(10):
        await carol.send_text(room_id, f"quick {i}")


def test_slot_bridge_config_loads_and_matches_its_registration(
    synapse: SynapseHarness, tmp_path: Path
) -> None:
    slot = synapse.slot("main")
    path = slot.write_bridge_config(tmp_path / "bridge.yaml", f"sqlite+aiosqlite:///{tmp_path}/b.db")
    loaded = load_config(path, environ={})
    assert loaded.config.appservice.listen.port == slot.bridge_port == slot.port
    assert loaded.config.homeserver.url == synapse.url
    tokens = load_tokens(loaded, environ={})
    assert (tokens.as_token, tokens.hs_token) == (slot.as_token, slot.hs_token)
    registration = read_registration(loaded.registration_path, missing_hint="")
    assert check_registration_matches(loaded.config, registration) == []
    assert registration["rate_limited"] is False
    assert synapse.slot("ratelimited").registration()["rate_limited"] is True


async def test_fault_proxy_on_the_client_side(
    make_matrix_user: MakeMatrixUser, synapse: SynapseHarness
) -> None:
    alice = await make_matrix_user("alice")
    room_id = await alice.create_room(name="through the proxy")
    with PortReservation.acquire() as reservation:
        async with FaultProxy(synapse.url, reservation.port) as proxy:
            proxied = MatrixTestClient(proxy.url, alice.access_token, alice.user_id)
            async with proxied:
                assert await proxied.whoami() == alice.user_id

                proxy.rate_limit_next(1, retry_after_ms=250)
                with pytest.raises(MatrixRequestError) as limited:
                    await proxied.send_text(room_id, "refused")
                assert limited.value.status == 429
                assert limited.value.body["retry_after_ms"] == 250

                # forward_first: Synapse stores the message, the client is told it failed.
                proxy.fail_next(1, 500, forward_first=True)
                with pytest.raises(MatrixRequestError) as failed:
                    await proxied.send_text(room_id, "stored anyway")
                assert failed.value.status == 500
                await alice.wait_for_event(room_id, is_text("stored anyway"), timeout=10)
                assert not [ev for ev in alice.events(room_id) if is_text("refused")(ev)]
                assert proxy.count("/_matrix/client/v3/rooms/") == 2
                assert proxy.count("/_matrix/client/v3/account/whoami") == 1
                assert [r.fault for r in proxy.log] == [None, "rate_limit", "fail"]


async def ping(bot: MatrixTestClient, appservice_id: str) -> None:
    """Ping the appservice through Synapse. Synapse may first try a pooled connection that an
    earlier test's proxy on the same port closed (502 M_CONNECTION_FAILED): it pings again."""
    for attempt in range(3):
        try:
            await bot.request("POST", f"/_matrix/client/v1/appservice/{appservice_id}/ping", json_body={})
            return
        except MatrixRequestError as error:
            if error.status != 502 or attempt == 2:
                raise


async def test_synapse_retries_a_transaction_through_the_faulty_slot(synapse: SynapseHarness) -> None:
    slot = synapse.slot("faulty")
    txn_prefix = "/_matrix/app/v1/transactions/"
    # No bridge yet: a second proxy on the bridge port plays a bridge that accepts everything.
    async with (
        FaultProxy("http://127.0.0.1:9", slot.bridge_port) as fake_bridge,
        FaultProxy(slot.bridge_url, slot.port) as front,
    ):
        fake_bridge.fail_next(10_000, 200, b"{}")
        bot = MatrixTestClient(synapse.url, slot.as_token, slot.bot_user_id)
        async with bot:
            # Earlier tests on this slot may have left Synapse backing off from it (their bridge
            # has stopped); a successful ping makes it deliver again at once.
            await ping(bot, slot.id)
            front.fail_next(1, 500, forward_first=True, path_prefix=txn_prefix)
            await bot.create_room(name="pushed to the appservice")
            # Wait for the armed fault to be used (transactions held back earlier may come first).
            while front.pending_faults:
                await front.wait_for_requests(txn_prefix, len(front.log) + 1, timeout=30)
            first = next(r for r in front.log if r.path.startswith(txn_prefix) and r.fault == "fail")
            assert (first.fault, first.status, first.forwarded) == ("fail", 500, True)
            # A successful ping makes Synapse retry at once instead of after its 2 s backoff.
            await ping(bot, slot.id)
            await fake_bridge.wait_for_requests(first.path, 2, timeout=30)
        # The same txnId twice: the bridge must treat the retry as a duplicate.
        assert fake_bridge.seen[first.path] == 2
        assert front.count("/_matrix/app/v1/ping") >= 2


async def test_users_without_the_override_are_rate_limited(synapse: SynapseHarness) -> None:
    # Proves the low rc_message is in force, so the override above is what exempts humans.
    dave = await MatrixTestClient.create_user(synapse.server, f"plain_{secrets.token_hex(4)}")
    async with dave:
        room_id = await dave.create_room(name="limited")
        errors: list[tuple[int, str | None]] = []
        # Each refusal costs 0.5 s (Synapse pauses before answering 429): keep the count low.
        for i in range(6):
            try:
                await dave.send_text(room_id, f"quick {i}")
            except MatrixRequestError as exc:
                errors.append((exc.status, exc.errcode))
        assert errors, "6 quick messages and not one 429"
        assert set(errors) == {(429, "M_LIMIT_EXCEEDED")}


# Stands in for `bridgekit run`: serves /health/ready on the config's port, ignores SIGTERM
# when asked to, so stop() has to fall back to SIGKILL.
_FAKE_BRIDGE = """
import http.server, signal, sys, yaml
cfg = yaml.safe_load(open(sys.argv[1]))
if "--stubborn" in sys.argv:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
class Ready(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/health/ready" else 404)
        self.end_headers()
    def log_message(self, *args):
        pass
port = cfg["appservice"]["listen"]["port"]
http.server.HTTPServer(("127.0.0.1", port), Ready).serve_forever()
"""


async def test_bridge_process_lifecycle(synapse: SynapseHarness, tmp_path: Path) -> None:
    config = synapse.slot("main").write_bridge_config(tmp_path / "bridge.yaml", "sqlite+aiosqlite://")
    fake = BridgeProcess(config, argv=[sys.executable, "-c", _FAKE_BRIDGE, str(config)])
    try:
        await fake.start_ready(deadline_s=20)
        first_pid = fake.pid
        assert port_accepts(fake.port)
        await fake.restart(graceful=False)
        assert fake.running
        assert fake.pid != first_pid
        assert await fake.stop() == -signal.SIGTERM
        assert not port_accepts(fake.port)
    finally:
        await fake.stop()

    stubborn = BridgeProcess(
        config, argv=[sys.executable, "-c", _FAKE_BRIDGE, str(config), "--stubborn"]
    )
    try:
        await stubborn.start_ready(deadline_s=20)
        assert await stubborn.stop(deadline_s=0.5) == -signal.SIGKILL
    finally:
        await stubborn.stop()

    crash = "print('no config for me'); raise SystemExit(3)"
    broken = BridgeProcess(config, argv=[sys.executable, "-c", crash])
    broken.start()
    with pytest.raises(BridgeNotReady, match=r"exited with 3(.|\n)*no config for me"):
        await broken.wait_ready(deadline_s=20)
