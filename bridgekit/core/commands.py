"""The command framework of the management room: read a message, check the sender's level, run it.

It decides and never sends: :meth:`CommandRegistry.dispatch` returns the reply (and whether the
user's message must be redacted) and the caller does the I/O. Call it for every message a Matrix
user sends in a room the bridge handles; ``None`` means the message is not for the commands (an
ordinary portal message, to be bridged).

In the user's management room every message is a command; elsewhere only those that start with
the prefix (``!bk login``). Built-in and connector commands share one case-insensitive namespace,
and a collision is refused at registration, so no connector can shadow ``login`` or ``help``.

Multi-step flows (login asks for a username, then a password) are conversations: a reply may
carry a :class:`Prompt`, and the user's next message in that room is its answer rather than a
command, until ``cancel`` or the prompt's timeout. Answers to a secret prompt come back with
``redact_message``: a password typed into Matrix must not stay in the room's history.
"""

from __future__ import annotations

import difflib
import html
import logging
import secrets
import shlex
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace

from bridgekit.commands import (
    BAD_ARGUMENTS,
    FAILED,
    REFUSED,
    UNKNOWN_COMMAND,
    AnswerHandler,
    Command,
    CommandContext,
    CommandHandler,
    CommandReply,
    PermissionLevel,
    Prompt,
)
from bridgekit.ids import RoomID, UserID

log = logging.getLogger(__name__)

def parse(text: str) -> tuple[str, list[str]]:
    """Split a command line shell-style: the lower-cased name and the arguments (``("", [])`` if blank).

    Raises ValueError with a message meant for the user when the quoting is broken.
    """
    try:
        words = shlex.split(text)
    except ValueError as error:
        # shlex says "No closing quotation" or "No escaped character": true but unhelpful in a chat.
        reason = "a quote is not closed" if "quotation" in str(error) else "it ends with a lone backslash"
        raise ValueError(
            f"I could not read that command: {reason}. Put quotes around an argument with spaces "
            "(\"like this\"), and a backslash before a quote or backslash meant literally (don\\'t)."
        ) from error
    if not words:
        return "", []
    return words[0].casefold(), words[1:]


@dataclass(frozen=True)
class _Pending:
    prompt: Prompt
    command: str
    expires_at: float


class Conversations:
    """Prompts waiting for an answer, at most one per (user, room).

    Kept in memory: after a restart the user starts the flow again, which is cheaper than storing
    half a login. An abandoned prompt stays until the user's next message in that room, so that
    message (perhaps a late password) is still recognised as an answer and not echoed as a command.
    """

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._pending: dict[tuple[UserID, RoomID], _Pending] = {}

    def start(self, key: tuple[UserID, RoomID], prompt: Prompt, command: str) -> None:
        self._pending[key] = _Pending(prompt, command, self._clock() + prompt.timeout)

    def waiting(self, key: tuple[UserID, RoomID]) -> bool:
        return key in self._pending

    def take(self, key: tuple[UserID, RoomID]) -> tuple[_Pending, bool] | None:
        """Remove and return the pending prompt and whether it timed out, or None."""
        # Removed before the answer runs: an answer that fails ends the flow rather than looping.
        pending = self._pending.pop(key, None)
        if pending is None:
            return None
        return pending, self._clock() >= pending.expires_at


