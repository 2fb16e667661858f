"""Puppeted IRC accounts end to end: a real Synapse, a real `bridgekit run`, InspIRCd linked to Atheme
(NickServ, SaslServ), and people on IRC with plain clients. Alice logs in to her own IRC account in
her management room; on IRC she is then herself: her nick without ``[m]``, identified."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import pytest

from bridgekit.demo.irc_client import IrcTestClient, Line
from bridgekit.demo.matrix_client import MatrixTestClient
from bridgekit.testing.bridge_process import BridgeProcess
from bridgekit.testing.matrix_steps import from_sender, management_room, notice
from bridgekit.testing.synapse import AppserviceSlot
from bridgekit.testing.synapse_harness import MakeMatrixUser, RunBridge, SynapseHarness
from tests.irc_fixtures import MakeIrcClient
from tests.servers.atheme import ServicesIRCd
from tests.servers.tcp_cutter import TcpCutter
from tests.services_fixtures import Account, MakeAccount, Services

pytestmark = pytest.mark.integration

Event = dict[str, Any]
StartIrc = Callable[..., Awaitable[BridgeProcess]]


@pytest.fixture
def channel() -> str:
    return f"#acct{secrets.token_hex(3)}"


@pytest.fixture
def start_irc(slot: AppserviceSlot, run_bridge: RunBridge, services: Services, synapse: SynapseHarness) -> StartIrc:
    async def start(server: ServicesIRCd | TcpCutter | None = None, **settings: Any) -> BridgeProcess:
        target = server if server is not None else services.hub
        return await run_bridge(
            slot, "irc",
            connector={"server": target.host, "port": target.port, "tls": False, "lines_per_second": 0,
                       "bot_nick": f"bridge{secrets.token_hex(2)}", **settings},
            permissions={synapse.server_name: "admin"},
            double_puppet={"registration": str(synapse.double_puppet_registration)},
        )

    return start


async def log_in(
    alice: MatrixTestClient, slot: AppserviceSlot, account: Account, password: str | None = None, *,
    dm: str | None = None,
) -> str:
    """Alice sends ``login <network>`` in her management room and answers; returns the bot's answer."""
    if dm is None:
        dm = await management_room(alice, slot)
    await alice.send_text(dm, f"login {slot.connector}")
    await alice.wait_for_event(dm, notice(slot.bot_user_id, "account name"))
    await alice.send_text(dm, account.name)
    await alice.wait_for_event(dm, notice(slot.bot_user_id, "password?"))
    await alice.send_text(dm, password if password is not None else account.password)
    answer = await alice.wait_for_event(dm, lambda e: notice(slot.bot_user_id, "Logged in")(e)
                                        or notice(slot.bot_user_id, "failed")(e))
    return str(answer["content"]["body"])


async def portal(alice: MatrixTestClient, slot: AppserviceSlot, channel: str) -> str:
    room_id = await alice.join(slot.alias(channel))
    await alice.wait_for_membership(room_id, alice.user_id)
    return room_id


def said_in(channel: str, containing: str) -> Callable[[Line], bool]:
    return lambda line: line.command in ("PRIVMSG", "NOTICE") and line.target == channel and containing in line.text


def whois_account(nick: str) -> Callable[[Line], bool]:
    return lambda line: line.command == "330" and len(line.params) > 2 and line.params[1].lower() == nick.lower()


async def identified_client(make_irc_client: MakeIrcClient, server: ServicesIRCd, account: Account) -> IrcTestClient:
    """A second, ordinary IRC client of ``account`` (another nick), identified with NickServ."""
    phone = await make_irc_client("phone", server=server, caps=["message-tags"])
    await phone.privmsg("NickServ", f"IDENTIFY {account.name} {account.password}")
    await phone.wait_for(lambda line: line.command == "900")
    return phone


