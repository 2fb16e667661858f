"""Bridge info (MSC2346): what clients will read in a portal's state, and how the bot sets it.

The content is checked against the JSON schema in ``spec/``. ``announce_bridge`` runs against a
small fake room that keeps state and timeline like a homeserver would (including transaction-ID
deduplication), so the tests read what a room member would see.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]  # no stubs installed; tests only
import pytest

from bridgekit.core.bridge_info import (
    AnnounceResult,
    BridgeSection,
    announce_bridge,
    bridge_info_content,
    bridge_info_state_key,
    escape_bridge_id,
    removal_content,
)
from bridgekit.errors import MatrixForbidden, MatrixNotFound
from bridgekit.events import JSONDict
from bridgekit.ids import ContentURI, EventID, RoomID, UserID

ROOT = Path(__file__).resolve().parents[2]
# The schema lives with the spec notes; the first copy found is used.
SCHEMA_CANDIDATES = [
    ROOT / "tests" / "data" / "m.bridge.content.schema.json",  # a copy kept with the tests
    ROOT / "spec" / "m.bridge.content.schema.json",
    ROOT.parent / "shared" / "spec" / "m.bridge.content.schema.json",
]
BOT = UserID("@ircbot:example.org")
ALICE = UserID("@alice:example.org")
ROOM = RoomID("!portal:example.org")
KEY = "org.example.irc://irc/libera/#friends"
IRC = BridgeSection("irc", displayname="IRC")
LIBERA = BridgeSection("libera", displayname="Libera.Chat", external_url="ircs://irc.libera.chat")
FRIENDS = BridgeSection("#friends", external_url="ircs://irc.libera.chat/#friends")


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    found = [path for path in SCHEMA_CANDIDATES if path.exists()]
    if not found:
        pytest.skip(f"m.bridge.content.schema.json is in none of {SCHEMA_CANDIDATES}")
    loaded: dict[str, Any] = json.loads(found[0].read_text())
    jsonschema.Draft202012Validator.check_schema(loaded)
    return loaded


def a_content() -> JSONDict:
    return bridge_info_content(bridgebot=BOT, protocol=IRC, network=LIBERA, channel=FRIENDS)


class FakeRoom:
    """One room as the bot sees it: state by (type, key), a timeline of notices, power levels."""

    def __init__(self, *, power_levels: JSONDict | None = None, room_version: str = "11") -> None:
        self.state: dict[tuple[str, str], JSONDict] = {("m.room.create", ""): {"room_version": room_version}}
        if power_levels is not None:
            self.state[("m.room.power_levels", "")] = power_levels
        self.timeline: list[tuple[str, JSONDict]] = []  # (event type, content)
        self.state_sends: list[tuple[str, str]] = []
        self.refuse_state = False
        self._txns: dict[str, EventID] = {}


class FakeIntent:
    """The bot's intent in one FakeRoom; satisfies BridgeInfoIntent."""

    def __init__(self, room: FakeRoom, user_id: UserID = BOT) -> None:
        self.room = room
        self.user_id = user_id

    async def get_state(self, room_id: RoomID, event_type: str, state_key: str = "") -> JSONDict:
        assert room_id == ROOM
        try:
            return dict(self.room.state[(event_type, state_key)])
        except KeyError:
            raise MatrixNotFound(404, "M_NOT_FOUND", "Event not found.") from None

    async def send_state(
        self, room_id: RoomID, event_type: str, state_key: str, content: Mapping[str, object],
    ) -> EventID:
        assert room_id == ROOM
        if self.room.refuse_state:
            raise MatrixForbidden(403, "M_FORBIDDEN", "You don't have permission to post that")
        self.room.state_sends.append((event_type, state_key))
        self.room.state[(event_type, state_key)] = dict(content)
        self.room.timeline.append((event_type, dict(content)))
        return EventID(f"$state{len(self.room.timeline)}")

    async def send_text(
        self,
        room_id: RoomID,
        body: str,
        *,
        msgtype: str = "m.text",
        mentions: Iterable[UserID] | None = None,
        txn_id: str | None = None,
    ) -> EventID:
        assert room_id == ROOM
        if txn_id is not None and txn_id in self.room._txns:
            return self.room._txns[txn_id]
        content = {"msgtype": msgtype, "body": body, "m.mentions": {"user_ids": list(mentions or [])}}
        self.room.timeline.append(("m.room.message", content))
        event_id = EventID(f"$msg{len(self.room.timeline)}")
        if txn_id is not None:
            self.room._txns[txn_id] = event_id
        return event_id

    def notices(self) -> list[JSONDict]:
        return [c for kind, c in self.room.timeline if kind == "m.room.message" and c["msgtype"] == "m.notice"]


def levels(
    *, bot: int | None = 100, state_default: int = 50, events: Mapping[str, int] | None = None,
) -> JSONDict:
    users: dict[str, int] = {ALICE: 100}
    if bot is not None:
        users[BOT] = bot
    return {"users": users, "users_default": 0, "state_default": state_default,
            "events": {"m.room.power_levels": 100, **(events or {})}}


