"""What the server says about itself at registration (ISUPPORT) and what the bridge keeps of it.

Taken out of the connector: the grammar of nicks and channels follows the server's NICKLEN,
CHANTYPES and CHANNELLEN at every connect, but the CASEMAPPING is recorded at the first connect
and never changed silently afterwards, because ghost and portal IDs are built from folded names."""

from __future__ import annotations

from bridgekit import BridgeContext
from bridges.irc.link_protocol import Link
from bridges.irc.network import IrcNetwork
from bridges.irc.records import IrcRecords


async def learn_isupport(ctx: BridgeContext, records: IrcRecords, network: IrcNetwork, link: Link) -> None:
    mapping = link.isupport.get("CASEMAPPING", "").lower()
    if mapping and mapping != network.casemapping:
        await record_casemapping(ctx, records, network, mapping)
    network.grammar = network.grammar.with_isupport(link.isupport, casemapping=network.casemapping)


async def record_casemapping(ctx: BridgeContext, records: IrcRecords, network: IrcNetwork, mapping: str) -> None:
    recorded = await records.get("casemapping", None)
    if recorded is None:
        await records.set("casemapping", mapping)
        network.casemapping = mapping
        ctx.log.info("%s uses CASEMAPPING %s (recorded)", network.name, mapping)
    elif recorded != mapping:
        # Changing it would move every ghost and portal to new IDs: never silently.
        ctx.log.warning(
            "%s now says CASEMAPPING %s but %s was recorded at first connect; keeping %s (ghost and "
            "portal IDs depend on it)", network.name, mapping, recorded, recorded,
        )


__all__ = ["learn_isupport", "record_casemapping"]