async def test_sasl_login_own_nick_identified_and_double_puppet(
    start_irc: StartIrc, slot: AppserviceSlot, services: Services, make_matrix_user: MakeMatrixUser,
    make_irc_client: MakeIrcClient, make_account: MakeAccount, channel: str,
) -> None:
    bridge = await start_irc(virtual_users=True)
    account = await make_account("alice")
    alice = await make_matrix_user("alice")
    bob = await make_irc_client("bob", server=services.hub)
    await bob.join(channel)
    room_id = await portal(alice, slot, channel)

    assert (await log_in(alice, slot, account)).startswith(f"Logged in to {slot.connector} as {account.name}")
    await alice.send_text(room_id, "hello as myself")
    said = await bob.wait_for(said_in(channel, "hello as myself"))
    assert said.source == account.name  # her own nick: no [m], no suffix
    assert said.text == "hello as myself"  # not relayed as <alice>
    bob.send_raw(f"WHOIS {account.name}")
    whois = await bob.wait_for(whois_account(account.name))
    assert whois.params[2].lower() == account.name.lower()  # identified: "is logged in as"

    # Double puppet: what she types in another IRC client logged into her account (another nick)
    # appears on Matrix from her own Matrix ID, and is not sent back to IRC.
    phone = await identified_client(make_irc_client, services.hub, account)
    await phone.join(channel)
    await phone.privmsg(channel, "typed on my phone")
    mine = await alice.wait_for_event(room_id, lambda e: from_sender(alice.user_id)(e)
                                      and e["content"].get("body") == "typed on my phone")
    assert mine["content"]["net.bridgekit.double_puppet_source"] == slot.connector
    await alice.send_text(room_id, "after my phone")
    await bob.wait_for(said_in(channel, "after my phone"))
    assert len(bob.lines(said_in(channel, "typed on my phone"))) == 1
    assert len(bob.lines(said_in(channel, "hello as myself"))) == 1

    # Someone else who is not identified takes no one's identity: bob's lines stay bob's ghost.
    await bob.privmsg(channel, "just bob")
    from_bob = await alice.wait_for_event(room_id, lambda e: e.get("content", {}).get("body") == "just bob")
    assert from_bob["sender"] != alice.user_id

    # The login survives a restart (the core connects it again); logout closes it and forgets it.
    await bridge.restart()
    await alice.send_text(room_id, "still me after a restart")
    again = await bob.wait_for(said_in(channel, "still me after a restart"))
    assert again.source == account.name
    dm = await management_room(alice, slot)
    await alice.send_text(dm, f"logout {slot.connector}")
    await alice.wait_for_event(dm, notice(slot.bot_user_id, f"Logged out of {slot.connector}"))
    await bob.wait_for(lambda line: line.command == "QUIT" and line.is_from(account.name))


async def test_a_wrong_password_gives_one_clear_notice_after_one_connection(
    start_irc: StartIrc, slot: AppserviceSlot, services: Services, make_matrix_user: MakeMatrixUser,
    make_account: MakeAccount,
) -> None:
    async with TcpCutter(services.hub.host, services.hub.port) as relay:
        await start_irc(relay, virtual_users=True)
        account = await make_account("wrongpw")
        alice = await make_matrix_user("alice")
        dm = await management_room(alice, slot)
        before = relay.connections_made  # the bot's

        answer = await log_in(alice, slot, account, password="not my password", dm=dm)
        assert answer == f"Login to {slot.connector} failed: SASL: SASL authentication failed"
        # Later commands are answered; still one login attempt, and one failure notice in the room.
        await alice.send_text(dm, "logins")
        await alice.wait_for_event(dm, notice(slot.bot_user_id, "not logged in"))
        assert relay.connections_made - before == 1
        events = await alice.room_messages(dm)
        failures = [e for e in events if "failed" in e.get("content", {}).get("body", "")]
        assert len(failures) == 1


