"""Several keepers sharing a network's connections: a *group* (``keeper.group`` in the bridge's
config; each keeper started with ``--group`` and its own ``--keeper-id``). The Redis side of
:mod:`bridges.irc.keeper.ring`, used by both the bridge (which places a new connection) and the
keepers (leases, taking a dead keeper's connections, and where to start doing its commands again).

In Redis, for group ``G`` (every time compared is Redis's own clock, ``TIME``, so the machines'
clocks do not matter):

- ``bk:irc:group:G:leases``: sorted set, keeper ID -> when its lease expires (ms). A keeper
  renews its own every third of the lease; one whose lease expired is dead to the group.
- ``bk:irc:group:G:owners``: hash, connection ID -> the keeper that holds it. Written only by
  scripts that cannot give one connection to two keepers: the bridge's :data:`ASSIGN` (a new ID,
  ``HSETNX``: set once) and a keeper's :data:`TAKE` (compare-and-set, only from an owner whose
  lease has expired, only by a keeper whose own has not).
- ``bk:irc:group:G:resume``: hash, connection ID -> where its commands must be done again from
  (an ``XRANGE`` start): kept by the owner as it finishes them (:class:`~ring.Unfinished`).

One command stream for the group (the keeper-scoped names of
:mod:`~bridges.irc.keeper.protocol` with the scope :func:`group_scope`); every keeper reads all of
it through a consumer group of its own and does the commands of the connections it owns, in
order. So a connection's commands stay in one ordered stream whoever holds it; a new owner does
the taken connection's commands again from its ``resume`` point up to where its own reading has
got, and reads on from there: nothing queued for a dead keeper is lost, and sends keep their
idempotency keys (event ID + line index), so a line the dead keeper had written goes out once.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from redis.asyncio import Redis

from bridges.irc.keeper import protocol as p
from bridges.irc.keeper import streams
from bridges.irc.keeper.ring import HashRing, to_take

if TYPE_CHECKING:
    from bridges.irc.keeper.client import KeeperClient

log = logging.getLogger(__name__)

_NOW_MS = "local t = redis.call('TIME') local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) "

RENEW = _NOW_MS + """
local before = redis.call('ZSCORE', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
if before and tonumber(before) > now then return 1 end
return 0
"""
"""Renew ``ARGV[1]``'s lease for ``ARGV[2]`` ms; 1 if it had not expired (0: it had, or is new)."""

LIVE = _NOW_MS + "return redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf')"

ASSIGN = """
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 1 then
  local newest = redis.call('XREVRANGE', KEYS[3], '+', '-', 'COUNT', 1)
  if newest[1] then redis.call('HSET', KEYS[2], ARGV[1], '(' .. newest[1][1])
  else redis.call('HDEL', KEYS[2], ARGV[1]) end
end
return redis.call('HGET', KEYS[1], ARGV[1])
"""
"""A new connection ID goes to ``ARGV[2]`` (its commands start after the stream's newest entry:
none of this ID was ever appended); one already placed stays where it is. Returns its owner."""

TAKE = _NOW_MS + """
local mine = redis.call('ZSCORE', KEYS[2], ARGV[1])
if not mine or tonumber(mine) <= now then return {} end
local taken = {}
for i = 2, #ARGV, 2 do
  local conn, was = ARGV[i], ARGV[i + 1]
  if redis.call('HGET', KEYS[1], conn) == was then
    local lease = redis.call('ZSCORE', KEYS[2], was)
    if not lease or tonumber(lease) <= now then
      redis.call('HSET', KEYS[1], conn, ARGV[1])
      taken[#taken + 1] = conn
    end
  end
end
return taken
"""
"""``ARGV[1]`` takes the connections ``ARGV[2], ARGV[4] ...`` if each is still owned by
``ARGV[3], ARGV[5] ...`` and that owner's lease has expired, and ``ARGV[1]``'s has not."""


def group_scope(group: str) -> str:
    """The scope of the group's stream and stored specs in :mod:`protocol`'s keeper-scoped names
    (a keeper ID may not start with ``group:``, so it never shares them with a lone keeper)."""
    return f"group:{group}"


def leases_key(group: str) -> str:
    return f"bk:irc:group:{group}:leases"


def owners_key(group: str) -> str:
    return f"bk:irc:group:{group}:owners"


def resume_key(group: str) -> str:
    return f"bk:irc:group:{group}:resume"


def keeper_group(keeper_id: str) -> str:
    """The consumer group one keeper of a group reads the group's command stream through."""
    return f"keeper:{keeper_id}"


async def live_members(redis: Redis, group: str) -> list[str]:
    return sorted(str(member) for member in await _script(redis, LIVE, [leases_key(group)], []))


async def _script(redis: Redis, script: str, keys: list[str], args: list[str]) -> Any:
    return await cast(Any, redis.eval(script, len(keys), *keys, *args))


class Placement:
    """The bridge's side: a new connection ID is placed on the ring of the live keepers before
    its ``open`` is appended (so whichever keeper reads it knows at once whether it is its own)."""

    def __init__(self, redis: Redis, group: str) -> None:
        self._redis = redis
        self._group = group
        self._stream = p.commands_stream(group_scope(group))

    async def place(self, conn: str) -> str:
        """The connection's keeper (placed now if new). With no live keeper it waits for one (the
        open could go nowhere); commands behind it wait with it, as they would for a lone keeper."""
        warned = False
        while True:
            live = await live_members(self._redis, self._group)
            choice = HashRing(live).owner(conn)
            if choice is not None:
                keys = [owners_key(self._group), resume_key(self._group), self._stream]
                return str(await _script(self._redis, ASSIGN, keys, [conn, choice]))
            if not warned:
                log.warning("no keeper of group %r is alive: %s waits for one", self._group, conn)
                warned = True
            await asyncio.sleep(streams.RETRY_S)


async def list_group(client: KeeperClient, group: str, wait_s: float) -> p.Result:
    """A network's live connections, asked of each live keeper of the group (each answers for its
    own); one that does not answer in time (dying, its lease not yet expired) is left out: its
    connections are opened again by the core when used, and so taken from it later."""
    members = await live_members(client.redis, group)

    async def ask(member: str) -> p.Result:
        return await asyncio.wait_for(client.command("list", "", {"network": client.network, "keeper": member}),
                                      wait_s)

    answers = await asyncio.gather(*(ask(member) for member in members), return_exceptions=True)
    merged: dict[str, dict[str, Any]] = {"connections": {}, "specs": {}}
    for member, answer in zip(members, answers, strict=True):
        if isinstance(answer, BaseException) or not answer.ok:
            log.warning("%s: keeper %r of group %r did not list its connections: %s", client.network, member,
                        group, answer if isinstance(answer, BaseException) else answer.error)
            continue
        data = p.resolve_isupports(answer.data)  # (each keeper's references are its own)
        for part in merged:
            merged[part].update(data.get(part, {}))
    return p.Result("", True, data=merged)


@dataclass(frozen=True)
class Taken:
    conn: str
    was: str
    """The keeper whose lease expired (its heartbeat dates the gap on IRC)."""
    resume: str
    """Where this connection's commands are done again from (an ``XRANGE`` start)."""


class Membership:
    """A keeper's side: its lease, and what it owns."""

    def __init__(self, redis: Redis, group: str, keeper_id: str, lease_seconds: float) -> None:
        self._redis = redis
        self.group = group
        self.keeper_id = keeper_id
        self.lease_ms = int(lease_seconds * 1000)
        self.owned: set[str] = set()

    async def renew(self) -> bool:
        """Renew the lease; False when it had expired (the group may have taken our connections)."""
        return bool(await _script(self._redis, RENEW, [leases_key(self.group)], [self.keeper_id, str(self.lease_ms)]))

    async def leave(self) -> None:
        """A clean stop: our connections close with us, so the others may take them at once."""
        await cast(Any, self._redis.zrem(leases_key(self.group), self.keeper_id))

    async def learn_owned(self) -> set[str]:
        """Read again which connections are ours (at start, and after our lease lapsed)."""
        owners = await streams.hash_all(self._redis, owners_key(self.group))
        self.owned = {conn for conn, owner in owners.items() if owner == self.keeper_id}
        return self.owned

    async def ours(self, conns: set[str]) -> set[str]:
        """Which of ``conns`` are ours: the ones we know, and those the bridge placed on us since."""
        unknown = sorted(conns - self.owned)
        if unknown:
            owners = await cast(Any, self._redis.hmget(owners_key(self.group), unknown))
            self.owned.update(conn for conn, owner in zip(unknown, owners, strict=True) if owner == self.keeper_id)
        return conns & self.owned

    async def take(self) -> list[Taken]:
        """Take, atomically, what the ring of the live keepers gives us of dead keepers' connections."""
        owners = await streams.hash_all(self._redis, owners_key(self.group))
        wanted = to_take(owners, await live_members(self._redis, self.group), self.keeper_id)
        if not wanted:
            return []
        pairs = [item for conn in wanted for item in (conn, owners[conn])]
        taken = [str(conn) for conn in await _script(
            self._redis, TAKE, [owners_key(self.group), leases_key(self.group)], [self.keeper_id, *pairs])]
        if not taken:
            return []
        starts = await cast(Any, self._redis.hmget(resume_key(self.group), taken))
        self.owned.update(taken)
        return [Taken(conn, owners[conn], str(start or "-")) for conn, start in zip(taken, starts, strict=True)]

    async def resumes(self, conns: list[str]) -> list[str]:
        starts = await cast(Any, self._redis.hmget(resume_key(self.group), conns)) if conns else []
        return [str(start or "-") for start in starts]

    async def position(self, stream: str, group: str) -> str:
        """How far our consumer group has read the stream (what is after it, we read anyway)."""
        for info in await cast(Any, self._redis.xinfo_groups(stream)):
            if str(info.get("name")) == group:
                return str(info.get("last-delivered-id"))
        return "0-0"


def from_start(entry: str, start: str) -> bool:
    """Whether stream entry ``entry`` is at or after the ``XRANGE`` start ``start``."""
    if start == "-":
        return True
    if start.startswith("("):
        return p.stream_id_after(entry, start[1:])
    return entry == start or p.stream_id_after(entry, start)


async def commands_between(redis: Redis, stream: str, starts: dict[str, str], upto: str) -> list[streams.Entry]:
    """The entries of the connections in ``starts`` from each one's start up to ``upto`` (inclusive),
    in stream order: what a new owner does again."""
    if not starts or upto == "0-0":
        return []
    ids = [start.lstrip("(") for start in starts.values()]
    cursor = "-" if "-" in ids else min(ids, key=_key)  # inclusive: ``from_start`` skips what is not wanted
    found: list[streams.Entry] = []
    while True:
        chunk = cast(Any, await redis.xrange(stream, min=cursor, max=upto, count=1000))
        for entry, fields in chunk:
            conn = str(fields.get("conn", ""))
            if conn in starts and from_start(str(entry), starts[conn]):
                found.append((str(entry), dict(fields)))
        if len(chunk) < 1000:
            return found
        cursor = f"({chunk[-1][0]}"


def _key(entry: str) -> tuple[int, int]:
    ms, _, seq = entry.partition("-")
    return int(ms), int(seq or 0)


__all__ = [
    "Membership",
    "Placement",
    "Taken",
    "commands_between",
    "from_start",
    "group_scope",
    "keeper_group",
    "leases_key",
    "list_group",
    "live_members",
    "owners_key",
    "resume_key",
]
