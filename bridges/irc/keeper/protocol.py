"""What the bridge and a connection keeper say to each other through Redis, as plain values.

Pure (no Redis, no socket): the names of the keys and streams, and the (de)serialisation of
IRC events, commands, results, connection specs and connection-state snapshots. Every stream
entry is a flat mapping of strings, as Redis Streams store them.

- ``inbound_stream(network)``: IRC events the keeper's connections heard, read by the bridge
  through the consumer group :data:`BRIDGE_GROUP` and acknowledged once the bridge stored what it
  made of them.
- ``commands_stream(keeper_id)``: what the bridge asks a keeper (open a connection, send a line,
  close one, list them), read through :data:`KEEPER_GROUP`; a ``send`` is acknowledged once the
  line is settled (echoed by the server, or written where it does not echo).
- ``results_stream(network)``: the keeper's answers, by request ID (settles the bridge's futures).

The keeper records a heartbeat (:func:`heartbeat_key`); after its own restart it appends one
``keeper-gap`` entry (:func:`gap_event`) to the inbound stream of each network it served, once
that network's bot connection is up again: the bridge tells the portals what was not seen. It
is an ordinary event entry of a connection ID no link has (``net/~keeper``), so a bridge that
does not know it passes it by: no protocol version bump.

Every entry carries the protocol version (``v``): a keeper and a bridge that differ refuse each
other, saying which one to upgrade (:func:`version_problem`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Literal, cast

import irc.client

from bridges.irc.connection_state import ChannelState, ConnectionState
from bridges.irc.lean import shared

PROTOCOL_VERSION = 3
"""2: connection specs carry NickServ's settings and may seal an account login (puppets), and a
puppet's connection ID differs from its owner's virtual connection (:func:`connection_id`). A
keeper of 1 would connect a puppet without identifying it: the handshake refuses the pair.
3: a ``list`` answer carries each distinct ISUPPORT once (``isupports``, referred to by index)
and its specs as objects (:func:`list_answer`); a bridge of 2 would adopt every connection
without its ISUPPORT (the wrong casemapping, the default NICKLEN)."""
BRIDGE_GROUP = "bridge"
KEEPER_GROUP = "keeper"
STREAM_MAXLEN = 200_000
"""Approximate bound of each stream (``XADD MAXLEN ~``): what a bridge may fall behind by."""
DONE_KEY_TTL_S = 7 * 24 * 3600
"""How long the keeper remembers that a line was sent (a resent command writes nothing twice)."""

Op = Literal["open", "send", "close", "list"]
ConnectionKind = Literal["bot", "user", "puppet", "login"]
"""The bot's connection; a Matrix user's virtual one (``[m]``); their puppet (their own IRC account);
the one-off connection that checks the account's password at ``login``."""


def hello_key(keeper_id: str) -> str:
    return f"bk:irc:keeper:{keeper_id}:hello"


def commands_stream(keeper_id: str) -> str:
    return f"bk:irc:keeper:{keeper_id}:commands"


def connections_key(keeper_id: str) -> str:
    """Hash: connection ID -> its spec (JSON, secrets sealed), for the keeper's own restart."""
    return f"bk:irc:keeper:{keeper_id}:connections"


def channels_key(keeper_id: str, conn: str) -> str:
    """Set: the channels a connection is in, joined again after the keeper restarts."""
    return f"bk:irc:keeper:{keeper_id}:channels:{conn}"


def heartbeat_key(keeper_id: str) -> str:
    """When the keeper was last alive (seconds since the epoch): the start of its next gap."""
    return f"bk:irc:keeper:{keeper_id}:alive_at"


def gaps_key(keeper_id: str) -> str:
    """Hash: network -> when the keeper went offline, until that network has been told."""
    return f"bk:irc:keeper:{keeper_id}:gaps"


def inbound_stream(network: str) -> str:
    return f"bk:irc:net:{network}:in"


def results_stream(network: str) -> str:
    return f"bk:irc:net:{network}:results"


def done_key(network: str, key: str) -> str:
    return f"bk:irc:net:{network}:sent:{key}"


