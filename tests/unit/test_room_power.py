"""A user's power in a room and the level a room-changing command needs, by the room version's rules."""

from __future__ import annotations

from typing import Any

import pytest

from bridgekit.commands import CommandContext, CommandReply, PermissionLevel, authority_refusal
from bridgekit.errors import MatrixForbidden, MatrixNotFound
from bridgekit.ids import RoomID, UserID
from bridgekit.room_power import RoomPower, read_room_power, room_power

CREATOR = UserID("@creator:example.org")
CO_CREATOR = UserID("@co:example.org")
MOD = UserID("@mod:example.org")
MEMBER = UserID("@member:example.org")
ROOM = RoomID("!room:example.org")


def create_event(
    version: str | None, *, additional: list[str] | None = None, creator_in_content: bool = False,
) -> dict[str, Any]:
    content: dict[str, Any] = {}
    if version is not None:
        content["room_version"] = version
    if additional is not None:
        content["additional_creators"] = additional
    if creator_in_content:
        content["creator"] = CREATOR
    return {"type": "m.room.create", "sender": CREATOR, "state_key": "", "content": content}


def levels(**overrides: Any) -> dict[str, Any]:
    return {"users": {MOD: 100, MEMBER: 0}, "users_default": 0, "state_default": 50,
            "events": {"m.room.power_levels": 100}, **overrides}


def test_the_default_requirement_is_the_level_to_change_power_levels() -> None:
    mod = room_power(levels(), create_event("10"), MOD)
    member = room_power(levels(), create_event("10"), MEMBER)

    assert (mod.needed, mod.level, mod.allowed, mod.room_admin) == (100, 100, True, True)
    assert (member.needed, member.level, member.allowed, member.room_admin) == (100, 0, False, False)


def test_without_an_events_entry_state_default_then_50_apply() -> None:
    assert room_power({"state_default": 75}, create_event("10"), MEMBER).needed == 75
    assert room_power({"users": {}}, create_event("10"), MEMBER).needed == 50


def test_in_v11_a_creator_unlisted_in_users_has_only_users_default() -> None:
    # The room's creator was demoted (or never listed): v1-11 give creators nothing beyond the list.
    power = room_power(levels(users={MOD: 100}), create_event("11"), CREATOR)

    assert (power.level, power.allowed) == (0, False)


def test_in_v12_the_creators_are_above_every_level_whatever_users_says() -> None:
    demoted = levels(users={MOD: 100, CREATOR: 0, CO_CREATOR: 0})
    event = create_event("12", additional=[CO_CREATOR])

    for creator in (CREATOR, CO_CREATOR):
        power = room_power(demoted, event, creator, required=1_000_000)
        assert (power.level, power.allowed, power.room_admin) == (None, True, True)
        assert "creator" in power.shown_level
    assert room_power(demoted, event, MEMBER).allowed is False


def test_additional_creators_mean_nothing_before_v12() -> None:
    power = room_power(levels(), create_event("11", additional=[CO_CREATOR]), CO_CREATOR)

    assert (power.level, power.allowed) == (0, False)


@pytest.mark.parametrize("version", ["12", "org.example.future", "13"])
def test_unknown_and_later_versions_keep_privileged_creators(version: str) -> None:
    assert room_power(levels(users={}), create_event(version), CREATOR).level is None


def test_a_missing_room_version_is_version_1() -> None:
    assert room_power(levels(users={}), create_event(None), CREATOR).level == 0


def test_string_levels_of_old_rooms_are_understood() -> None:
    old = {"users": {MOD: "100", MEMBER: "10"}, "state_default": "50", "events": {"m.room.power_levels": "100"},
           "users_default": "5"}

    assert room_power(old, create_event("4"), MOD) == RoomPower(level=100, needed=100, admin_level=100)
    assert room_power(old, create_event("4"), MEMBER).level == 10
    assert room_power(old, create_event("4"), UserID("@other:example.org")).level == 5


def test_a_raised_requirement_written_as_the_homeserver_reads_it_is_not_read_as_the_default() -> None:
    # Synapse reads string levels of old rooms with int(): " 100" and "+100" are 100, so a room that
    # raised what changing its power levels needs must not look like one that kept state_default.
    for written in (" 100", "+100", "100 "):
        raised = {"users": {MEMBER: 50}, "state_default": 50, "events": {"m.room.power_levels": written}}
        assert not room_power(raised, create_event("4"), MEMBER).allowed


