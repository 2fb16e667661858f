"""A puppet's account refused at a later reconnect in the keeper (the password changed on IRC):
the keeper stops the connection and tells the bridge (``held.py``, a ``keeper-refused`` entry);
the bridge's ``KeptLink`` makes that the connection's disconnect, and the puppet's reconnect ends
in the refusal: one ``bad-credentials`` report with the server's words, as without a keeper, and
the refused password is not sent to the keeper (or the server) again."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, cast

import irc.client

from bridgekit import BridgeContext, PuppetLogin, RemoteUserID, SessionState, UserID
from bridgekit.connector import MatrixAPI, RemoteSink
from bridgekit.testing.waiting import eventually
from bridges.irc.account_login import AccountLogin
from bridges.irc.connection_state import ConnectionState
from bridges.irc.keeper import protocol as p
from bridges.irc.keeper.client import KeeperClient
from bridges.irc.keeper.held import HeldConnection, Outcome
from bridges.irc.keeper.kept_link import KeptLink
from bridges.irc.link import AccountRefused, IrcLink
from bridges.irc.puppets import Puppets
from tests.irc_unit.stand_in import Recorder, server_says, session_setup
from tests.irc_unit.test_puppets import Reports

ALICE = UserID("@alice:example.org")
REASON = "SASL: SASL authentication failed"
SPEC = p.ConnectionSpec("n/~puppet/@alice:example.org", "n", "irc.test", 6667, False, "alice", "a", "alice")


class Published:
    def __init__(self) -> None:
        self.events: list[tuple[str, irc.client.Event]] = []

    def publish(self, conn: str, event: irc.client.Event) -> None:
        self.events.append((conn, event))

    def outcome(self, outcome: Outcome) -> None: ...
    def channels_changed(self, conn: str, channels: list[str]) -> None: ...
    async def already_sent(self, network: str, key: str) -> bool:
        return False

    async def connect_turn(self) -> None: ...


async def test_the_keeper_tells_the_bridge_when_a_reconnect_is_refused_and_stops_there() -> None:
    hooks = Published()
    held = HeldConnection(SPEC, hooks, password=None, account=AccountLogin("alice", "old-password"))
    wire = Recorder()
    held.link.attach(wire)
    server_says(held.link, "welcome", "server", "alice", ["Welcome"])
    held.link.state.identification = None  # (identified: what the welcome began is not this test's)
    await held.ensure_up()
    attempts: list[int] = []

    async def refused(timeout: float = 30.0) -> None:  # noqa: ASYNC109 (the IrcLink.connect signature)
        attempts.append(1)
        raise AccountRefused(REASON)

    held.link.connect = refused  # type: ignore[method-assign]  # the server now refuses the old password
    wire.up = False
    held.link.hear(irc.client.Event("disconnect", None, None, []))  # the server hung up


    def told() -> list[tuple[str, str | None]]:
        return [(conn, p.refusal_of(event)) for conn, event in hooks.events if event.type == p.REFUSED_EVENT]

    await eventually(told, what="the keeper to tell the bridge")
    assert told() == [(SPEC.conn, REASON)]
    assert held.closed
    assert held.refused == REASON
    assert attempts == [1]  # tried once, never again with that password


class KeeperAnswers:
    """The bridge's end of the streams: ``open`` answered as the keeper does for a live connection."""

    keeper_id = "k"
    paired = True

    def __init__(self) -> None:
        self.ops: list[str] = []

    def command(self, op: p.Op, conn: str, data: dict[str, Any], *, answer: bool = True) -> asyncio.Future[p.Result]:
        self.ops.append(op)
        live = ConnectionState("alice")
        live.registered = True
        done: asyncio.Future[p.Result] = asyncio.get_running_loop().create_future()
        done.set_result(p.Result("r", True, data=p.snapshot(live)))
        return done


async def test_the_bridge_ends_the_puppet_with_one_bad_credentials_report_as_without_a_keeper() -> None:
    client = KeeperAnswers()
    links: list[KeptLink] = []

    def new_link(nick: str, **_: Any) -> IrcLink:
        links.append(KeptLink(cast(KeeperClient, client), SPEC, persist=True, timeout=5))
        return cast(IrcLink, links[-1])

    setup, reports = session_setup(), Reports()
    ctx = BridgeContext(name="n", settings=setup.settings, matrix=cast(MatrixAPI, None),
                        bot_user_id=UserID("@bot:example.org"), server_name="example.org", ghost_prefix="_",
                        alias_prefix="_", log=logging.getLogger("test"), remote=cast(RemoteSink, reports))
    puppets = Puppets(ctx, setup, new_link)
    login = PuppetLogin(RemoteUserID("alice"), "alice", {"account": "alice", "password": "old-password"})
    session = await puppets.connect(ALICE, login)
    assert links[0].connected

    handled = links[0].heard(p.refused_event(REASON))  # what KeptNetwork reads from the inbound stream
    assert handled is not None
    assert handled.type == "disconnect"
    assert not session.link.connected
    await puppets.dropped(session)  # what the connector does with a puppet link's disconnect

    await eventually(lambda: any(state is SessionState.BAD_CREDENTIALS for _, state, _ in reports.seen))
    assert [(state, detail) for _, state, detail in reports.seen] == [
        (SessionState.TRANSIENT_DISCONNECT, "the IRC server hung up; reconnecting"),
        (SessionState.BAD_CREDENTIALS, REASON),
    ]  # the core tells the user once: the transient state is only told if it lasts
    assert client.ops == ["open"]  # the refused password is not sent to the keeper again


async def test_a_refusal_answering_an_open_still_waiting_is_left_to_that_answer() -> None:
    link = KeptLink(cast(KeeperClient, KeeperAnswers()), SPEC, persist=True, timeout=5)
    assert link.heard(p.refused_event(REASON)) is None  # (connect raises it from the keeper's answer)
    assert p.refusal_of(irc.client.Event("privmsg", None, "#a", ["keeper-refused"])) is None
