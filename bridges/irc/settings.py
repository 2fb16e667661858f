"""One IRC network's config section (``connectors: {libera: {factory: irc, ...}}``).

Each network is its own connector section, named after the network; the sections share the ghost
prefix ``_irc_`` (the network name keeps their ghosts apart: ``@_irc_libera_alice``) and each has
its own alias prefix (``_irc_libera_``), so ``#_irc_libera_#python`` names a channel there.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, field_validator


class KeeperSettings(BaseModel):
    """``connectors.<network>.keeper``: the network's connections live in a connection keeper
    (``python -m bridges.irc.keeper``), reached through Redis, so the bridge can restart without
    IRC seeing it. Networks may share one Redis and one keeper."""

    redis_url: str
    """``redis://host:port/db`` (the ``redis`` package's URL form; ``rediss://`` for TLS)."""
    keeper_id: str = "main"
    """Which keeper holds this network's connections (its command stream)."""
    group: str | None = None
    """Several keepers share this network's connections instead (each started with ``--group``
    this name and a ``--keeper-id`` of its own; docs/irc.md, "Several keepers"): ``keeper_id``
    is then unused."""
    persist_connections_on_shutdown: bool = True
    """A bridge stop leaves the connections up in the keeper (no QUIT); false: they QUIT."""
    reply_timeout_seconds: Annotated[float, Field(gt=0)] = 60.0
    """How long opening a connection waits for the keeper's answer (registration included)."""


class IdentdSettings(BaseModel):
    """Where the bridge's identd (RFC 1413) listens; the IRC server connects there to ask."""

    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 113


class IrcSettings(BaseModel):
    server: str
    """Host name of the IRC server."""
    port: Annotated[int, Field(ge=1, le=65535)] = 6697
    tls: bool = True
    password: str | None = None
    """Server password (PASS), if the network needs one."""
    bot_nick: str = "matrixbridge"
    """The bridge's own connection: it sits in every bridged channel, relays, and hears everything."""
    nick_template: str = "{displayname}[m]"
    """Nick of a Matrix user's own connection: {displayname} or {localpart}."""
    virtual_users: bool = True
    """Give each Matrix user who speaks their own IRC connection (else everyone is relayed). The
    connection closes after the section's ``virtual_idle_minutes`` without a message (a core
    setting); the bot keeps listening, so nothing said meanwhile is lost."""
    channels: list[str] = []
    """Channels the bot joins at start even before anyone links them (portals are made on the
    first message, or by joining their alias)."""
    max_lines: Annotated[int, Field(ge=1)] = 5
    """A Matrix message longer than this many IRC lines is sent as one line with a link to the
    full text (served by the bridge at its public_url)."""
    long_text_days: Annotated[float, Field(gt=0)] = 30
    """How long the full text of such a message stays at its link; afterwards the link answers 404
    and the text is deleted from the bridge's database."""
    media_link_days: Annotated[float, Field(gt=0)] = 7
    """How long the link to a file sent on Matrix works (the bridge serves it: IRC has no file
    transfer); then it answers 404. Links are signed: only files sent into a portal get one."""
    media_max_mib: Annotated[float, Field(gt=0)] = 100
    """The largest file such a link serves; the download stops there (streamed, never held whole)."""
    lines_per_second: Annotated[float, Field(ge=0)] = 1.0
    """Pacing of each connection's output after a burst (0: no pacing, e.g. for benchmarks)."""
    burst: Annotated[int, Field(ge=1)] = 5
    keepalive_seconds: Annotated[float, Field(ge=0)] = 60.0
    """After this long without a word from the server a connection PINGs it, and after twice as
    long gives it up and connects again, sending again what the server never echoed (0: off)."""
    edits: Literal["diff", "full", "ignore"] = "diff"
    """A Matrix edit on IRC: ``* changed words`` (diff), ``* whole new text`` (full), or nothing."""
    reply_template: Literal["short", "long"] = "short"
    """A Matrix reply on IRC: ``nick: text`` (short) or ``<nick> "quoted start…" <- text`` (long)."""
    casemapping: Literal["rfc1459", "strict-rfc1459", "ascii", "rfc7613"] = "rfc1459"
    """Until the server says (ISUPPORT CASEMAPPING, recorded at first connect and never changed
    silently afterwards)."""
    nicklen: Annotated[int, Field(ge=9)] = 30
    """Until the server says (ISUPPORT NICKLEN)."""
    realname_template: str = "{user_id}"
    login_method: Literal["auto", "sasl", "nickserv"] = "auto"
    """How a logged-in user's own connection (``login <network>``) identifies: ``auto`` uses SASL
    PLAIN when the server offers it, else NickServ after registration; ``sasl`` refuses a server
    without it (the password then never goes out in a PRIVMSG); ``nickserv`` never uses SASL."""
    nickserv_nick: str = "NickServ"
    """Who the identify line goes to, and whose notices answer it."""
    nickserv_identify: str = "IDENTIFY {account} {password}"
    """The identify line's text: {account} and {password}."""

    @field_validator("nickserv_identify")
    @classmethod
    def _has_the_password(cls, value: str) -> str:
        if "{password}" not in value:
            raise ValueError("nickserv_identify must contain {password}")
        value.format(account="", password="")  # an unknown {field} is an error now, not at login
        return value
    link_approval_minutes: Annotated[float, Field(gt=0)] = 5
    """How long a link asked by a room admin who is not a bridge admin waits for a channel
    operator's answer on IRC (the bot asks them by private message); then it is refused."""
    keeper: KeeperSettings | None = None
    """The connection keeper (see :class:`KeeperSettings`); None: connections live in the bridge."""
    connects_per_second: Annotated[float, Field(ge=0)] = 2.0
    """New connections to the network (the bot's, each Matrix user's, and every reconnect) after
    ``connect_burst``: after a server restart, users come back this fast rather than all in the same
    second, which networks throttle or K-line (0: no pacing, e.g. for benchmarks)."""
    connect_burst: Annotated[int, Field(ge=1)] = 10
    netsplit_minutes: Annotated[float, Field(ge=0)] = 10
    """A user lost in a netsplit (a QUIT whose reason is two server names) is shown away, not
    gone: their ghost leaves only if they are not back within this many minutes (0: leave at once)."""
    join_on_portal_join: bool = True
    """A Matrix user who joins a portal (and may have a connection of their own) joins the channel
    at once, not only when they first speak, so IRC people see who is listening; their connection
    then stays while they are in a portal (``virtual_idle_minutes`` applies only when this is off,
    or once they are in none). Leaving the portal parts the channel."""
    identd: IdentdSettings | None = None
    """Answer the IRC server's identd queries (RFC 1413) with each connection's ident (off by
    default). Port 113 needs privileges: listen elsewhere and forward, or give the bridge
    CAP_NET_BIND_SERVICE. Networks with the same address share one listener."""
    max_clients: Annotated[int, Field(ge=0)] = 0
    """The most connections of Matrix users (virtual and logged-in; not the bot) the bridge keeps
    open to the network at once (0: no cap). Past it, a user who would get a connection of their
    own is relayed by the bot (``<name> text``) and told once; logged-in users are never refused
    (their connections count, but a login always connects)."""

    @field_validator("nick_template")
    @classmethod
    def _has_a_name(cls, value: str) -> str:
        if "{displayname}" not in value and "{localpart}" not in value:
            raise ValueError("nick_template must contain {displayname} or {localpart}")
        return value


__all__ = ["IdentdSettings", "IrcSettings", "KeeperSettings"]
