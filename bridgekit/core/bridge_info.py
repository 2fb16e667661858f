"""Bridge info in portal rooms: the ``m.bridge`` state event of MSC2346, and announcing it.

Clients read this state to show which network a room is bridged to. MSC2346 is unmerged, so the
event is sent twice, as ``m.bridge`` and as the unstable ``uk.half-shot.bridge``, with one state
key and one content (as the mautrix bridges do). The pure half builds the content and the state
key; :func:`announce_bridge` sets both events in a room, once, and when the bot lacks the power
to do so it asks the room's admins for that power instead (MSC2346: "bridges SHOULD ask for the
power level to send the event").

Call :func:`announce_bridge` after a portal room is created or linked (plumbed), and again with
:func:`removal_content` when the link is removed.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from bridgekit.errors import MatrixForbidden, MatrixNotFound
from bridgekit.events import JSONDict
from bridgekit.ids import ContentURI, EventID, RoomID, UserID
from bridgekit.room_power import POWER_LEVELS, creators_are_privileged, power_level_value, state_send_level

BRIDGE_EVENT_TYPES = ("m.bridge", "uk.half-shot.bridge")
"""Stable type first: both are sent, with the same state key and content."""

# A state key prefix is written like a URI scheme (``org.matrix.appservice-irc://...``).
_SOFTWARE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")


@dataclass(frozen=True, slots=True)
class BridgeSection:
    """One of ``protocol``, ``network`` or ``channel``: what the room is bridged to, at one level.

    ``id`` is the remote identifier as the network spells it; it is lower-cased for the event
    by escaping upper case (see :func:`escape_bridge_id`). ``displayname`` is what clients show
    (they fall back to ``id``); ``avatar_url`` is an ``mxc://`` URI; ``external_url`` a link to
    the thing on its own network.
    """

    id: str
    displayname: str | None = None
    avatar_url: ContentURI | None = None
    external_url: str | None = None


class AnnounceResult(enum.Enum):
    """What :func:`announce_bridge` did."""

    SENT = "sent"
    """Both state events now hold the content."""
    UNCHANGED = "unchanged"
    """Both already held it; nothing was sent."""
    INSUFFICIENT_POWER = "insufficient_power"
    """The bot may not set the state; it posted a notice asking the room's admins for power."""


class BridgeInfoIntent(Protocol):
    """What :func:`announce_bridge` needs of the bot's :class:`bridgekit.matrix.Intent`."""

    @property
    def user_id(self) -> UserID: ...

    async def get_state(self, room_id: RoomID, event_type: str, state_key: str = ...) -> JSONDict:
        ...

    async def send_state(
        self, room_id: RoomID, event_type: str, state_key: str, content: Mapping[str, object],
    ) -> EventID: ...

    async def send_text(
        self,
        room_id: RoomID,
        body: str,
        *,
        msgtype: str = ...,
        mentions: Iterable[UserID] | None = ...,
        txn_id: str | None = ...,
    ) -> EventID: ...


# -- pure: content and state key ---------------------------------------------------------------


def escape_bridge_id(remote_id: str) -> str:
    """``remote_id`` made lower-case without merging ids that differ only in case (MSC2346).

    The MSC asks for lower-case ids with upper case escaped ("e.g. using QP encoding"): each
    character that has a lower-case form becomes ``=`` plus its UTF-8 bytes as lower-case hex
    (``F`` -> ``=46``, ``É`` -> ``=c3=89``), and ``=`` itself becomes ``=3d`` so the escape is
    reversible. Callers that fold case themselves (IRC's CASEMAPPING) never see an escape.
    """
    return "".join(_escape_char(char) for char in remote_id)


def bridge_info_state_key(
    software: str, protocol_id: str, network_id: str | None, channel_id: str,
) -> str:
    """The state key for one bridged channel: ``<software>://<protocol>/<network>/<channel>``.

    ``software`` names the bridge software (``org.example.my-bridge``), so two bridge programs
    never overwrite each other's events. Each id is escaped with :func:`escape_bridge_id`, then
    ``/`` becomes ``%2F`` (as the MSC requires) and ``%``, white space and control characters
    are percent-encoded too, so an id can neither add a level to the key nor hide in it. Without
    a network the key is ``<software>://<protocol>/<channel>``. ValueError for an empty id or a
    ``software`` that is not written like a URI scheme.
    """
    if not _SOFTWARE.fullmatch(software):
        raise ValueError(
            f"bridge software name {software!r} must look like a URI scheme, "
            "e.g. 'org.example.my-bridge' (letters, digits, '+', '-', '.'; a letter first)"
        )
    ids = [protocol_id, *([network_id] if network_id is not None else []), channel_id]
    return f"{software}://" + "/".join(_key_segment(remote_id) for remote_id in ids)


