"""An IRCv3 netsplit batch from the wire to the Matrix side (``netsplits.py``): a real ``IrcLink``
against a tiny scripted IRC server on loopback (InspIRCd 3, the test network's server, sends no
netsplit batches), the lines it hears sifted as the connector sifts the bot's. The QUITs in the
batch give no split-style reason: the batch alone tells the split."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import irc.client

from bridgekit import BridgeContext, RemoteEvent, RemoteMember, RemoteUserID
from bridges.irc import inbound, lines
from bridges.irc.link import IrcLink
from bridges.irc.netsplits import BATCH_CAP, SplitWatch
from bridges.irc.network import IrcNetwork

NICK = "bridge"
SPLIT = [
    "@batch=ns1 :bob!b@leaf.example.net QUIT :Remote host closed the connection",
    "@batch=ns1 :carol!c@leaf.example.net QUIT :Remote host closed the connection",
]
SCRIPT = [
    f":hub.example.net 001 {NICK} :Welcome",
    f":{NICK}!b@h JOIN #room",
    f":hub.example.net 353 {NICK} = #room :{NICK} bob carol dave",
    ":hub.example.net BATCH +ns1 netsplit hub.example.net leaf.example.net",
    *SPLIT,
    ":hub.example.net BATCH -ns1",
    ":dave!d@hub.example.net QUIT :Remote host closed the connection",  # outside the batch: an ordinary quit
    ":hub.example.net BATCH +nj1 netjoin hub.example.net leaf.example.net",
    "@batch=nj1 :bob!b@leaf.example.net JOIN #room",
    ":hub.example.net BATCH -nj1",
    f":hub.example.net PONG hub.example.net :{NICK}-done",
]


class ScriptedServer:
    """Answers NICK/USER with :data:`SCRIPT`'s welcome, ``CAP REQ :batch`` with an ACK and the
    rest of the script; records what the client wrote."""

    def __init__(self) -> None:
        self.heard: list[str] = []
        self.hung_up = asyncio.Event()

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while line := (await reader.readline()).decode().rstrip("\r\n"):
            self.heard.append(line)
            if line.startswith("USER "):
                writer.write(f"{SCRIPT[0]}\r\n".encode())
            elif line == f"CAP REQ :{BATCH_CAP}":
                writer.write(f":hub.example.net CAP {NICK} ACK :{BATCH_CAP}\r\n".encode())
                writer.write("".join(f"{said}\r\n" for said in SCRIPT[1:]).encode())
            await writer.drain()
        writer.close()
        self.hung_up.set()


class Presence:
    def __init__(self, changes: list[tuple[str, str]], ghost: str) -> None:
        self._changes, self._ghost = changes, ghost

    async def set_presence(self, presence: str) -> None:
        self._changes.append((self._ghost, presence))


class MatrixSide:
    """What SplitWatch uses of the bridge: presence of ghosts, and emit for withheld leaves."""

    name = "net"

    def __init__(self) -> None:
        self.presence: list[tuple[str, str]] = []
        self.matrix = self

    def intent(self, ghost: str) -> Presence:
        return Presence(self.presence, ghost)

    def ghost_for(self, user: RemoteUserID) -> str:
        return f"@_net_{user}:example.org"

    async def emit(self, event: Any) -> None:
        raise AssertionError(f"no leave is let go within the window: {event}")


async def test_quits_in_a_netsplit_batch_are_withheld_and_a_netjoin_restores_silently() -> None:
    server = ScriptedServer()
    listening = await asyncio.start_server(server.serve, "127.0.0.1", 0)
    port = listening.sockets[0].getsockname()[1]
    heard: asyncio.Queue[irc.client.Event] = asyncio.Queue()
    link = IrcLink(host="127.0.0.1", port=port, tls=False, nick=NICK, ident="b", realname="r",
                   on_event=lambda _link, event: heard.put_nowait(event), lines_per_second=0, keepalive=0)
    network = IrcNetwork("net", ghost_for=lambda user: f"@_net_{user}:example.org", sender_of_ghost=lambda _: None)
    network.portals.add("#room")
    network.claim(NICK, None)
    side = MatrixSide()
    watch = SplitWatch(cast(BridgeContext, side), 600)
    emitted: list[RemoteEvent] = []
    """What reaches Matrix from the netsplit batch on (the NAMES before it are the members' joins)."""
    acked: set[str] = set()
    since_split = False
    try:
        await link.connect(timeout=10)
        link.send_now(lines.cap_request([BATCH_CAP]))  # as the connector's bot asks for it: alone
        while True:
            event = await asyncio.wait_for(heard.get(), 10)
            if event.type == "pong":
                break
            said = inbound.from_channel(event, network, link.state)
            remote = await watch.sift(event, said.remote)  # as the connector does for the bot's events
            since_split = since_split or event.type == "batch"
            emitted += remote if since_split else []
        acked = set(link.state.acked)
    finally:
        watch.stop()
        await link.close("done")
        await asyncio.wait_for(server.hung_up.wait(), 10)
        listening.close()
        await listening.wait_closed()

    assert f"CAP REQ :{BATCH_CAP}" in server.heard
    assert BATCH_CAP in acked
    members = [(e.sender_id, e.membership) for e in emitted if isinstance(e, RemoteMember)]
    assert members == [("dave", "leave")]  # bob and carol split off: no leave; bob back: no join
    assert side.presence == [
        ("@_net_bob:example.org", "offline"), ("@_net_carol:example.org", "offline"),
        ("@_net_bob:example.org", "online"),
    ]
