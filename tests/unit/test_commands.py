"""The management room's commands, as a user sees them: what the bot answers to what they type."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field

import pytest

from bridgekit.commands import RoomPowerReader
from bridgekit.core.commands import Command, CommandContext, CommandRegistry, CommandReply, Prompt, parse
from bridgekit.core.permissions import PermissionLevel
from bridgekit.ids import RoomID, UserID
from bridgekit.room_power import RoomPower

ALICE = UserID("@alice:example.org")
MANAGEMENT = RoomID("!management:example.org")
PORTAL = RoomID("!portal:example.org")


@dataclass
class FakeClock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Services:
    logins: list[tuple[str, str]] = field(default_factory=list)


async def status(context: CommandContext, args: list[str]) -> CommandReply:
    return CommandReply(f"status of {context.sender}: args={args}")


async def login(context: CommandContext, args: list[str]) -> CommandReply:
    async def got_username(context: CommandContext, username: str) -> CommandReply:
        async def got_password(context: CommandContext, password: str) -> CommandReply:
            context.services.logins.append((username, password))
            return CommandReply(f"Logged in as {username}.")

        return CommandReply("Password?", prompt=Prompt(got_password, timeout=60, secret=True))

    return CommandReply("Username?", prompt=Prompt(got_username))


async def crash(context: CommandContext, args: list[str]) -> CommandReply:
    raise RuntimeError("the remote network said no")


async def nothing(context: CommandContext, args: list[str]) -> CommandReply:
    return CommandReply("ok")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def registry(clock: FakeClock) -> CommandRegistry:
    registry = CommandRegistry(prefix="!bk", clock=clock)
    registry.register(Command("status", "Show your connections", status, level=PermissionLevel.RELAY))
    registry.register(Command("login", "Log in with your own account", login, usage="[network]", aliases=("signin",)))
    registry.register(Command("logout", "Log out", nothing))
    registry.register(Command("broadcast", "Tell every user something", nothing, "<text>", PermissionLevel.ADMIN))
    registry.register(Command("crash", "Always fails", crash, level=PermissionLevel.RELAY))
    return registry


def context(
    level: PermissionLevel = PermissionLevel.USER, room: RoomID = MANAGEMENT, services: Services | None = None
) -> CommandContext:
    return CommandContext(ALICE, level, room, room == MANAGEMENT, services or Services())


async def say(registry: CommandRegistry, text: str, ctx: CommandContext | None = None) -> CommandReply:
    reply = await registry.dispatch(text, ctx or context())
    assert reply is not None, f"{text!r} got no reply"
    return reply


async def test_help_lists_only_the_commands_the_users_level_allows(registry: CommandRegistry) -> None:
    relay = (await say(registry, "help", context(PermissionLevel.RELAY))).text
    assert "your permission level: relay" in relay
    assert "status: Show your connections" in relay
    assert "login" not in relay
    assert "broadcast" not in relay

    admin = (await say(registry, "help", context(PermissionLevel.ADMIN))).text
    for name in ("broadcast", "cancel", "crash", "help", "login", "logout", "status"):
        assert f"  {name}: " in admin
    assert "In other rooms, start commands with '!bk '." in admin


async def test_help_for_one_command_shows_its_usage_and_aliases(registry: CommandRegistry) -> None:
    reply = await say(registry, "help LOGIN")
    assert reply.text.splitlines()[:3] == ["Usage: login [network]", "Log in with your own account", "Also: signin"]
    in_portal = await say(registry, "!bk help broadcast", context(room=PORTAL))
    assert in_portal.text.startswith("Usage: !bk broadcast <text>")
    assert "needs the 'admin' permission level, and yours is 'user'" in in_portal.text


async def test_a_user_without_any_level_is_told_who_can_grant_one(registry: CommandRegistry) -> None:
    reply = await say(registry, "help", context(PermissionLevel.NONE))
    assert reply.text.startswith("You have no permission to use this bridge.")
    assert "'permissions' section" in reply.text


async def test_an_unknown_command_suggests_the_closest_one_and_help(registry: CommandRegistry) -> None:
    reply = await say(registry, "lgoin")
    assert reply.text == "Unknown command 'lgoin'. Did you mean 'login'? Send 'help' for the commands you can use."
    in_portal = await say(registry, "!bk stauts", context(room=PORTAL))
    assert "Did you mean '!bk status'? Send '!bk help'" in in_portal.text


async def test_a_refused_command_names_the_level_it_needs(registry: CommandRegistry) -> None:
    reply = await say(registry, "login", context(PermissionLevel.RELAY))
    assert reply.text == (
        "'login' needs the 'user' permission level, and yours is 'relay'. The bridge admin can grant it "
        "to you in the 'permissions' section of the bridge's config."
    )
    assert reply.prompt is None


async def test_names_ignore_case_and_aliases_work(registry: CommandRegistry) -> None:
    assert (await say(registry, "STATUS a")).text.endswith("args=['a']")
    assert (await say(registry, "SignIn")).text.startswith("Username?")


async def test_arguments_are_split_shell_style(registry: CommandRegistry) -> None:
    assert (await say(registry, "status \"#my channel\" don\\'t")).text.endswith("args=['#my channel', \"don't\"]")
    assert parse("  ") == ("", [])


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("status \"#my channel", "a quote is not closed"),
        ("status it's", "a quote is not closed"),
        ("status a\\", "it ends with a lone backslash"),
    ],
)
async def test_broken_quoting_gets_an_explanation_not_an_error(
    registry: CommandRegistry, text: str, reason: str
) -> None:
    reply = await say(registry, text)
    assert reply.text.startswith(f"I could not read that command: {reason}.")


async def test_outside_the_management_room_only_prefixed_messages_are_commands(registry: CommandRegistry) -> None:
    portal = context(room=PORTAL)
    assert await registry.dispatch("status", portal) is None  # an ordinary message, to be bridged
    assert await registry.dispatch("!bkstatus", portal) is None
    assert (await say(registry, "!BK  status", portal)).text.startswith("status of")
    assert (await say(registry, "!bk", portal)).text.startswith("Commands you can use")
    assert (await say(registry, "!bk status")).text.startswith("status of")  # allowed in the management room too
    assert await registry.dispatch("   ", context()) is None


async def test_login_asks_for_username_then_password_and_redacts_the_password(registry: CommandRegistry) -> None:
    services = Services()
    ctx = context(services=services)

    asked = await say(registry, "login", ctx)
    assert asked.text == "Username?\n\n(Send 'cancel' to stop.)"
    assert asked.prompt is not None

    username = await say(registry, "alice", ctx)  # an answer, not the unknown command 'alice'
    assert username.text.startswith("Password?")
    assert not username.redact_message

    password = await say(registry, "hunter2 \"quoted'", ctx)  # answers are not parsed: any password works
    assert password.text == "Logged in as alice."
    assert password.redact_message
    assert services.logins == [("alice", "hunter2 \"quoted'")]

    assert (await say(registry, "status", ctx)).text.startswith("status of")  # commands again


async def test_cancel_stops_a_login_halfway(registry: CommandRegistry) -> None:
    services = Services()
    ctx = context(services=services)
    await say(registry, "login", ctx)
    await say(registry, "alice", ctx)

    cancelled = await say(registry, "Cancel", ctx)
    assert cancelled.text == "Cancelled 'login'. Send 'login' to start again."
    assert services.logins == []
    assert (await say(registry, "cancel", ctx)).text == "There is nothing to cancel."


async def test_a_late_password_is_not_used_and_still_redacted(registry: CommandRegistry, clock: FakeClock) -> None:
    services = Services()
    ctx = context(services=services)
    await say(registry, "login", ctx)
    await say(registry, "alice", ctx)
    clock.now += 61

    late = await say(registry, "hunter2", ctx)
    assert late.text == (
        "'login' timed out after 1 minute without an answer, so this message was not used. "
        "Send 'login' to start again."
    )
    assert late.redact_message
    assert services.logins == []
    assert (await say(registry, "status", ctx)).text.startswith("status of")


async def test_an_answer_just_in_time_is_used(registry: CommandRegistry, clock: FakeClock) -> None:
    await say(registry, "login")
    clock.now += 299
    assert (await say(registry, "alice")).text.startswith("Password?")


async def test_a_prompt_waits_only_in_its_own_room(registry: CommandRegistry) -> None:
    await say(registry, "login")
    assert await registry.dispatch("hello everyone", context(room=PORTAL)) is None  # bridged, not swallowed
    assert (await say(registry, "alice")).text.startswith("Password?")


async def test_a_connector_command_cannot_take_a_built_in_name(registry: CommandRegistry) -> None:
    with pytest.raises(ValueError, match="connector 'irc' cannot register command 'LOGIN'") as raised:
        registry.register(Command("LOGIN", "IRC login", nothing), connector="irc")
    assert "already taken by the command 'login' of bridgekit" in str(raised.value)
    assert "irc-login" in str(raised.value)


async def test_a_colliding_alias_is_refused_and_nothing_is_registered(registry: CommandRegistry) -> None:
    with pytest.raises(ValueError, match="'help' is already taken by the command 'help' of bridgekit"):
        registry.register(Command("nick", "Change nick", nothing, aliases=("help",)), connector="irc")
    assert registry.find("nick") is None
    registry.register(Command("nick", "Change nick", nothing), connector="irc")
    with pytest.raises(ValueError, match="taken by the command 'nick' of connector 'irc'"):
        registry.register(Command("nick", "Change nick", nothing), connector="webhook")


def test_a_command_name_must_be_one_word() -> None:
    with pytest.raises(ValueError, match="must be one word"):
        Command("log in", "Log in", nothing)


async def test_a_failing_command_gets_a_short_reply_and_the_log_gets_the_details(
    registry: CommandRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="bridgekit.core.commands"):
        reply = await say(registry, "crash my-secret-token")
    found = re.fullmatch(
        r"'crash' failed because of an error in the bridge \(error id (\w+)\)\. "
        r"The bridge admin can find the details in the bridge's log under that id\.",
        reply.text,
    )
    assert found is not None, reply.text
    assert "remote network said no" not in reply.text
    [record] = caplog.records
    assert found.group(1) in record.getMessage()
    assert record.exc_info is not None
    assert "the remote network said no" in str(record.exc_info[1])
    assert "my-secret-token" not in caplog.text


async def test_a_failing_password_step_ends_the_flow_and_still_redacts(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken_login(context: CommandContext, args: list[str]) -> CommandReply:
        async def fail(context: CommandContext, password: str) -> CommandReply:
            raise ConnectionError("remote down")

        return CommandReply("Password?", prompt=Prompt(fail, secret=True))

    registry = CommandRegistry(clock=clock)
    registry.register(Command("login", "Log in", broken_login))
    await say(registry, "login")
    with caplog.at_level(logging.ERROR, logger="bridgekit.core.commands"):
        failed = await say(registry, "hunter2")
    assert failed.text.startswith("'login' failed because of an error in the bridge")
    assert failed.redact_message
    assert "hunter2" not in caplog.text
    assert (await say(registry, "help")).text.startswith("Commands you can use")  # the flow is over


async def test_the_cheap_pre_check_agrees_with_dispatch(registry: CommandRegistry) -> None:
    """Ordinary portal messages skip the command machinery; everything dispatch takes passes."""
    assert not registry.concerns("hello there", ALICE, PORTAL, in_management_room=False)
    assert registry.concerns("  !BK status", ALICE, PORTAL, in_management_room=False)
    assert registry.concerns("status", ALICE, MANAGEMENT, in_management_room=True)
    await say(registry, "login")  # a question is now waiting for alice in her management room
    assert registry.concerns("my-username", ALICE, MANAGEMENT, in_management_room=False)


# -- commands that change the room need power in it ------------------------------------------


def power_reader(level: int | None, needed: int = 100) -> tuple[list[tuple[RoomID, UserID]], RoomPowerReader]:
    asked: list[tuple[RoomID, UserID]] = []

    async def read(room_id: RoomID, user_id: UserID) -> RoomPower:
        asked.append((room_id, user_id))
        return RoomPower(level=level, needed=needed, admin_level=needed)

    return asked, read


@pytest.fixture
def room_registry(registry: CommandRegistry) -> CommandRegistry:
    registry.register(Command("relay", "Relay on or off", nothing, "on|off", PermissionLevel.USER, room_admin=True))
    return registry


async def test_a_room_admin_command_refuses_a_member_without_room_power(room_registry: CommandRegistry) -> None:
    asked, read = power_reader(level=0)
    ctx = CommandContext(ALICE, PermissionLevel.USER, PORTAL, False, Services(), room_power_reader=read)

    reply = await say(room_registry, "!bk relay off", ctx)

    assert reply.text.startswith("'relay' needs power level 100 in this room (yours is 0)")
    assert asked == [(PORTAL, ALICE)]


async def test_a_room_admin_command_names_both_levels_when_both_are_missing(room_registry: CommandRegistry) -> None:
    _, read = power_reader(level=50)
    ctx = CommandContext(ALICE, PermissionLevel.RELAY, PORTAL, False, Services(), room_power_reader=read)

    reply = await say(room_registry, "!bk relay off", ctx)

    assert ("bridge permission level 'user' (yours is 'relay') and power level 100 in this room (yours is 50)"
            in reply.text)


async def test_a_room_admin_command_runs_for_a_room_admin_or_a_v12_creator(room_registry: CommandRegistry) -> None:
    for level in (100, None):
        _, read = power_reader(level=level)
        ctx = CommandContext(ALICE, PermissionLevel.USER, PORTAL, False, Services(), room_power_reader=read)
        assert (await say(room_registry, "!bk relay off", ctx)).text == "ok"


async def test_a_bridge_admin_without_room_power_is_refused_too(room_registry: CommandRegistry) -> None:
    _, read = power_reader(level=0)
    ctx = CommandContext(ALICE, PermissionLevel.ADMIN, PORTAL, False, Services(), room_power_reader=read)

    reply = await say(room_registry, "!bk relay off", ctx)

    assert "power level 100 in this room (yours is 0); your bridge permission level ('admin') is enough" in reply.text


async def test_a_user_the_bridge_ignores_is_refused_without_reading_the_room(room_registry: CommandRegistry) -> None:
    asked, read = power_reader(level=100)
    ctx = CommandContext(ALICE, PermissionLevel.NONE, PORTAL, False, Services(), room_power_reader=read)

    reply = await say(room_registry, "!bk relay off", ctx)

    assert "needs the 'user' permission level, and yours is 'none'" in reply.text
    assert asked == []
