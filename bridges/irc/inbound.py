"""IRC -> Matrix: what the network says, as remote events for the core.

Pure: an ``irc.client.Event`` and the network's state (:class:`IrcNetwork`, and the bot
connection's :class:`ConnectionState` for CHANTYPES and PREFIX) in, the remote events out, with
the lines the bot must send in answer (a WHO when it joins, a JOIN when it is kicked). The
network's channel membership is updated as the events say. The connector does the I/O.

The bot connection sits in every bridged channel and is the one listener for channels: what is
said there (PRIVMSG, NOTICE, ACTION), joins, parts, quits, kicks, nick changes, topics and
op/voice modes. Matrix users' own connections listen only for private messages.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

import irc.client

from bridgekit import (
    ChatID,
    MessageID,
    RemoteChatInfo,
    RemoteEvent,
    RemoteMember,
    RemoteMessage,
    RemotePower,
    RemoteUserID,
    UserID,
)
from bridges.irc import lines
from bridges.irc.account_senders import ACCOUNT_TAG, channel_sender
from bridges.irc.channel_modes import DEFAULT_CHANMODES, ModeChange, parse_mode_changes
from bridges.irc.connection_state import ConnectionState
from bridges.irc.mentions import irc_message_to_matrix
from bridges.irc.network import IrcNetwork, Said
from bridges.irc.power_modes import POWER_FOR_MODE

MESSAGE_TYPES = {"pubmsg": "m.text", "pubnotice": "m.notice", "privmsg": "m.text", "privnotice": "m.notice",
                 "action": "m.emote"}


@dataclass(frozen=True)
class DirectChat:
    """A private message to a Matrix user's own connection: the direct chat it belongs in."""

    chat_id: ChatID
    sender: RemoteUserID
    user: UserID
    sender_name: str


@dataclass(frozen=True)
class ChannelModes:
    """A portal's channel modes changed (``setter`` None: the server's list of them, ``complete``)."""

    chat: str
    setter: str | None
    changes: list[ModeChange]
    complete: bool = False


@dataclass
class Inbound:
    """What one event means: remote events to emit, lines for the bot to send (after which it is
    in the channels of ``rejoined``), for a private message the direct chat to open first, and
    the portals' mode changes (bans, keys...) for ``portal_moderation.py``."""

    remote: list[RemoteEvent] = field(default_factory=list)
    bot_sends: list[lines.Line] = field(default_factory=list)
    rejoined: list[str] = field(default_factory=list)
    direct_chat: DirectChat | None = None
    modes: list[ChannelModes] = field(default_factory=list)
    own_joins: list[tuple[str, UserID]] = field(default_factory=list)
    """(chat, Matrix user) for a Matrix user's own connection that joined a portal's channel."""


def from_us(network: IrcNetwork, nick: str) -> bool:
    """THE echo filter of IRC -> Matrix: a line, membership, topic or mode change made by one of
    the bridge's own connections is not news to Matrix (it came from Matrix). The bot is the one
    listener for channels, so it hears what Matrix users' own connections say there: the network
    does not call that an echo, but it is one. The bot's and each connection's own lines coming
    back under IRCv3 echo-message are not filtered here: ``link.py`` consumes them, as they settle
    the delivery of the line they answer (``outgoing.EchoLedger``), and never forwards them. The
    core's echo check (``sent_by_us``: a remote message ID the bridge's own send was given) never
    matches for IRC, whose sends have no ID on the network; IRC relies on this filter alone."""
    return network.is_ours(nick)


def from_channel(event: irc.client.Event, network: IrcNetwork, bot: ConnectionState) -> Inbound:
    """An event the bot connection heard (the one listener for channels)."""
    handler = _CHANNEL_HANDLERS.get(event.type)
    return handler(event, network, bot) if handler is not None else Inbound()


def private_message(event: irc.client.Event, network: IrcNetwork, user: UserID) -> Inbound:
    """A private message to ``user``'s own connection."""
    source = source_nick(event)
    if from_us(network, source):
        return Inbound()
    folded = network.fold(source)
    chat = ChatID(network.pm_chat(user, folded))
    said = _message(network, chat, source, event)
    return Inbound([said], direct_chat=DirectChat(chat, RemoteUserID(folded), user, source))


def source_nick(event: irc.client.Event) -> str:
    source = event.source
    return str(source.nick) if hasattr(source, "nick") and source.nick else str(source)


def _channel_message(event: irc.client.Event, network: IrcNetwork, bot: ConnectionState) -> Inbound:
    source = source_nick(event)
    chat = network.fold(str(event.target))
    if from_us(network, source) or chat not in network.portals:
        return Inbound()
    # A logged-in user's other IRC client: their account (double puppet; ``account_senders.py``).
    sender = channel_sender(network.fold(source), _tag(event, "account"), tag_offered=ACCOUNT_TAG in bot.acked,
                            logged_in=network.accounts, fold=network.fold)
    return Inbound([_message(network, ChatID(chat), source, event, sender_id=sender)])