def connection_id(network: str, owner: str | None, kind: ConnectionKind = "user") -> str:
    """One connection of a network, stable across restarts: ``net/~bot``, ``net/@alice:hs`` (her
    virtual connection), ``net/~puppet/@alice:hs`` (her own account's), ``net/~login/@alice:hs``
    (checking her password). A Matrix ID starts with ``@``, so none of them can be taken for another."""
    if owner is None or kind == "bot":
        return f"{network}/~bot"
    if kind == "user":
        return f"{network}/{owner}"
    return f"{network}/~{kind}/{owner}"


def connection_owner(conn: str) -> tuple[ConnectionKind, str | None]:
    """What :func:`connection_id` made ``conn`` of: its kind and its owner."""
    rest = conn.partition("/")[2]
    if rest == "~bot":
        return "bot", None
    if rest.startswith("~puppet/"):
        return "puppet", rest.removeprefix("~puppet/")
    if rest.startswith("~login/"):
        return "login", rest.removeprefix("~login/")
    return "user", rest


def version_problem(
    theirs: object, *, we_are: Literal["bridge", "keeper"], ours: int = PROTOCOL_VERSION
) -> str | None:
    """None when ``theirs`` is our protocol version; else what to upgrade, in words."""
    try:
        version = int(str(theirs))
    except ValueError:
        version = 0
    if version == ours:
        return None
    other = "keeper" if we_are == "bridge" else "bridge"
    older = we_are if version > ours else other
    return (
        f"the IRC {other} speaks keeper protocol {version} and this {we_are} speaks {ours}: "
        f"upgrade the {older} (bridge and keeper must come from the same bridgekit release)"
    )


def stream_id_after(entry: str, last: str | None) -> bool:
    """Whether stream entry ID ``entry`` (``ms-seq``) comes after ``last`` (None: nothing yet)."""
    if last is None:
        return True
    return _id_tuple(entry) > _id_tuple(last)


def _id_tuple(entry: str) -> tuple[int, int]:
    ms, _, seq = entry.partition("-")
    return int(ms), int(seq or 0)


# ---- IRC events ------------------------------------------------------------------------------