# -- content ----------------------------------------------------------------------------------


def test_the_content_carries_every_section_and_is_valid_bridge_info(schema: dict[str, Any]) -> None:
    content = bridge_info_content(
        bridgebot=BOT, creator=ALICE,
        protocol=BridgeSection("irc", "IRC", ContentURI("mxc://example.org/irc"), "https://ircv3.net"),
        network=LIBERA, channel=FRIENDS,
    )

    jsonschema.validate(content, schema)
    assert content == {
        "bridgebot": BOT,
        "creator": ALICE,
        "protocol": {"id": "irc", "displayname": "IRC", "avatar_url": "mxc://example.org/irc",
                     "external_url": "https://ircv3.net"},
        "network": {"id": "libera", "displayname": "Libera.Chat", "external_url": "ircs://irc.libera.chat"},
        "channel": {"id": "#friends", "external_url": "ircs://irc.libera.chat/#friends"},
    }


def test_optional_parts_are_left_out_not_sent_as_null(schema: dict[str, Any]) -> None:
    content = bridge_info_content(bridgebot=BOT, protocol=BridgeSection("webhook"), channel=BridgeSection("42"))

    jsonschema.validate(content, schema)
    assert content == {"bridgebot": BOT, "protocol": {"id": "webhook"}, "channel": {"id": "42"}}


def test_upper_case_ids_are_escaped_and_clients_still_show_the_original(schema: dict[str, Any]) -> None:
    content = bridge_info_content(bridgebot=BOT, protocol=IRC, channel=BridgeSection("#Friends"))

    jsonschema.validate(content, schema)
    assert content["channel"] == {"id": "#=46riends", "displayname": "#Friends"}
    assert content["channel"]["id"] == content["channel"]["id"].lower()


def test_ids_differing_only_in_case_stay_apart() -> None:
    ids = ["#friends", "#Friends", "#FRIENDS", "a=46", "aF", "É", "é"]

    escaped = [escape_bridge_id(remote_id) for remote_id in ids]

    assert len(set(escaped)) == len(ids)
    assert all(e == e.lower() for e in escaped)
    assert escape_bridge_id("É") == "=c3=89"


def test_removal_is_empty_content_which_the_schema_accepts(schema: dict[str, Any]) -> None:
    jsonschema.validate(removal_content(), schema)
    assert removal_content() == {}


@pytest.mark.parametrize(
    ("section", "message"),
    [
        (BridgeSection(""), "non-empty id"),
        (BridgeSection("x", avatar_url=ContentURI("https://example.org/a.png")), "mxc://"),
    ],
)
def test_content_the_schema_would_reject_is_refused_early(section: BridgeSection, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        bridge_info_content(bridgebot=BOT, protocol=IRC, channel=section)


def test_a_bot_that_is_not_a_user_id_is_refused() -> None:
    with pytest.raises(ValueError, match="bridgebot must be a Matrix user ID"):
        bridge_info_content(bridgebot=UserID("ircbot"), protocol=IRC, channel=FRIENDS)


# -- state keys -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ids", "key"),
    [
        (("irc", "libera", "#friends"), "org.example.irc://irc/libera/#friends"),
        (("irc", "Libera", "#Friends"), "org.example.irc://irc/=4cibera/#=46riends"),
        (("github", "matrix-org/matrix-doc", "2346"), "org.example.irc://github/matrix-org%2Fmatrix-doc/2346"),
        (("irc", None, "#a b%2F"), "org.example.irc://irc/#a%20b%252=46"),
        (("xmpp", None, "xsf@muc.xmpp.org"), "org.example.irc://xmpp/xsf@muc.xmpp.org"),
    ],
)
def test_state_keys_follow_the_msc_form(ids: tuple[str, str | None, str], key: str) -> None:
    protocol, network, channel = ids
    assert bridge_info_state_key("org.example.irc", protocol, network, channel) == key


def test_an_id_cannot_add_a_level_to_the_key() -> None:
    assert bridge_info_state_key("sw", "p", "a/b", "c") != bridge_info_state_key("sw", "p", "a", "b/c")
    assert bridge_info_state_key("sw", "p", None, "a/b") != bridge_info_state_key("sw", "p", "a", "b")


@pytest.mark.parametrize(("software", "ids", "message"), [
    ("", ("irc", "libera", "#x"), "like a URI scheme"),
    ("org.example/irc", ("irc", "libera", "#x"), "like a URI scheme"),
    ("org.example irc", ("irc", "libera", "#x"), "like a URI scheme"),
    ("org.example.irc", ("irc", "", "#x"), "must not be empty"),
    ("org.example.irc", ("irc", "libera", ""), "must not be empty"),
])
def test_keys_that_would_be_ambiguous_are_refused(
    software: str, ids: tuple[str, str, str], message: str,
) -> None:
    with pytest.raises(ValueError, match=message):
        bridge_info_state_key(software, *ids)


# -- announcing -------------------------------------------------------------------------------