def bridge_info_content(
    *,
    bridgebot: UserID,
    protocol: BridgeSection,
    channel: BridgeSection,
    network: BridgeSection | None = None,
    creator: UserID | None = None,
) -> JSONDict:
    """The content of the ``m.bridge`` event for one bridged channel.

    ``creator`` is the Matrix user who set up (plumbed) the bridge; leave it out for portals the
    bridge made itself. Section ids are escaped like the state key's; when escaping changed an
    id and the section has no display name, the original id becomes the display name, since
    clients show the id otherwise. ValueError for an empty id, a user ID without ``@`` or an
    avatar that is not ``mxc://``.
    """
    content: JSONDict = {"bridgebot": _user_id(bridgebot, "bridgebot")}
    if creator is not None:
        content["creator"] = _user_id(creator, "creator")
    content["protocol"] = _section_json(protocol, "protocol")
    if network is not None:
        content["network"] = _section_json(network, "network")
    content["channel"] = _section_json(channel, "channel")
    return content


def removal_content() -> JSONDict:
    """The content that removes a bridge from a room: ``{}`` under the same state key (BR-8)."""
    return {}


def _escape_char(char: str) -> str:
    if char == "=" or char.lower() != char:
        return "".join(f"={byte:02x}" for byte in char.encode("utf-8"))
    return char


def _key_segment(remote_id: str) -> str:
    if not remote_id:
        raise ValueError("bridge info ids must not be empty: the state key would be ambiguous")
    return "".join(_percent_encode(char) for char in escape_bridge_id(remote_id))


def _percent_encode(char: str) -> str:
    if char in "/%" or char.isspace() or not char.isprintable():
        return "".join(f"%{byte:02X}" for byte in char.encode("utf-8"))
    return char


def _section_json(section: BridgeSection, name: str) -> JSONDict:
    if not section.id:
        raise ValueError(f"the {name} section needs a non-empty id")
    if section.avatar_url is not None and not section.avatar_url.startswith("mxc://"):
        raise ValueError(f"the {name} avatar must be an mxc:// URI, got {section.avatar_url!r}")
    escaped = escape_bridge_id(section.id)
    displayname = section.displayname
    if displayname is None and escaped != section.id:
        displayname = section.id
    optional = {
        "displayname": displayname,
        "avatar_url": section.avatar_url,
        "external_url": section.external_url,
    }
    return {"id": escaped, **{key: value for key, value in optional.items() if value is not None}}


def _user_id(user_id: UserID, field: str) -> UserID:
    if not user_id.startswith("@"):
        raise ValueError(f"{field} must be a Matrix user ID (@user:server), got {user_id!r}")
    return user_id


# -- pure: who may set the state ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PowerCheck:
    """The power needed to set bridge info, and the bot's, as the room's state says."""

    needed: int
    bot_level: int | None
    """None when the power levels cannot tell: in v12+ rooms a creator is all-powerful without
    being listed, so an unlisted bot may be one."""
    admins: tuple[UserID, ...]
    """Listed users (not the bot) who may change power levels: the ones to ask."""

    @property
    def refused(self) -> bool:
        """True when the state says for certain that the bot may not set the events."""
        return self.bot_level is not None and self.bot_level < self.needed


