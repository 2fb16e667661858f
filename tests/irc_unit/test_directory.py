"""The directory of a bridge's IRC networks: whichever IRC connector the framework asks answers
for all the networks of its bridge (third-party lookups, the one ``nick`` command), and a second
bridge in the same process has a directory of its own."""

from __future__ import annotations

import dataclasses

from bridgekit import RemoteUserID
from bridges.irc.connector import IrcConnector
from bridges.irc.directory import directory_of
from bridges.irc.settings import IrcSettings
from tests.support.contexts import hand_built_context


def registered(connector: IrcConnector) -> IrcConnector:
    directory_of(connector.ctx).add(connector)  # as the connector does when it starts
    return connector


async def test_the_networks_of_one_bridge_share_a_directory_and_another_bridge_has_its_own() -> None:
    libera = hand_built_context("libera", IrcSettings(server="irc.libera.test"))
    oftc = dataclasses.replace(libera, name="oftc", settings=IrcSettings(server="irc.oftc.test"))
    elsewhere = hand_built_context("libera", IrcSettings(server="irc.elsewhere.test"))
    first, second, other = (registered(IrcConnector(ctx)) for ctx in (libera, oftc, elsewhere))

    described = await second.thirdparty_protocol("irc")
    assert described is not None
    assert [(i["network_id"], i["desc"]) for i in described["instances"]] == [
        ("libera", "libera (irc.libera.test)"), ("oftc", "oftc (irc.oftc.test)")]
    alone = await other.thirdparty_protocol("irc")
    assert alone is not None
    assert [i["desc"] for i in alone["instances"]] == ["libera (irc.elsewhere.test)"]

    users = await second.thirdparty_users("irc", {"network": "libera", "nickname": "Bob"})
    assert [user["userid"] for user in users] == [libera.ghost_for(RemoteUserID("bob"))]
    assert await second.thirdparty_users("irc", {"network": "libera", "nickname": "#notanick"}) == []
    locations = await first.thirdparty_locations("irc", {"network": "oftc", "channel": "#Chat"})
    assert [location["alias"] for location in locations] == ["#_#chat:example.org"]

    # One `nick` (and one of each IRC command) per bridge, given to the first network that asks
    # (and to it again).
    assert [[command.name for command in c.commands()][:1] for c in (first, second, other, first)] == [
        ["nick"], [], ["nick"], ["nick"]]
    assert len(first.commands()) == len(other.commands()) == 11