def _message(
    network: IrcNetwork, chat: ChatID, source: str, event: irc.client.Event, *, sender_id: str | None = None,
) -> RemoteMessage:
    text = str(event.arguments[0]) if event.arguments else ""
    body, html, mentioned = irc_message_to_matrix(text, network.user_for_nick, casefold=network.fold)
    message_id = _tag(event, "msgid") or network.message_id()
    network.remember(message_id, Said(source, text))
    return RemoteMessage(
        chat_id=chat, message_id=MessageID(message_id), sender_id=RemoteUserID(sender_id or network.fold(source)),
        sender_name=source, text=body, html=html, msgtype=MESSAGE_TYPES[event.type], mentions=tuple(mentioned),
        timestamp_ms=_server_time(event),
    )


def _join(event: irc.client.Event, network: IrcNetwork, bot: ConnectionState) -> Inbound:
    source = source_nick(event)
    channel = network.channel(str(event.target))
    if network.fold(source) == network.fold(bot.nick):
        channel.name = str(event.target)
        # Everyone's ident and host, for ban masks; the channel's modes, for the portal's join rule.
        return Inbound(bot_sends=[lines.who(channel.name), lines.mode_query(channel.name)])
    channel.members[network.fold(source)] = source
    chat, owner = network.fold(channel.name), network.own.get(network.fold(source))
    if owner is not None and chat in network.portals:
        return Inbound(own_joins=[(chat, owner)])  # a Matrix user's connection: their power becomes a mode
    return Inbound(_member(network, chat, source, "join"))


def _part(event: irc.client.Event, network: IrcNetwork, bot: ConnectionState) -> Inbound:
    source = source_nick(event)
    chat = network.fold(str(event.target))
    channel = network.channels.get(chat)
    if channel is not None:
        channel.members.pop(network.fold(source), None)
    return Inbound(_member(network, chat, source, "leave", reason=_argument(event)))


def _quit(event: irc.client.Event, network: IrcNetwork, bot: ConnectionState) -> Inbound:
    source = source_nick(event)
    folded = network.fold(source)
    said = Inbound()
    for chat, channel in network.channels.items():
        if channel.members.pop(folded, None) is not None:
            said.remote += _member(network, chat, source, "leave", reason=_argument(event))
    return said


def _kick(event: irc.client.Event, network: IrcNetwork, bot: ConnectionState) -> Inbound:
    kicker = source_nick(event)
    chat = network.fold(str(event.target))
    kicked = str(event.arguments[0]) if event.arguments else ""
    channel = network.channels.get(chat)
    if channel is not None:
        channel.members.pop(network.fold(kicked), None)
    if network.fold(kicked) == network.fold(bot.nick):
        # The bridge must keep listening.
        return Inbound(bot_sends=[network.join_line(chat)], rejoined=[chat])
    reason = str(event.arguments[1]) if len(event.arguments) > 1 else None
    return Inbound(_member(network, chat, kicked, "kick", by=kicker, reason=reason))


def _nick_change(event: irc.client.Event, network: IrcNetwork, bot: ConnectionState) -> Inbound:
    old, new = source_nick(event), str(event.target)
    old_folded, new_folded = network.fold(old), network.fold(new)
    network.known.renamed(old, new)
    if old_folded in network.own:
        network.own[new_folded] = network.own.pop(old_folded)
        return Inbound()
    said = Inbound()
    for chat, channel in network.channels.items():
        if channel.members.pop(old_folded, None) is not None:
            channel.members[new_folded] = new
            said.remote += _member(network, chat, old, "leave", reason=f"is now known as {new}")
            said.remote += _member(network, chat, new, "join")
    return said


def _names(event: irc.client.Event, network: IrcNetwork, bot: ConnectionState) -> Inbound:
    # 353: [channel type, channel, "nick1 @nick2 +nick3"] (target is our nick)
    if len(event.arguments) < 3:
        return Inbound()
    channel = network.channel(str(event.arguments[1]))
    chat = network.fold(channel.name)
    symbols = bot.prefix_modes  # ISUPPORT PREFIX: "@" -> "o"...
    said = Inbound()
    for entry in str(event.arguments[2]).split():
        modes = ""
        while entry and entry[0] in symbols:
            modes, entry = modes + symbols[entry[0]], entry[1:]
        member = irc.client.NickMask(entry)  # userhost-in-names: nick!ident@host
        nick = str(member.nick)
        network.saw(nick, member.user, member.host)
        if not nick or from_us(network, nick):
            continue
        channel.members[network.fold(nick)] = nick
        said.remote += _member(network, chat, nick, "join")
        level = max((POWER_FOR_MODE.get(mode, 0) for mode in modes), default=0)
        if level and chat in network.portals:
            said.remote.append(RemotePower(ChatID(chat), RemoteUserID(network.fold(nick)), level,
                                           change_id=network.change_id()))
    return said