async def test_announcing_sets_both_event_types_with_one_key_and_content() -> None:
    room = FakeRoom(power_levels=levels())
    bot = FakeIntent(room)

    result = await announce_bridge(bot, ROOM, KEY, a_content())

    assert result is AnnounceResult.SENT
    assert room.state[("m.bridge", KEY)] == a_content()
    assert room.state[("uk.half-shot.bridge", KEY)] == a_content()
    assert bot.notices() == []


async def test_announcing_what_is_already_there_sends_nothing() -> None:
    room = FakeRoom(power_levels=levels())
    bot = FakeIntent(room)
    await announce_bridge(bot, ROOM, KEY, a_content())

    again = await announce_bridge(bot, ROOM, KEY, a_content())

    assert again is AnnounceResult.UNCHANGED
    assert len(room.state_sends) == 2


async def test_only_the_event_type_that_differs_is_sent() -> None:
    room = FakeRoom(power_levels=levels())
    room.state[("uk.half-shot.bridge", KEY)] = a_content()

    assert await announce_bridge(FakeIntent(room), ROOM, KEY, a_content()) is AnnounceResult.SENT
    assert room.state_sends == [("m.bridge", KEY)]


async def test_changed_info_replaces_the_old_and_removal_empties_it() -> None:
    room = FakeRoom(power_levels=levels())
    bot = FakeIntent(room)
    await announce_bridge(bot, ROOM, KEY, a_content())
    renamed = bridge_info_content(
        bridgebot=BOT, protocol=IRC, network=LIBERA, channel=BridgeSection("#friends", "Friends"),
    )

    assert await announce_bridge(bot, ROOM, KEY, renamed) is AnnounceResult.SENT
    assert room.state[("m.bridge", KEY)]["channel"] == {"id": "#friends", "displayname": "Friends"}
    assert await announce_bridge(bot, ROOM, KEY, removal_content()) is AnnounceResult.SENT
    assert room.state[("m.bridge", KEY)] == room.state[("uk.half-shot.bridge", KEY)] == {}


async def test_removing_a_bridge_that_was_never_announced_sends_nothing() -> None:
    room = FakeRoom(power_levels=levels())

    assert await announce_bridge(FakeIntent(room), ROOM, KEY, removal_content()) is AnnounceResult.UNCHANGED
    assert room.state_sends == []


async def test_without_the_power_the_bot_asks_the_admins_once_and_sets_nothing() -> None:
    room = FakeRoom(power_levels=levels(bot=0, state_default=50))
    bot = FakeIntent(room)

    first = await announce_bridge(bot, ROOM, KEY, a_content())
    retry = await announce_bridge(bot, ROOM, KEY, a_content())

    assert first is retry is AnnounceResult.INSUFFICIENT_POWER
    assert room.state_sends == []
    [notice] = bot.notices()
    assert "power level 50" in notice["body"]
    assert BOT in notice["body"]
    assert "has 0" in notice["body"]
    assert notice["m.mentions"] == {"user_ids": [ALICE]}  # the admin is pinged, not the bot


async def test_a_level_set_for_the_unstable_type_counts_too() -> None:
    room = FakeRoom(power_levels=levels(bot=50, events={"uk.half-shot.bridge": 75}))
    bot = FakeIntent(room)

    assert await announce_bridge(bot, ROOM, KEY, a_content()) is AnnounceResult.INSUFFICIENT_POWER
    assert "power level 75" in bot.notices()[0]["body"]


async def test_a_level_set_for_m_bridge_lets_a_modest_bot_announce() -> None:
    room = FakeRoom(power_levels=levels(bot=10, events={"m.bridge": 10, "uk.half-shot.bridge": 0}))

    assert await announce_bridge(FakeIntent(room), ROOM, KEY, a_content()) is AnnounceResult.SENT


async def test_a_refusal_by_the_homeserver_also_becomes_the_notice() -> None:
    # In a v12 room an unlisted bot may be the all-powerful creator, so the bot tries; the
    # homeserver's refusal is then the answer.
    room = FakeRoom(power_levels=levels(bot=None, state_default=50), room_version="12")
    room.refuse_state = True
    bot = FakeIntent(room)

    assert await announce_bridge(bot, ROOM, KEY, a_content()) is AnnounceResult.INSUFFICIENT_POWER
    [notice] = bot.notices()
    assert "power level 50" in notice["body"]
    assert "was refused" in notice["body"]


async def test_an_unlisted_creator_in_a_v12_room_announces() -> None:
    room = FakeRoom(power_levels=levels(bot=None, state_default=50), room_version="12")

    assert await announce_bridge(FakeIntent(room), ROOM, KEY, a_content()) is AnnounceResult.SENT


async def test_string_levels_of_old_rooms_are_understood() -> None:
    room = FakeRoom(power_levels={"users": {BOT: "0"}, "state_default": "50"}, room_version="4")
    bot = FakeIntent(room)

    assert await announce_bridge(bot, ROOM, KEY, a_content()) is AnnounceResult.INSUFFICIENT_POWER
    assert "power level 50" in bot.notices()[0]["body"]