def encode_event(conn: str, event: irc.client.Event, received_at: float) -> dict[str, str]:
    """One heard event as a stream entry. Without the server's time (IRCv3 server-time) the
    keeper's receive time stands in, so a line caught up on later keeps when it was said."""
    tags = [dict(tag) for tag in (event.tags or [])]
    if not any(tag.get("key") == "time" for tag in tags):
        stamp = datetime.fromtimestamp(received_at, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        tags.append({"key": "time", "value": stamp})
    return {
        "v": str(PROTOCOL_VERSION),
        "conn": conn,
        "type": event.type,
        "source": "" if event.source is None else str(event.source),
        "target": "" if event.target is None else str(event.target),
        "args": json.dumps([str(a) for a in event.arguments]),
        "tags": json.dumps(tags),
    }


def decode_event(fields: dict[str, str]) -> tuple[str, irc.client.Event]:
    source = fields.get("source") or None
    event = irc.client.Event(
        fields["type"],
        irc.client.NickMask(source) if source is not None else None,
        fields.get("target") or None,
        json.loads(fields.get("args", "[]")),
        json.loads(fields.get("tags", "[]")),
    )
    return fields["conn"], event


GAP_EVENT = "keeper-gap"
"""A heard "event" that is the keeper's own: it was offline from ``arguments[0]`` to ``[1]``."""


def gap_connection(network: str) -> str:
    """The connection ID a gap entry is appended under: none of a link (``~`` is no Matrix ID)."""
    return f"{network}/~keeper"


def gap_event(keeper_id: str, began: float, ended: float) -> irc.client.Event:
    return irc.client.Event(GAP_EVENT, None, keeper_id, [repr(began), repr(ended)], [])


def gap_of(event: irc.client.Event) -> tuple[str, float, float] | None:
    """(keeper ID, offline from, offline to) of a gap event; None for any other (or a malformed one)."""
    if event.type != GAP_EVENT or len(event.arguments) != 2:
        return None
    try:
        began, ended = float(event.arguments[0]), float(event.arguments[1])
    except ValueError:
        return None
    return str(event.target or ""), began, ended


REFUSED_EVENT = "keeper-refused"
"""A heard "event" that is the keeper's own: the server refused the connection's account at a
reconnect (``arguments[0]``: its reason), and the keeper stopped it. A bridge that does not know
it passes it by (so the protocol version stays)."""


def refused_event(reason: str) -> irc.client.Event:
    return irc.client.Event(REFUSED_EVENT, None, None, [reason])


def refusal_of(event: irc.client.Event) -> str | None:
    """The server's reason of a refused event; None for any other."""
    if event.type != REFUSED_EVENT:
        return None
    return str(event.arguments[0]) if event.arguments else "the server refused the account"


def tag_of(event: irc.client.Event, key: str) -> str | None:
    for tag in event.tags or []:
        if tag.get("key") == key:
            value = tag.get("value")
            return None if value is None else str(value)
    return None


# ---- connections -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConnectionSpec:
    """How to make one connection; what the keeper keeps to make it again after its own restart.
    ``sealed``: the server password and account login, encrypted with the credentials key
    (:mod:`bridges.irc.keeper.sealing`), never plaintext."""

    conn: str
    network: str
    host: str
    port: int
    tls: bool
    nick: str
    ident: str
    realname: str
    caps: tuple[str, ...] = ()
    next_nicks: tuple[str, ...] = ()
    """The nicks to try, in order, when the server refuses the previous one."""
    lines_per_second: float = 2.0
    burst: int = 5
    keepalive: float = 60.0
    members: bool = False
    sealed: str | None = None
    nickserv_nick: str = "NickServ"
    nickserv_identify: str = "IDENTIFY {account} {password}"
    """How a puppet identifies where the server offers no SASL (the account itself is in ``sealed``)."""

    def to_json(self) -> str:
        return json.dumps(self.as_dict())

    def as_dict(self) -> dict[str, Any]:
        # Not dataclasses.asdict (it deep-copies every value) nor fields() (it builds its tuple
        # each call): a keeper lists 10,000 of these.
        return {name: getattr(self, name) for name in _SPEC_FIELDS}

    @classmethod
    def from_json(cls, text: str) -> ConnectionSpec:
        return cls.from_dict(json.loads(text))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ConnectionSpec:
        data = {key: value for key, value in data.items() if key in _SPEC_FIELDS}  # a newer bridge's extras
        data["caps"] = tuple(data.get("caps", ()))
        data["next_nicks"] = tuple(data.get("next_nicks", ()))
        return cls(**data)


_SPEC_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(ConnectionSpec))


# ---- commands and results --------------------------------------------------------------------


@dataclass(frozen=True)
class Command:
    op: Op
    conn: str
    req: str
    data: dict[str, Any] = field(default_factory=dict)
    version: str = str(PROTOCOL_VERSION)

    def encode(self) -> dict[str, str]:
        return {"v": self.version, "op": self.op, "conn": self.conn, "req": self.req, "data": json.dumps(self.data)}

    @classmethod
    def decode(cls, fields: dict[str, str]) -> Command:
        op = fields.get("op", "")
        if op not in ("open", "send", "close", "list"):
            raise ValueError(f"unknown keeper command {op!r}")
        op = cast(Op, op)
        return cls(op, fields.get("conn", ""), fields.get("req", ""), json.loads(fields.get("data", "{}")),
                   fields.get("v", "0"))


@dataclass(frozen=True)
class Result:
    req: str
    ok: bool
    error: str = ""
    data: dict[str, Any] = field(default_factory=dict)

    def encode(self) -> dict[str, str]:
        return {"v": str(PROTOCOL_VERSION), "req": self.req, "ok": "1" if self.ok else "0", "error": self.error,
                "data": json.dumps(self.data)}

    @classmethod
    def decode(cls, fields: dict[str, str]) -> Result:
        return cls(fields.get("req", ""), fields.get("ok") == "1", fields.get("error", ""),
                   json.loads(fields.get("data", "{}")))


# ---- what a connection knows --------------------------------------------------------------------


