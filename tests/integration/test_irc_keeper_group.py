"""Several IRC connection keepers sharing one network's connections (``keeper.group``), end to
end: a real Synapse, `bridgekit run`, two keeper processes of one group, Redis and InspIRCd. One
keeper is SIGKILLed: once its lease expires the other makes its connections again and sends what
was queued for them, once, in order; started again, it takes nothing back."""

from __future__ import annotations

import secrets
import time

import pytest
from redis.asyncio import Redis

from bridgekit.demo.matrix_client import MatrixTestClient
from bridgekit.testing.synapse import AppserviceSlot
from bridgekit.testing.synapse_harness import MakeMatrixUser, RunBridge, SynapseHarness
from bridgekit.testing.waiting import eventually
from bridges.irc.keeper import streams
from bridges.irc.keeper.sharing import Membership, Placement, live_members, owners_key
from tests.integration.test_irc_keeper import keeper_gap_notice, said, start_kept_bridge
from tests.irc_fixtures import MakeIrcClient
from tests.keeper_fixtures import StartKeeper
from tests.servers.ircd import InspIRCd

pytestmark = pytest.mark.integration

GROUP = "pool"
LEASE_S = 2.0
MOST_USERS = 6


async def owners(url: str) -> dict[str, str]:
    redis = Redis.from_url(url, decode_responses=True)
    try:
        return await streams.hash_all(redis, owners_key(GROUP))
    finally:
        await redis.aclose()


async def until_alive(url: str, keeper_id: str) -> None:
    """Until the keeper's lease is in Redis again (it has read what it owns: none of before)."""
    redis = Redis.from_url(url, decode_responses=True)
    try:
        await eventually(lambda: _alive(redis, keeper_id), timeout=30, what=f"keeper {keeper_id}'s lease")
    finally:
        await redis.aclose()


async def _alive(redis: Redis, keeper_id: str) -> bool:
    return keeper_id in await live_members(redis, GROUP)


def owner_of(table: dict[str, str], user_id: str) -> str:
    return next(keeper for conn, keeper in table.items() if conn.endswith(f"/{user_id}"))