def check_power(
    power_levels: Mapping[str, object] | None, create: Mapping[str, object], bot: UserID,
) -> PowerCheck:
    """Whether ``bot`` may send both bridge info event types, from the room's state contents.

    ``power_levels`` is None when the room has no ``m.room.power_levels``: then only the creator
    (who has 100) may set state, and since ``create`` (the ``m.room.create`` content) does not name
    the creator in every room version, the send is tried and the homeserver's answer decides.
    """
    if power_levels is None:
        return PowerCheck(needed=0, bot_level=0, admins=())
    listed = power_levels.get("users")
    users: Mapping[str, object] = listed if isinstance(listed, Mapping) else {}
    users_default = power_level_value(power_levels.get("users_default"), 0)
    needed = max(state_send_level(power_levels, kind) for kind in BRIDGE_EVENT_TYPES)
    bot_level: int | None = power_level_value(users.get(bot), users_default)
    if bot not in users and users_default < needed and creators_are_privileged(create):
        bot_level = None  # maybe a creator (or additional creator): let the homeserver answer
    grant_level = state_send_level(power_levels, POWER_LEVELS)
    admins = tuple(sorted(
        UserID(user) for user, level in users.items()
        if user != bot and power_level_value(level, users_default) >= grant_level
    ))
    return PowerCheck(needed=needed, bot_level=bot_level, admins=admins)


def power_notice(bot: UserID, check: PowerCheck) -> str:
    """The notice that asks the room's admins for the power the bot needs."""
    has = f"has {check.bot_level}" if check.bot_level is not None else "was refused"
    ask = f"{', '.join(check.admins)}: " if check.admins else ""
    return (
        f"{ask}The bridge cannot show which network this room is bridged to: setting its bridge "
        f"info (the m.bridge state event) needs power level {check.needed}, and the bridge bot "
        f"{bot} {has}. A room admin can give {bot} power level {check.needed} to fix this."
    )


# -- effectful ---------------------------------------------------------------------------------


async def announce_bridge(
    intent: BridgeInfoIntent, room_id: RoomID, state_key: str, content: Mapping[str, object],
) -> AnnounceResult:
    """Set ``m.bridge`` and ``uk.half-shot.bridge`` under ``state_key`` to ``content`` as the bot.

    Event types already holding ``content`` are not sent again (a missing event counts as
    ``{}``, so removing a bridge that was never announced sends nothing). Before sending, the
    room's power levels are read; when they show that the bot may not set the events, or the
    homeserver refuses them, nothing more is sent and one ``m.notice`` asks the room's admins for
    the level needed. The notice's transaction ID comes from the room, the state key and that
    level, so a retry within the homeserver's transaction window does not post it twice.
    """
    wanted = dict(content)
    stale = [
        event_type for event_type in BRIDGE_EVENT_TYPES
        if await _current(intent, room_id, event_type, state_key) != wanted
    ]
    if not stale:
        return AnnounceResult.UNCHANGED
    check = await _read_power(intent, room_id)
    if check.refused:
        await _ask_for_power(intent, room_id, state_key, check)
        return AnnounceResult.INSUFFICIENT_POWER
    try:
        for event_type in stale:
            await intent.send_state(room_id, event_type, state_key, wanted)
    except MatrixForbidden:
        await _ask_for_power(intent, room_id, state_key, check)
        return AnnounceResult.INSUFFICIENT_POWER
    return AnnounceResult.SENT


async def _current(
    intent: BridgeInfoIntent, room_id: RoomID, event_type: str, state_key: str,
) -> JSONDict:
    try:
        return await intent.get_state(room_id, event_type, state_key)
    except MatrixNotFound:
        return {}


async def _read_power(intent: BridgeInfoIntent, room_id: RoomID) -> PowerCheck:
    try:
        power_levels: JSONDict | None = await intent.get_state(room_id, "m.room.power_levels")
    except MatrixNotFound:
        power_levels = None
    create = await intent.get_state(room_id, "m.room.create")
    return check_power(power_levels, create, intent.user_id)


async def _ask_for_power(
    intent: BridgeInfoIntent, room_id: RoomID, state_key: str, check: PowerCheck,
) -> None:
    await intent.send_text(
        room_id, power_notice(intent.user_id, check), msgtype="m.notice", mentions=check.admins,
        txn_id=f"bridgekit.bridge-info.power:{room_id}:{state_key}:{check.needed}",
    )


__all__ = [
    "BRIDGE_EVENT_TYPES",
    "AnnounceResult",
    "BridgeInfoIntent",
    "BridgeSection",
    "PowerCheck",
    "announce_bridge",
    "bridge_info_content",
    "bridge_info_state_key",
    "check_power",
    "escape_bridge_id",
    "power_notice",
    "removal_content",
]