class IsupportTable:
    """The distinct ISUPPORTs of a ``list`` answer, each carried once: every connection to one
    server has the same (the keeper shares one mapping among them, ``lean.shared``), and 10,000
    copies of it were most of a 10 MB answer."""

    def __init__(self) -> None:
        self.tables: list[dict[str, str]] = []
        self._index: dict[int, int] = {}
        self._held: list[Mapping[str, str]] = []  # keeps each id() valid while the answer is made

    def ref(self, isupport: Mapping[str, str]) -> int:
        index = self._index.get(id(isupport))
        if index is None:
            index = self._index[id(isupport)] = len(self.tables)
            self.tables.append(dict(isupport))
            self._held.append(isupport)
        return index


def list_answer(states: Iterable[tuple[str, ConnectionState, ConnectionSpec]]) -> dict[str, Any]:
    """The ``list`` command's data: each connection's snapshot and spec, ISUPPORTs by reference."""
    table = IsupportTable()
    connections: dict[str, Any] = {}
    specs: dict[str, Any] = {}
    for conn, state, spec in states:
        connections[conn] = snapshot(state, table)
        specs[conn] = spec.as_dict()
    return {"connections": connections, "specs": specs, "isupports": table.tables}


def resolve_isupports(data: dict[str, Any]) -> dict[str, Any]:
    """A ``list`` answer with each snapshot's ISUPPORT in place (one shared object per distinct
    one), so answers of several keepers can be merged."""
    tables = [_shared_isupport(table) for table in data.get("isupports", [])]
    for snap in data.get("connections", {}).values():
        ref = snap.pop("isupport_ref", None)
        if isinstance(ref, int) and 0 <= ref < len(tables):
            snap["isupport"] = tables[ref]
    data.pop("isupports", None)
    return data


def _shared_isupport(received: Mapping[str, Any]) -> Mapping[str, str]:
    """An ISUPPORT as received (JSON), as the one shared read-only mapping of its contents."""
    return shared({str(key): str(value) for key, value in received.items()})


def snapshot(state: ConnectionState, table: IsupportTable | None = None) -> dict[str, Any]:
    """What a bridge adopting a live connection needs: its nick, CAPs, ISUPPORT, channels."""
    isupport: dict[str, Any] = (
        {"isupport_ref": table.ref(state.isupport)} if table is not None else {"isupport": dict(state.isupport)})
    return {
        "nick": state.nick,
        "wanted_nick": state.wanted_nick,
        "registered": state.registered,
        "acked": sorted(state.acked),
        **isupport,
        "channels": {
            folded: {"name": channel.name, "members": channel.members, "modes": channel.modes,
                     "prefixes": {member: sorted(modes) for member, modes in channel.prefixes.items()}}
            for folded, channel in state.channels.items()
        },
    }


def restore(state: ConnectionState, data: dict[str, Any]) -> None:
    state.nick = str(data.get("nick", state.nick))
    state.wanted_nick = str(data.get("wanted_nick", state.wanted_nick))
    state.registered = bool(data.get("registered", False))
    state.acked = set(data.get("acked", []))
    isupport = data.get("isupport", {})
    # Already shared (``resolve_isupports``): taken as it is, not rebuilt for each connection.
    state.isupport = isupport if isinstance(isupport, MappingProxyType) else _shared_isupport(isupport)
    state.channels = {
        folded: ChannelState(
            str(channel["name"]), members=dict(channel.get("members", {})), modes=dict(channel.get("modes", {})),
            prefixes={member: set(modes) for member, modes in channel.get("prefixes", {}).items()},
        )
        for folded, channel in data.get("channels", {}).items()
    }


__all__ = [
    "BRIDGE_GROUP",
    "GAP_EVENT",
    "KEEPER_GROUP",
    "PROTOCOL_VERSION",
    "REFUSED_EVENT",
    "Command",
    "ConnectionKind",
    "ConnectionSpec",
    "IsupportTable",
    "Result",
    "connection_id",
    "connection_owner",
    "decode_event",
    "encode_event",
    "gap_connection",
    "gap_event",
    "gap_of",
    "gaps_key",
    "heartbeat_key",
    "list_answer",
    "refusal_of",
    "refused_event",
    "resolve_isupports",
    "restore",
    "snapshot",
    "stream_id_after",
    "version_problem",
]