def test_nonsense_levels_fall_back_to_the_defaults() -> None:
    odd = {"users": {MEMBER: True, MOD: "lots"}, "events": {"m.room.power_levels": None}, "state_default": 60}

    assert room_power(odd, create_event("10"), MEMBER).level == 0
    assert room_power(odd, create_event("10"), MOD).level == 0
    assert room_power(odd, create_event("10"), MOD).needed == 60


def test_without_power_levels_the_creator_has_100_and_state_needs_50() -> None:
    creator = room_power(None, create_event("10"), CREATOR)
    member = room_power(None, create_event("10"), MEMBER)

    assert (creator.level, creator.needed, creator.allowed) == (100, 50, True)
    assert (member.level, member.allowed) == (0, False)
    assert room_power(None, create_event("12"), CREATOR).level is None


def test_the_content_alone_names_the_creator_only_before_v11() -> None:
    # A homeserver that ignores format=event answers the content: rooms v1-10 carry `creator`.
    content_only = create_event("10", creator_in_content=True)["content"]

    assert room_power(levels(users={CREATOR: 100}), content_only, CREATOR).level == 100
    assert room_power(None, content_only, CREATOR).level == 100


def test_a_configured_level_or_event_type_replaces_the_default() -> None:
    assert room_power(levels(), create_event("10"), MEMBER, required=0).allowed is True
    named = room_power(levels(events={"m.room.name": 50}), create_event("10"), MEMBER, required="m.room.name")
    assert (named.needed, named.admin_level) == (50, 50)


def test_a_refusal_names_what_is_missing_with_the_numbers() -> None:
    short = RoomPower(level=0, needed=100, admin_level=100)
    enough = RoomPower(level=100, needed=100, admin_level=100)

    both = authority_refusal("relay", PermissionLevel.USER, PermissionLevel.RELAY, short)
    assert both is not None
    assert "bridge permission level 'user' (yours is 'relay')" in both
    assert "power level 100 in this room (yours is 0)" in both
    room_only = authority_refusal("relay", PermissionLevel.USER, PermissionLevel.USER, short)
    assert room_only is not None
    assert "power level 100 in this room (yours is 0)" in room_only
    assert "bridge permission level ('user') is enough" in room_only
    bridge_only = authority_refusal("relay", PermissionLevel.USER, PermissionLevel.RELAY, enough)
    assert bridge_only is not None
    assert "'user' (yours is 'relay'); your power in this room (100) is enough" in bridge_only
    assert authority_refusal("relay", PermissionLevel.USER, PermissionLevel.USER, enough) is None


class StateIntent:
    """The two reads :func:`read_room_power` makes, answered from a dict (or refused)."""

    def __init__(self, power_levels: dict[str, Any] | None, create: dict[str, Any], *, forbidden: bool = False) -> None:
        self.power_levels, self.create, self.forbidden = power_levels, create, forbidden

    async def get_state(self, room_id: RoomID, event_type: str, state_key: str = "") -> dict[str, Any]:
        if self.forbidden:
            raise MatrixForbidden(403, "M_FORBIDDEN", "not in the room")
        if self.power_levels is None:
            raise MatrixNotFound(404, "M_NOT_FOUND", "no such state")
        return self.power_levels

    async def get_state_event(self, room_id: RoomID, event_type: str, state_key: str = "") -> dict[str, Any]:
        assert event_type == "m.room.create"
        return self.create


async def test_reading_a_room_without_power_levels_follows_the_spec() -> None:
    power = await read_room_power(StateIntent(None, create_event("10")), ROOM, MEMBER)

    assert power == RoomPower(level=0, needed=50, admin_level=50)


async def test_a_context_refuses_when_the_room_cannot_be_read() -> None:
    intent = StateIntent(levels(), create_event("10"), forbidden=True)

    async def reader(room_id: RoomID, user_id: UserID) -> RoomPower:
        return await read_room_power(intent, room_id, user_id)

    context = CommandContext(MOD, PermissionLevel.ADMIN, ROOM, False, room_power_reader=reader)
    refusal = await context.check_room_power("webhook create")

    assert isinstance(refusal, CommandReply)
    assert "could not read this room's power levels" in refusal.text