async def test_nickserv_identify_where_sasl_is_not_offered(
    start_irc: StartIrc, slot: AppserviceSlot, services: Services, make_matrix_user: MakeMatrixUser,
    make_irc_client: MakeIrcClient, make_account: MakeAccount, channel: str,
) -> None:
    await start_irc(services.no_sasl, virtual_users=False)
    account = await make_account("nsalice")
    alice = await make_matrix_user("alice")
    bob = await make_irc_client("bob", server=services.no_sasl)
    await bob.join(channel)
    room_id = await portal(alice, slot, channel)
    assert (await log_in(alice, slot, account)).startswith(f"Logged in to {slot.connector} as {account.name}")
    await alice.send_text(room_id, "identified the old way")
    said = await bob.wait_for(said_in(channel, "identified the old way"))
    assert said.source == account.name
    bob.send_raw(f"WHOIS {account.name}")
    await bob.wait_for(whois_account(account.name))
    # (NickServ's refusal of a wrong password: tests/irc_services/test_link_identifies.py)


async def test_her_connection_stays_while_she_is_away_and_comes_back_after_a_kill(
    start_irc: StartIrc, slot: AppserviceSlot, services: Services, make_matrix_user: MakeMatrixUser,
    make_irc_client: MakeIrcClient, make_account: MakeAccount, channel: str,
) -> None:
    # Virtual connections idle out after 3 s (join_on_portal_join off: with it, carol's would stay
    # while she is in the portal); her own (logged-in) connection never does.
    await start_irc(virtual_users=True, virtual_idle_minutes=0.05, join_on_portal_join=False)
    account = await make_account("bouncer")
    alice, carol = await make_matrix_user("alice"), await make_matrix_user("carol")
    bob = await make_irc_client("bob", server=services.hub)
    await bob.join(channel)
    watcher = await make_irc_client("watch", server=services.hub, caps=["server-time"])
    await watcher.join(channel)
    room_id = await portal(alice, slot, channel)
    await log_in(alice, slot, account)
    await alice.send_text(room_id, "going away now")
    await bob.wait_for(said_in(channel, "going away now"))

    # Carol, not logged in, speaks through a virtual connection: once it has idled out, so would
    # have alice's, were it not her own.
    assert await portal(carol, slot, channel) == room_id
    await carol.send_text(room_id, "hi, brb")
    carol_said = await bob.wait_for(said_in(channel, "hi, brb"))
    await bob.wait_for(lambda line: line.command == "QUIT" and line.is_from(str(carol_said.source)))
    lines = [f"while you were away {i}" for i in range(3)]
    for text in lines:
        await bob.privmsg(channel, text)
    assert not bob.lines(lambda line: line.command in ("QUIT", "PART") and line.is_from(account.name))

    # Alice comes back: the lines are in the room, in order, with the IRC server's times.
    await alice.wait_for_event(room_id, lambda e: e.get("content", {}).get("body") == lines[-1])
    events = [e for e in await alice.room_messages(room_id) if e.get("content", {}).get("body") in lines]
    assert [e["content"]["body"] for e in events] == lines
    heard = await watcher.wait_for_count(said_in(channel, "while you were away"), len(lines))
    said_at = [int(datetime.fromisoformat(line.tags["time"].replace("Z", "+00:00")).timestamp() * 1000)
               for line in heard]
    assert [event["origin_server_ts"] for event in events] == said_at  # IRCv3 server-time
    await alice.send_text(room_id, "back")
    back = await bob.wait_for(said_in(channel, "back"))
    assert back.source == account.name
    assert len(bob.lines(lambda line: line.command == "JOIN" and line.is_from(account.name))) == 1

    # An IRC operator kills her connection: it comes back by itself, identified, into the channel.
    bob.send_raw("OPER oper operpw")
    await bob.wait_for(lambda line: line.command == "381")
    since = bob.mark()
    bob.send_raw(f"KILL {account.name} :testing the bouncer")
    await bob.wait_for(lambda line: line.command == "JOIN" and line.is_from(account.name), since=since)
    bob.send_raw(f"WHOIS {account.name}")
    await bob.wait_for(whois_account(account.name), since=since)
    await alice.send_text(room_id, "killed and back")
    assert (await bob.wait_for(said_in(channel, "killed and back"))).source == account.name