def _topic(event: irc.client.Event, network: IrcNetwork, bot: ConnectionState) -> Inbound:
    if event.type == "currenttopic":  # 332: [channel, topic]
        if len(event.arguments) < 2:
            return Inbound()
        chat, topic, setter = network.fold(str(event.arguments[0])), str(event.arguments[1]), None
    else:
        chat, topic, setter = network.fold(str(event.target)), _argument(event) or "", source_nick(event)
        if from_us(network, setter):
            return Inbound()
    if chat not in network.portals:
        return Inbound()
    return Inbound([RemoteChatInfo(ChatID(chat), topic=topic,
                                   changed_by=RemoteUserID(network.fold(setter)) if setter else None,
                                   change_id=network.change_id())])


def _mode(event: irc.client.Event, network: IrcNetwork, bot: ConnectionState) -> Inbound:
    target = str(event.target)
    chat = network.fold(target)
    if not bot.is_channel(target) or chat not in network.portals or not event.arguments:
        return Inbound()
    setter = source_nick(event)
    changes = _mode_changes(bot, str(event.arguments[0]), [str(a) for a in event.arguments[1:]])
    said = Inbound(modes=[ChannelModes(chat, setter, changes)])
    if from_us(network, setter):
        return said  # a power level set on Matrix, made a mode by the bridge: not news to Matrix
    for change in changes:
        if change.mode not in POWER_FOR_MODE or change.param is None:
            continue
        folded = network.fold(change.param)
        if network.own.get(folded, "bot") is None:
            continue  # the bridge bot's own modes
        # A Matrix user's own connection made operator: the Matrix user gets the power.
        level = POWER_FOR_MODE[change.mode] if change.adding else _level_left(bot, chat, folded)
        said.remote.append(RemotePower(ChatID(chat), RemoteUserID(folded), level,
                                       change_id=network.change_id(), matrix_user=network.own.get(folded)))
    return said


def _level_left(bot: ConnectionState, chat: str, folded: str) -> int:
    """The power a member keeps after losing a mode (``-o`` on someone also ``+v``: 10)."""
    channel = bot.channels.get(chat)
    kept = channel.prefixes.get(folded, set()) if channel is not None else set()
    return max((POWER_FOR_MODE.get(mode, 0) for mode in kept), default=0)


def _channel_modes(event: irc.client.Event, network: IrcNetwork, bot: ConnectionState) -> Inbound:
    # 324 RPL_CHANNELMODEIS: [channel, "+nt", params...], the answer to the MODE query on join
    if len(event.arguments) < 2:
        return Inbound()
    chat = network.fold(str(event.arguments[0]))
    if chat not in network.portals:
        return Inbound()
    changes = _mode_changes(bot, str(event.arguments[1]), [str(a) for a in event.arguments[2:]])
    return Inbound(modes=[ChannelModes(chat, None, changes, complete=True)])


def _mode_changes(bot: ConnectionState, modes: str, params: list[str]) -> list[ModeChange]:
    member_modes = "".join(bot.prefix_modes.values())
    return parse_mode_changes(modes, params, member_modes=member_modes,
                              chanmodes=bot.isupport.get("CHANMODES", DEFAULT_CHANMODES))


def _member(
    network: IrcNetwork, chat: str, nick: str, membership: str, *, by: str | None = None, reason: str | None = None
) -> list[RemoteEvent]:
    if chat not in network.portals or from_us(network, nick):
        return []
    return [RemoteMember(
        ChatID(chat), RemoteUserID(network.fold(nick)), membership, by=RemoteUserID(network.fold(by)) if by else None,
        reason=reason, sender_name=nick, change_id=network.change_id(),
    )]


def quit_reason(event: irc.client.Event) -> str | None:
    """A QUIT's reason (``netsplits.py`` tells a netsplit by it); None for other events."""
    return _argument(event) if event.type == "quit" else None


def batch_of(event: irc.client.Event) -> str | None:
    """The IRCv3 batch a line came in (its ``batch`` tag; ``netsplits.py``); None outside one."""
    return _tag(event, "batch")


def _argument(event: irc.client.Event) -> str | None:
    return str(event.arguments[0]) if event.arguments else None


def _tag(event: irc.client.Event, name: str) -> str | None:
    for tag in event.tags or ():
        if isinstance(tag, Mapping) and tag.get("key") == name and tag.get("value"):
            return str(tag["value"])
    return None


def _server_time(event: irc.client.Event) -> int | None:
    """When the server says the line was sent (IRCv3 server-time), in ms; None without the tag."""
    stamp = _tag(event, "time")
    if stamp is None:
        return None
    try:
        return int(datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() * 1000)
    except ValueError:
        return None


_CHANNEL_HANDLERS: dict[str, Callable[[irc.client.Event, IrcNetwork, ConnectionState], Inbound]] = {
    "pubmsg": _channel_message,
    "pubnotice": _channel_message,
    "action": _channel_message,
    "join": _join,
    "part": _part,
    "quit": _quit,
    "kick": _kick,
    "nick": _nick_change,
    "namreply": _names,
    "topic": _topic,
    "currenttopic": _topic,
    "mode": _mode,
    "channelmodeis": _channel_modes,
}

__all__ = [
    "ChannelModes", "DirectChat", "Inbound", "batch_of", "from_channel", "from_us", "private_message", "quit_reason",
    "source_nick",
]
