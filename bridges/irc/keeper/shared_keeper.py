"""What a keeper of a group does beyond a lone keeper's (:mod:`bridges.irc.keeper.sharing`):

- at start (:func:`rejoin`), make again the connections that are still its own (its lease had not
  expired, or nobody had taken them yet) and do their unfinished commands again, from each one's
  resume point; what it had taken of other connections' commands it lets go (acknowledges);
- of each batch read from the group's command stream (:func:`do_ours`), do the commands of its
  own connections, in order, and acknowledge the rest unread (their owner does them);
- between batches (:func:`group_duties`), every third of the lease, take what the ring gives it
  of dead keepers' connections (made again paced, their unfinished commands done again in order
  before anything newer), and give up, when its own lease had lapsed, what the group took meanwhile.

All of it runs in the keeper's one reading task: a connection changes hands only between batches,
so its commands are done in stream order whoever does them.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any, cast

from bridges.irc.keeper import protocol as p
from bridges.irc.keeper import streams
from bridges.irc.keeper.sharing import Membership, Taken, commands_between

if TYPE_CHECKING:
    from bridges.irc.keeper.server import Keeper

log = logging.getLogger(__name__)

BATCH = 200


def _membership(keeper: Keeper) -> Membership:
    assert keeper.membership is not None  # (only a group's keeper calls these)
    return keeper.membership


async def rejoin(keeper: Keeper, went_down: float | None) -> None:
    membership = _membership(keeper)
    owned = sorted(await membership.learn_owned())
    await _let_go_of_pending(keeper)
    keeper.position = await membership.position(keeper.commands_stream, keeper.consumer_group)
    specs = await _specs(keeper, owned)
    for spec in specs.values():
        await keeper.hold_again(spec, went_down)
    if specs:
        log.info("making %d connection(s) of ours again", len(specs))
    await _do_again(keeper, dict(zip(owned, await membership.resumes(owned), strict=True)))


async def do_ours(keeper: Keeper, entries: list[streams.Entry]) -> None:
    if not entries:
        return
    conns = {fields.get("conn", "") for _entry, fields in entries}
    ours = await _membership(keeper).ours(conns - {""})
    others = []
    for entry, fields in entries:
        if fields.get("conn", "") in ours or not fields.get("conn"):  # ("list" names its keeper)
            await keeper.command(entry, fields)
        else:
            others.append(entry)
    keeper.position = entries[-1][0]
    if others:
        await keeper.redis.xack(keeper.commands_stream, keeper.consumer_group, *others)


async def group_duties(keeper: Keeper) -> None:
    membership = _membership(keeper)
    if keeper.lapsed:
        keeper.lapsed = False
        await _give_up_what_was_taken(keeper)
    now = time.monotonic()
    if now < keeper.next_scan:
        return
    keeper.next_scan = now + membership.lease_ms / 3000
    taken = await membership.take()
    if taken:
        await _take_over(keeper, taken)


async def _take_over(keeper: Keeper, taken: list[Taken]) -> None:
    """Make the taken connections again (paced; a bot's network told of the gap since its last
    keeper's last heartbeat), then do their unfinished commands, in order."""
    specs = await _specs(keeper, [t.conn for t in taken])
    for t in taken:
        spec = specs.get(t.conn)
        if spec is not None:
            await keeper.hold_again(spec, await _heartbeat(keeper, t.was))
    for was in sorted({t.was for t in taken}):
        log.warning("the lease of keeper %r expired: took %d of its connection(s)", was,
                    len([t for t in taken if t.was == was]))
    await _do_again(keeper, {t.conn: t.resume for t in taken})


async def _do_again(keeper: Keeper, starts: dict[str, str]) -> None:
    """The commands of these connections read (by us, or never) up to where we have read, from
    each one's resume point; what is after, we read next anyway."""
    again = await commands_between(keeper.redis, keeper.commands_stream, starts, keeper.position)
    if again:
        log.info("doing %d unfinished command(s) of %d connection(s) again", len(again), len(starts))
    for entry, fields in again:
        await keeper.command(entry, fields)


async def _give_up_what_was_taken(keeper: Keeper) -> None:
    """Our lease had lapsed and the group may have taken some of ours: whatever is no longer ours
    is closed here (its new owner makes it again; two of one nick on IRC would be worse)."""
    owned = await _membership(keeper).learn_owned()
    for conn in [conn for conn in keeper.held if conn not in owned]:
        held = keeper.held.pop(conn)
        log.warning("%s: taken by another keeper while our lease had lapsed; closing ours", conn)
        await held.close("")


async def _let_go_of_pending(keeper: Keeper) -> None:
    """Acknowledge what this keeper's consumer group had taken before a restart: its own
    connections' unfinished commands are done again from their resume points instead."""
    while True:
        entries = await streams.read_group(keeper.redis, keeper.consumer_group, keeper.keeper_id,
                                           keeper.commands_stream, "0", count=BATCH, block_ms=None)
        if not entries:
            return
        await keeper.redis.xack(keeper.commands_stream, keeper.consumer_group, *[entry for entry, _f in entries])


async def _specs(keeper: Keeper, conns: list[str]) -> dict[str, p.ConnectionSpec]:
    if not conns:
        return {}
    texts = await cast(Any, keeper.redis.hmget(p.connections_key(keeper.scope), conns))
    return {conn: p.ConnectionSpec.from_json(str(text)) for conn, text in zip(conns, texts, strict=True) if text}


async def _heartbeat(keeper: Keeper, keeper_id: str) -> float | None:
    stored = await keeper.redis.get(p.heartbeat_key(keeper_id))
    try:
        return float(str(stored)) if stored is not None else None
    except ValueError:
        return None


__all__ = ["do_ours", "group_duties", "rejoin"]
