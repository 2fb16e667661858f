"""A network's keeper whose Redis cannot be reached (``kept_network.py``): pairing fails with
:class:`KeeperUnreachable`, an ``OSError`` the connector retries as an absent IRC server; its
message names Redis's address and never the URL's password; nothing is opened meanwhile."""

from __future__ import annotations

import socket
from typing import cast

import pytest

from bridges.irc.keeper.kept_network import KeeperUnreachable, KeptNetwork
from bridges.irc.settings import IrcSettings, KeeperSettings
from bridges.irc.user_connections import UserConnections
from tests.irc_unit.stand_in import session_setup
from tests.support.contexts import hand_built_context


def closed_port() -> int:
    """A loopback port nothing listens on (taken, then let go)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


async def test_redis_out_of_reach_is_a_keeper_unreachable_naming_its_address_not_its_password() -> None:
    port = closed_port()
    settings = IrcSettings(server="irc.test", keeper=KeeperSettings(redis_url=f"redis://:hunter2@127.0.0.1:{port}/0"))
    assert settings.keeper is not None
    setup = session_setup()
    kept = KeptNetwork(hand_built_context("net", settings), settings, settings.keeper, setup.records, setup.network)
    try:
        with pytest.raises(KeeperUnreachable, match=rf"Redis at 127\.0\.0\.1:{port} is out of reach") as raised:
            await kept.start(cast(UserConnections, None))  # (adoption is never reached)
        assert isinstance(raised.value, OSError)
        assert "hunter2" not in str(raised.value)
        link = kept.link("alice", ident="a", realname="r", owner=None, caps=(), next_nick=str)
        with pytest.raises(ConnectionError, match="not paired with the IRC keeper yet"):
            await link.connect()  # no open command is queued to surprise the keeper once Redis is back
    finally:
        await kept.stop()