class CommandRegistry:
    """The commands of one bridge, and the dispatcher of messages to them."""

    def __init__(self, *, prefix: str = "!bk", clock: Callable[[], float] = time.monotonic) -> None:
        """``prefix`` starts commands outside the management room (``""``: no commands there)."""
        self._prefix = prefix.strip()
        self._commands: dict[str, tuple[Command, str | None]] = {}
        self._conversations = Conversations(clock)
        help_command = Command(
            "help", "Show the commands you can use, or how to use one", self._help,
            usage="[command]", level=PermissionLevel.NONE,
        )
        cancel = Command(
            "cancel", "Stop the question the bridge is waiting for you to answer", self._cancel,
            level=PermissionLevel.NONE,
        )
        self.register(help_command)
        self.register(cancel)

    def register(self, command: Command, *, connector: str | None = None) -> None:
        """Add a command (``connector``: the connector contributing it; None for built-ins).

        Raises ValueError if its name or an alias is taken, before changing anything.
        """
        for name in command.names:
            if name in self._commands:
                taken, owner = self._commands[name]
                who = f"connector {connector!r}" if connector else "bridgekit"
                raise ValueError(
                    f"{who} cannot register command {command.name!r}: {name!r} is already taken by "
                    f"the command {taken.name!r} of {f'connector {owner!r}' if owner else 'bridgekit'}; "
                    f"give it another name{f' (for example {connector}-{name})' if connector else ''}"
                )
        for name in command.names:
            self._commands[name] = (command, connector)

    def find(self, name: str) -> Command | None:
        """The command with this name or alias, whatever its case."""
        entry = self._commands.get(name.casefold())
        return entry[0] if entry else None

    def commands_for(self, level: PermissionLevel) -> list[Command]:
        """The commands a user of ``level`` may run, by name."""
        unique = {command.name: command for command, _ in self._commands.values() if command.level <= level}
        return [unique[name] for name in sorted(unique)]

    async def dispatch(self, text: str, context: CommandContext) -> CommandReply | None:
        """The reply to a user's message, or None when the message is not for the commands."""
        key = (context.sender, context.room_id)
        waiting = self._conversations.take(key)
        if waiting is not None:
            return await self._answer(*waiting, text, context)
        body = self._command_text(text, context.in_management_room)
        if body is None:
            return None
        try:
            name, args = parse(body)
        except ValueError as error:
            return CommandReply(str(error), errcode=BAD_ARGUMENTS)
        command = self.find(name or "help")
        if command is None:
            return self._unknown(name, context)
        return await self._started(command.name, context, await self.execute(command, args, context))

    async def execute(self, command: Command, args: list[str], context: CommandContext) -> CommandReply:
        """Check the sender's right to ``command`` and run it. The one path of every command, from
        the management room and from the provisioning API alike, so both apply the same rules and
        a refusal reads the same (its ``errcode`` says it is one)."""
        # A room_admin command checks both levels together, so the refusal names both when both
        # are missing; a user the bridge ignores is refused without reading the room's state.
        if context.level < command.level and (not command.room_admin or context.level is PermissionLevel.NONE):
            return self.refusal(command, context)
        if command.room_admin and not (command.admin_anywhere and context.level >= PermissionLevel.ADMIN):
            checked = await context.check_room_power(command.name, command.level)
            if isinstance(checked, CommandReply):
                return checked
        return await self._call(command.name, context, lambda: command.handler(context, args))

    async def run_once(self, line: str, context: CommandContext) -> CommandReply:
        """A command line run outside any conversation (the provisioning API): as in the room,
        except that a command that goes on to ask a question is refused (nobody would answer)."""
        try:
            name, args = parse(line)
        except ValueError as error:
            return CommandReply(str(error), errcode=BAD_ARGUMENTS)
        command = self.find(name) if name else None
        if command is None:
            return self._unknown(name, context)
        reply = await self.execute(command, args, context)
        if reply.prompt is not None:
            return CommandReply(f"'{command.name}' asks questions: run it in your management room, or use "
                                "the provisioning API's own endpoint for it.", errcode=BAD_ARGUMENTS)
        return reply

    async def _answer(self, pending: _Pending, timed_out: bool, text: str, context: CommandContext) -> CommandReply:
        # Whatever happens to a message sent to a secret prompt, it may hold the secret: redact it.
        secret = pending.prompt.secret
        again = f"Send '{self._shown_prefix(context)}{pending.command}' to start again."
        if timed_out:
            waited = _duration(pending.prompt.timeout)
            late = f"'{pending.command}' timed out after {waited} without an answer, so this message was not used. "
            return CommandReply(late + again, redact_message=secret)
        if (self._command_text(text, in_management_room=True) or "").casefold() == "cancel":
            return CommandReply(f"Cancelled '{pending.command}'. {again}", redact_message=secret)
        reply = await self._call(pending.command, context, lambda: pending.prompt.on_answer(context, text))
        reply = await self._started(pending.command, context, reply)
        return replace(reply, redact_message=secret or reply.redact_message)

    async def _call(
        self, name: str, context: CommandContext, call: Callable[[], Awaitable[CommandReply]]
    ) -> CommandReply:
        try:
            return await call()
        except Exception:
            error_id = secrets.token_hex(4)
            # The arguments are not logged: they may be a password.
            log.exception("command %r of %s in %s failed (error %s)", name, context.sender, context.room_id, error_id)
            return CommandReply(
                f"'{name}' failed because of an error in the bridge (error id {error_id}). "
                "The bridge admin can find the details in the bridge's log under that id.", errcode=FAILED,
            )

    async def _started(self, name: str, context: CommandContext, reply: CommandReply) -> CommandReply:
        """The reply, and the conversation it starts when it asks a question."""
        if reply.prompt is None:
            return reply
        self._conversations.start((context.sender, context.room_id), reply.prompt, name)
        hint = f"(Send '{self._shown_prefix(context)}cancel' to stop.)"
        shown_html = None if reply.html is None else f"{reply.html}<br><br>{html.escape(hint)}"
        return replace(reply, text=f"{reply.text}\n\n{hint}", html=shown_html)

    def concerns(self, text: str, sender: UserID, room_id: RoomID, *, in_management_room: bool) -> bool:
        """Cheap pre-check for the hot path: could :meth:`dispatch` take this message at all?

        False means it is certainly an ordinary message (no prefix, not the management room,
        no question waiting for the sender there); the caller can skip building a context.
        """
        return (
            in_management_room
            or self._conversations.waiting((sender, room_id))
            or (bool(self._prefix) and text.lstrip()[: len(self._prefix)].casefold() == self._prefix.casefold())
        )

    def _command_text(self, text: str, in_management_room: bool) -> str | None:
        stripped = text.strip()
        size = len(self._prefix)
        head, rest = stripped[:size], stripped[size:]
        if size and head.casefold() == self._prefix.casefold() and (not rest or rest[0].isspace()):
            return rest.strip()
        return stripped if in_management_room and stripped else None

    def _shown_prefix(self, context: CommandContext) -> str:
        return "" if context.in_management_room or not self._prefix else f"{self._prefix} "

    def _unknown(self, name: str, context: CommandContext) -> CommandReply:
        prefix = self._shown_prefix(context)
        allowed = [alias for command in self.commands_for(context.level) for alias in command.names]
        close = difflib.get_close_matches(name, allowed, n=1)
        guess = f" Did you mean '{prefix}{close[0]}'?" if close else ""
        return CommandReply(f"Unknown command '{name}'.{guess} Send '{prefix}help' for the commands you can use.",
                            errcode=UNKNOWN_COMMAND)

    def refusal(self, command: Command, context: CommandContext) -> CommandReply:
        """The refusal of ``command`` to a sender below its bridge permission level."""
        return CommandReply(
            f"'{command.name}' needs the '{command.level.label}' permission level, and yours is "
            f"'{context.level.label}'. The bridge admin can grant it to you in the 'permissions' "
            "section of the bridge's config.", errcode=REFUSED,
        )

    async def _help(self, context: CommandContext, args: list[str]) -> CommandReply:
        prefix = self._shown_prefix(context)
        if args:
            return self._help_for(args[0], context)
        if context.level is PermissionLevel.NONE:
            return CommandReply(
                "You have no permission to use this bridge. The bridge admin can grant it to you in the "
                "'permissions' section of the bridge's config."
            )
        lines = [f"Commands you can use (your permission level: {context.level.label}):"]
        lines += [f"  {prefix}{command.name}: {command.summary}" for command in self.commands_for(context.level)]
        lines.append(f"Send '{prefix}help <command>' to see how to use one.")
        if context.in_management_room and self._prefix:
            lines.append(f"In other rooms, start commands with '{self._prefix} '.")
        return CommandReply("\n".join(lines))

    def _help_for(self, name: str, context: CommandContext) -> CommandReply:
        command = self.find(name)
        if command is None:
            return self._unknown(name.casefold(), context)
        lines = [f"Usage: {self._shown_prefix(context)}{command.name} {command.usage}".rstrip(), command.summary]
        if command.aliases:
            lines.append(f"Also: {', '.join(command.aliases)}")
        if command.room_admin:
            lines.append("It changes the room it is sent in, so it also needs power in that room: by default the "
                         "level needed to change the room's power levels (the bridge's room_admin_level)."
                         + (" Bridge admins need none." if command.admin_anywhere else ""))
        if context.level < command.level:
            lines.append(self.refusal(command, context).text)
        return CommandReply("\n".join(lines))

    async def _cancel(self, context: CommandContext, args: list[str]) -> CommandReply:
        # Reached only when no prompt is waiting: a waiting prompt takes 'cancel' as its answer first.
        return CommandReply("There is nothing to cancel.")


def _duration(seconds: float) -> str:
    if seconds >= 60 and seconds % 60 == 0:
        minutes = int(seconds // 60)
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    return f"{seconds:g} second{'s' if seconds != 1 else ''}"


__all__ = [
    "AnswerHandler",
    "Command",
    "CommandContext",
    "CommandHandler",
    "CommandRegistry",
    "CommandReply",
    "Conversations",
    "Prompt",
    "parse",
]
