"""The IRC keeper's pieces against a real Redis and a real InspIRCd, without Synapse: a keeper
(in this process) and the bridge's side of it (``KeeperClient``, ``KeptLink``)."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any, cast

import irc.client
import pytest
from redis.asyncio import Redis

from bridgekit.testing.waiting import eventually
from bridges.irc.keeper import protocol as p
from bridges.irc.keeper.client import KeeperClient, KeeperMismatch
from bridges.irc.keeper.kept_link import KeptLink
from bridges.irc.keeper.server import Keeper
from bridges.irc.lines import join, privmsg
from tests.irc_fixtures import MakeIrcClient, unique_nick
from tests.servers.ircd import InspIRCd

pytestmark = pytest.mark.integration


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url, decode_responses=True)
    yield client
    await client.aclose()


async def running_keeper(redis: Redis, keeper_id: str, **kwargs: Any) -> tuple[Keeper, asyncio.Task[None]]:
    keeper = Keeper(redis, keeper_id, **kwargs)
    return keeper, asyncio.create_task(keeper.run())


async def stop(keeper: Keeper, running: asyncio.Task[None]) -> None:
    await keeper.stop(hang_up=True)
    running.cancel()
    await asyncio.wait({running}, timeout=5)


async def test_a_line_sent_again_with_its_key_is_written_once(
    redis: Redis, redis_url: str, inspircd: InspIRCd, make_irc_client: MakeIrcClient,
) -> None:
    """A bridge killed after the keeper sent a line, but before it recorded the Matrix event
    handled, sends it again at its next start: the keeper answers "done" and writes nothing."""
    keeper, running = await running_keeper(redis, "k1")
    client = KeeperClient(Redis.from_url(redis_url, decode_responses=True), "net", "k1")
    await client.start()
    channel = f"#keys{secrets.token_hex(3)}"
    spec = p.ConnectionSpec(p.connection_id("net", "@alice:x"), "net", inspircd.host, inspircd.port, False,
                            unique_nick("alice"), "alice", "alice", lines_per_second=0)
    link = KeptLink(client, spec, persist=True, timeout=30)
    bob = await make_irc_client("bob")
    await bob.join(channel)
    try:
        await link.connect()
        link.send(join(channel))
        await link.send_tracked(privmsg(channel, "said once"), key="$event/0")
        await link.send_tracked(privmsg(channel, "said once"), key="$event/0")  # the replay
        await link.send_tracked(privmsg(channel, "the next line"), key="$event/1")
        await bob.wait_for(lambda line: line.text == "the next line")
        assert [line.text for line in bob.lines(lambda line: line.command == "PRIVMSG")] == [
            "said once", "the next line"]
    finally:
        await link.close("done")
        await client.stop()
        await stop(keeper, running)


async def test_a_keeper_of_another_protocol_version_is_refused_by_both(redis: Redis, redis_url: str) -> None:
    keeper, running = await running_keeper(redis, "k2", protocol_version=p.PROTOCOL_VERSION + 1)
    try:
        await eventually(lambda: redis.exists(p.hello_key("k2")), what="the keeper's hello")
        client = KeeperClient(Redis.from_url(redis_url, decode_responses=True), "net", "k2")
        with pytest.raises(KeeperMismatch, match="upgrade the bridge"):
            await client.start()
        await client.redis.aclose()
        # A bridge that never looked (or an older one) is answered with the same refusal.
        await redis.xadd(p.commands_stream("k2"), p.Command("list", "", "r1", {"network": "net"}).encode())  # type: ignore[arg-type]

        async def refusal() -> p.Result | None:
            entries = await redis.xrange(p.results_stream("net"))
            return p.Result.decode(cast(dict[str, str], entries[0][1])) if entries else None

        answer = await eventually(refusal, what="the keeper's answer")
        assert answer is not None
        assert not answer.ok
        assert "upgrade the bridge" in answer.error
    finally:
        await stop(keeper, running)


async def test_inbound_entries_are_handled_once_across_a_bridge_crash(redis: Redis, redis_url: str) -> None:
    """A run took five entries, handled and recorded the first two, and died: the next run handles
    the other three, in order, none twice, and acknowledges all five."""
    client = KeeperClient(Redis.from_url(redis_url, decode_responses=True), "net", "k3")
    await client.start()
    stream = p.inbound_stream("net")
    ids: list[str] = []
    for n in range(5):
        event = irc.client.Event("pubmsg", irc.client.NickMask("bob!b@h"), "#a", [f"line {n}"])
        ids.append(str(await redis.xadd(stream, p.encode_event("net/~bot", event, 0.0))))  # type: ignore[arg-type]
    await redis.xreadgroup(p.BRIDGE_GROUP, "bridge", {stream: ">"}, count=5)  # the run that died
    recorded: list[str | None] = [ids[1]]
    handled: list[tuple[str, list[str], str | None]] = []

    async def handler(conn: str, event: irc.client.Event) -> None:
        handled.append((conn, event.arguments, p.tag_of(event, "msgid")))

    async def read_last() -> str | None:
        return recorded[-1]

    async def write_last(entry: str) -> None:
        recorded.append(entry)

    listening = asyncio.create_task(client.listen(handler, (read_last, write_last)))
    try:
        await eventually(lambda: len(handled) == 3, what="three entries handled")
        assert [arguments for _conn, arguments, _msgid in handled] == [["line 2"], ["line 3"], ["line 4"]]
        assert [msgid for *_rest, msgid in handled] == [f"kept-{entry}" for entry in ids[2:]]  # stable IDs
        assert recorded[-1] == ids[-1]

        async def all_acknowledged() -> bool:
            return bool((await redis.xpending(stream, p.BRIDGE_GROUP))["pending"] == 0)

        await eventually(all_acknowledged, what="every entry acknowledged")
    finally:
        listening.cancel()
        await client.stop()


async def test_the_cursor_is_written_once_a_batch_and_at_once_after_what_must_not_repeat(
    redis: Redis, redis_url: str,
) -> None:
    """Messages (posted once by their ID) need no commit each; a PART handled twice would show
    twice, so the cursor is written right after it."""
    network = f"cur{secrets.token_hex(3)}"
    client = KeeperClient(Redis.from_url(redis_url, decode_responses=True), network, "k5")
    await client.start()
    stream = p.inbound_stream(network)
    ids: list[str] = []
    for n, kind in enumerate(["pubmsg", "pubmsg", "part", "pubmsg", "pubmsg"]):
        event = irc.client.Event(kind, irc.client.NickMask("bob!b@h"), "#a", [f"line {n}"])
        ids.append(str(await redis.xadd(stream, p.encode_event(f"{network}/~bot", event, 0.0))))  # type: ignore[arg-type]
    written: list[str] = []
    handled: list[str] = []

    async def handler(_conn: str, event: irc.client.Event) -> None:
        handled.append(event.type)

    async def read_last() -> str | None:
        return None

    async def write_last(entry: str) -> None:
        written.append(entry)

    listening = asyncio.create_task(client.listen(handler, (read_last, write_last)))
    try:
        await eventually(lambda: len(written) == 2, what="the cursor written")
        assert handled == ["pubmsg", "pubmsg", "part", "pubmsg", "pubmsg"]
        assert written == [ids[2], ids[4]]  # after the PART, then once for the rest of the batch
    finally:
        listening.cancel()
        await client.stop()


async def test_a_connection_closed_and_opened_again_comes_back(
    redis: Redis, redis_url: str, inspircd: InspIRCd, make_irc_client: MakeIrcClient,
) -> None:
    """A Matrix user's connection closed when idle, then opened again as they speak: a second
    connection, which the keeper makes even while the first is still closing."""
    keeper, running = await running_keeper(redis, "k4")
    client = KeeperClient(Redis.from_url(redis_url, decode_responses=True), "net", "k4")
    await client.start()
    channel = f"#again{secrets.token_hex(3)}"
    spec = p.ConnectionSpec(p.connection_id("net", "@carol:x"), "net", inspircd.host, inspircd.port, False,
                            unique_nick("carol"), "carol", "carol", lines_per_second=0)
    bob = await make_irc_client("bob")
    await bob.join(channel)
    try:
        first = KeptLink(client, spec, persist=True, timeout=30)
        await first.connect()
        first.send(join(channel))
        await first.send_tracked(privmsg(channel, "before idling"))
        closed = client.command("close", spec.conn, {"reason": "idle"})  # queued now, answered once closed
        again = KeptLink(client, spec, persist=True, timeout=30)
        await again.connect()
        again.send(join(channel))
        await again.send_tracked(privmsg(channel, "back again"))
        await bob.wait_for(lambda line: line.text == "back again")
        assert closed.done()
        assert closed.result().ok
    finally:
        await client.stop()
        await stop(keeper, running)


async def test_a_restarted_keeper_tells_the_gap_since_its_last_heartbeat_once_its_bot_is_up(
    redis: Redis, inspircd: InspIRCd,
) -> None:
    """A keeper that held a network's bot connection and was last alive 100 s ago starts again:
    one gap entry (from its last heartbeat to when the bot was up again) on that network's inbound
    stream, nothing left to tell, and a clean stop records a heartbeat."""
    keeper_id, network = f"kgap{secrets.token_hex(3)}", f"gapnet{secrets.token_hex(3)}"
    went_down = time.time() - 100.0
    bot = p.ConnectionSpec(p.connection_id(network, None, "bot"), network, inspircd.host, inspircd.port, False,
                           unique_nick("gapbot"), "bridge", "bridge", lines_per_second=0, members=True)
    await redis.set(p.heartbeat_key(keeper_id), repr(went_down))
    await cast(Any, redis.hset(p.connections_key(keeper_id), bot.conn, bot.to_json()))
    keeper, running = await running_keeper(redis, keeper_id)
    try:
        async def told() -> list[tuple[str, float, float]]:
            entries = cast(list[tuple[str, dict[str, str]]], await redis.xrange(p.inbound_stream(network)))
            gaps = [p.gap_of(p.decode_event(fields)[1]) for _entry, fields in entries]
            return [gap for gap in gaps if gap is not None]

        await eventually(told, what="the gap told")
        [(teller, began, ended)] = await told()
        assert (teller, began) == (keeper_id, went_down)
        assert ended - began >= 100
        assert keeper.held[bot.conn].link.connected  # (told once the bot listens again)
        assert not await cast(Any, redis.hgetall(p.gaps_key(keeper_id)))  # nothing left to tell twice
    finally:
        await stop(keeper, running)
    assert float(await redis.get(p.heartbeat_key(keeper_id)) or 0) > went_down + 100  # the clean stop's beat