async def test_a_dead_keepers_connections_move_to_the_other_and_nothing_moves_back(
    slot: AppserviceSlot, run_bridge: RunBridge, inspircd: InspIRCd, synapse: SynapseHarness, redis_url: str,
    start_keeper: StartKeeper, make_matrix_user: MakeMatrixUser, make_irc_client: MakeIrcClient,
) -> None:
    channel = f"#pool{secrets.token_hex(3)}"
    keepers = {kid: start_keeper(redis_url, kid, group=GROUP, lease_seconds=LEASE_S) for kid in ("k1", "k2")}
    process = await start_kept_bridge(slot, run_bridge, inspircd, synapse, redis_url,
                                      keeper={"redis_url": redis_url, "group": GROUP})
    bob = await make_irc_client("bob")
    await bob.join(channel)
    users: list[MatrixTestClient] = []
    rooms: list[str] = []
    nicks: list[str] = []
    placed: dict[str, str] = {}
    while len(users) < 2 or (len(set(placed.values())) < 2 and len(users) < MOST_USERS):
        user = await make_matrix_user(f"u{len(users)}")
        room_id = await user.join(slot.alias(channel))
        await user.wait_for_membership(room_id, user.user_id)
        await user.send_text(room_id, f"hello from {len(users)}")
        hello = await bob.wait_for(said(channel, f"hello from {len(users)}"), timeout=60)
        users.append(user)
        rooms.append(room_id)
        nicks.append(str(hello.source))
        table = await owners(redis_url)
        placed = {user.user_id: owner_of(table, user.user_id) for user in users}
    # The victim: the bot's keeper if a user is there too (its portal is then told of the gap).
    bot_keeper = table[next(conn for conn in table if conn.endswith("/~bot"))]
    victim = bot_keeper if bot_keeper in placed.values() else placed[users[0].user_id]
    survivor = "k2" if victim == "k1" else "k1"
    speaker = next(n for n, user in enumerate(users) if placed[user.user_id] == victim)
    others = [n for n, user in enumerate(users) if placed[user.user_id] == survivor]

    # The victim dies; what its users say meanwhile waits in Redis, and the survivor's users go on.
    before, killed = bob.mark(), time.monotonic()
    keepers[victim].kill()
    queued = [f"queued {n} while {victim} was dead" for n in range(3)]
    for text in queued:
        await users[speaker].send_text(rooms[speaker], text)
    for n in others:
        await users[n].send_text(rooms[n], f"{n} is on {survivor}")
        await bob.wait_for(said(channel, f"{n} is on {survivor}"), since=before, timeout=30)
    await bob.wait_for_count(said(channel, f"while {victim} was dead"), len(queued), timeout=60)
    got = [line.text for line in bob.lines(said(channel, f"while {victim} was dead"))]
    assert got == queued, got  # once each, in order
    last = bob.lines(said(channel, f"while {victim} was dead"))[-1].received_at
    print(f"queued lines on IRC {last - killed:.1f} s after the SIGKILL (lease {LEASE_S:g} s)")
    taken = await owners(redis_url)
    assert set(taken.values()) == {survivor}, taken
    assert f"the lease of keeper {victim!r} expired: took" in keepers[survivor].log(), keepers[survivor].log()
    quits = {str(line.source) for line in bob.lines(lambda line: line.command == "QUIT", since=before)}
    assert not quits & {nicks[n] for n in others}, quits  # the survivor's connections saw nothing
    if bot_keeper == victim:  # the bot heard nothing meanwhile: its portal is told, once
        told = await users[0].wait_for_event(rooms[0], keeper_gap_notice(slot.bot_user_id), timeout=60)
        assert told["content"]["body"].endswith(" UTC; messages from IRC in that time were not seen."), told

    # It comes back: it takes nothing back, and IRC sees none of the survivor's connections quit.
    keepers[victim].start()
    await until_alive(redis_url, victim)
    since = bob.mark()
    for n, (user, room_id) in enumerate(zip(users, rooms, strict=True)):
        await user.send_text(room_id, f"after the return {n}")
    lines = await bob.wait_for_count(said(channel, "after the return "), len(users), timeout=60, since=since)
    assert sorted(line.text for line in lines) == [f"after the return {n}" for n in range(len(users))]
    assert await owners(redis_url) == taken
    assert bob.lines(lambda line: line.command in ("QUIT", "JOIN", "NICK"), since=since) == []
    assert len(bob.lines(said(channel, f"while {victim} was dead"))) == len(queued)  # nothing twice
    assert len(bob.lines(said(channel, "hello from "))) == len(users)  # nor what the dead keeper had sent

    # The bridge SIGKILLed and started again: it adopts the connections from both keepers (each
    # lists its own), and IRC sees nothing.
    await process.kill()
    await process.start_ready()
    for n, (user, room_id) in enumerate(zip(users, rooms, strict=True)):
        await user.send_text(room_id, f"after the bridge restart {n}")
    await bob.wait_for_count(said(channel, "after the bridge restart "), len(users), timeout=60, since=since)
    assert bob.lines(lambda line: line.command in ("QUIT", "JOIN", "NICK"), since=since) == []
    assert f"adopted {len(users)} connection(s) the IRC keeper held" in process.log_path.read_text()


async def test_the_group_scripts_never_give_one_connection_to_two_keepers(redis_url: str) -> None:
    """Against the real Redis: a placed connection stays placed; it is taken only from a keeper
    whose lease expired, by a keeper whose own has not, and by one keeper only."""
    redis = Redis.from_url(redis_url, decode_responses=True)
    group, conn = "scripts", "libera/@alice:example.org"
    short = {kid: Membership(redis, group, kid, lease_seconds=0.3) for kid in ("k1", "k2")}
    k3 = Membership(redis, group, "k3", lease_seconds=30)
    try:
        for member in (*short.values(), k3):
            assert not await member.renew()  # (new: no lease to lose)
        placed = await Placement(redis, group).place(conn)
        assert placed in {"k1", "k2", "k3"}
        assert await Placement(redis, group).place(conn) == placed  # asked again: the same keeper
        await redis.hset(owners_key(group), conn, "k1")  # (k1's, whatever the ring said)
        assert await k3.take() == []  # k1's lease is alive
        await eventually(lambda: _gone(redis, group, {"k1", "k2"}), timeout=10, what="the short leases to expire")
        assert await short["k2"].take() == []  # its own lease expired too: it takes nothing
        taken = await k3.take()
        assert [(t.conn, t.was) for t in taken] == [(conn, "k1")]
        assert await streams.hash_all(redis, owners_key(group)) == {conn: "k3"}
        assert not await short["k1"].renew()  # k1 learns its lease had lapsed ...
        assert await short["k1"].learn_owned() == set()  # ... and that the connection is gone
        assert await short["k1"].take() == []  # k3 is alive: nothing moves back
    finally:
        await redis.aclose()


async def _gone(redis: Redis, group: str, members: set[str]) -> bool:
    return not members & set(await live_members(redis, group))
