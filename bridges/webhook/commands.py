"""``webhook`` commands, sent in the room a hook belongs to (``!bk webhook create ci``).

Inbound: ``create``, ``list``, ``remove``, ``rotate``, ``scheme``, ``identity``. Outbound:
``out add``, ``out list``, ``out remove``. Both: ``adopt``. URLs and secrets are sent to the
person who asked, in their direct chat with the bot (``ctx.tell_user``), never into the room.

Who may do what: the lists need the ``user`` level. Every verb that changes something needs the
``user`` level **and** the room power level the bridge requires (``room_admin_level``; by default
that of the room's admins), because a hook reads or writes the room on everyone's behalf. Changing
or removing a hook also needs its creator, a bridge admin or a room admin (power to change the
room's power levels); ``adopt`` (taking over a hook, e.g. one suspended because its creator
left) needs a bridge admin or a room admin, and gives the hook new credentials, since the old
creator holds the old ones.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bridgekit import (
    BridgeContext,
    Command,
    CommandContext,
    CommandReply,
    GuardedHTTP,
    PermissionLevel,
    RoomPower,
    UnsafeURL,
    check_literal,
    parse_target,
)
from bridges.webhook.identity import IdentityStyle
from bridges.webhook.inbound import link_rooms, now_ms
from bridges.webhook.secret_box import SecretBox, SecretBoxUnavailable, inbound_row, outbound_row
from bridges.webhook.settings import WebhookSettings
from bridges.webhook.signatures import Scheme, hash_token, new_token
from bridges.webhook.store import ACTIVE, Hook, OutboundHook, WebhookStore

USAGE = (
    "create <name> [token|github|slack|hmac] [bot|ghosts] | list | remove <id> | rotate <id> | "
    "scheme <id> <token|github|slack|hmac> | identity <id> <bot|ghosts> | out add <url> | out list | "
    "out remove <id> | adopt <id>"
)
SCHEMES = ", ".join(scheme.value for scheme in Scheme)
STYLES = ", ".join(style.value for style in IdentityStyle)

@dataclass(frozen=True)
class Runtime:
    """What the verbs use of the started connector."""

    ctx: BridgeContext
    settings: WebhookSettings
    store: WebhookStore
    box: SecretBox
    http: GuardedHTTP


Handler = Callable[[Runtime, CommandContext, list[str], RoomPower | None], Awaitable[CommandReply]]
"""A verb's code: the arguments after the verb, and the sender's power in the room (read by the
gate before any verb that changes something; None for the read-only ones)."""
HookHandler = Callable[[Runtime, CommandContext, Hook, list[str]], Awaitable[CommandReply]]
"""A verb on one of the room's inbound hooks that the sender may change; the arguments after its ID."""


@dataclass(frozen=True)
class _Verb:
    run: Handler
    usage: str = "<id>"
    arity: int | None = 1
    """How many arguments it takes (else the usage is the answer); None: any (it checks them)."""
    choices: frozenset[str] = frozenset()
    """What its second argument may be, when it has one."""
    changes: bool = True
    """False for the verbs that change nothing: every other one needs the room power level too."""


def webhook_command(runtime: Callable[[], Runtime | None]) -> Command:
    async def handle(context: CommandContext, args: list[str]) -> CommandReply:
        current = runtime()
        if current is None:
            return CommandReply("The webhook bridge is still starting; try again in a moment.")
        if context.in_management_room:
            return CommandReply("Send webhook commands in the room the hook is for, as '!bk webhook ...'.")
        name = args[0].lower() if args else ""
        if name == "out":
            name, args = "out " + (args[1].lower() if len(args) > 1 else ""), args[1:]
        verb = _VERBS.get(name)
        if verb is None:
            return CommandReply(f"Usage: webhook {USAGE}")
        power = None
        if verb.changes:
            checked = await context.check_room_power(f"webhook {name}")
            if isinstance(checked, CommandReply):
                return checked
            power = checked
        args = args[1:]
        wrong_count = verb.arity is not None and len(args) != verb.arity
        if wrong_count or (verb.choices and args[1].lower() not in verb.choices):
            return CommandReply(f"Usage: webhook {name} {verb.usage}")
        return await verb.run(current, context, args, power)

    return Command(
        "webhook", "Create, list and manage this room's webhooks (inbound and outbound)", handle,
        usage=USAGE, level=PermissionLevel.USER,
    )


def _may_adopt(context: CommandContext, power: RoomPower | None) -> bool:
    """A bridge admin, or one of the room's admins (who may change its power levels)."""
    return context.level >= PermissionLevel.ADMIN or (power is not None and power.room_admin)


def _may_change(context: CommandContext, power: RoomPower | None, creator: str) -> bool:
    """The hook's creator, a bridge admin, or one of the room's admins."""
    return context.sender == creator or _may_adopt(context, power)


def _credentials(runtime: Runtime, hook_id: str, scheme: Scheme) -> tuple[dict[str, str | None], str]:
    """New stored credentials for a hook (column values) and the private text that reveals them."""
    secret = new_token()
    url = f"{runtime.settings.public_url}/webhook/{hook_id}"
    if scheme is Scheme.TOKEN:
        return {"token_hash": hash_token(secret), "sealed_secret": None}, f"URL (keep it secret): {url}.{secret}"
    sealed = runtime.box.seal(secret, row=inbound_row(hook_id))
    text = f"URL: {url}\nSigning secret ({scheme.value}, shown only this once): {secret}"
    return {"token_hash": None, "sealed_secret": sealed}, text


def _own_hook(verb: HookHandler) -> Handler:
    """``verb`` on the hook its first argument names, when it is the room's and the sender may change it."""

    async def run(runtime: Runtime, context: CommandContext, args: list[str], power: RoomPower | None) -> CommandReply:
        hook = await runtime.store.hook(args[0])
        if hook is None or hook.room_id != context.room_id:
            return CommandReply(f"This room has no webhook {args[0]}; 'webhook list' shows them.")
        if not _may_change(context, power, hook.creator):
            return CommandReply(
                f"Only {hook.creator}, who created webhook {hook.id}, a room admin or a bridge admin may change it."
            )
        return await verb(runtime, context, hook, args[1:])

    return run


async def _create(
    runtime: Runtime, context: CommandContext, args: list[str], power: RoomPower | None,
) -> CommandReply:
    if not args:
        return CommandReply(f"Usage: webhook create <name> [{SCHEMES}] [{STYLES}]")
    name, options = args[0][:100], [arg.lower() for arg in args[1:]]
    scheme, style = Scheme.TOKEN, IdentityStyle.BOT
    for option in options:
        if option in _SCHEME_NAMES:
            scheme = Scheme(option)
        elif option in _STYLE_NAMES:
            style = IdentityStyle(option)
        else:
            return CommandReply(f"Unknown option {option!r}: a scheme ({SCHEMES}) or an identity style ({STYLES}).")
    hook_id = secrets.token_hex(8)
    try:
        columns, reveal = _credentials(runtime, hook_id, scheme)
    except SecretBoxUnavailable as problem:
        return CommandReply(f"Cannot create a {scheme.value} hook: {problem}.")
    await runtime.store.add(Hook(
        id=hook_id, room_id=context.room_id, name=name, creator=context.sender, scheme=scheme.value,
        identity=style.value, created_ms=now_ms(), **columns,
    ))
    await link_rooms(runtime.ctx, [context.room_id])
    await runtime.ctx.tell_user(context.sender, f"Webhook '{name}' ({hook_id}) posts into {context.room_id}.\n{reveal}")
    return CommandReply(
        f"Created webhook '{name}' ({hook_id}, {scheme.value}, {style.value} identity). "
        "I sent its URL to you in a private chat."
    )


async def _list(
    runtime: Runtime, context: CommandContext, _args: list[str], _power: RoomPower | None,
) -> CommandReply:
    hooks = await runtime.store.in_room(Hook, context.room_id)
    if not hooks:
        return CommandReply("This room has no inbound webhooks. Create one with 'webhook create <name>'.")
    lines = [f"Inbound webhooks of this room ({len(hooks)}):"]
    lines += [f"  {h.id}: '{h.name}', {h.scheme}, {h.identity} identity, created by {h.creator}{_status(h)}"
              for h in hooks]
    return CommandReply("\n".join(lines))


@_own_hook
async def _remove(runtime: Runtime, _context: CommandContext, hook: Hook, _args: list[str]) -> CommandReply:
    await runtime.store.remove(Hook, hook.id)
    return CommandReply(f"Removed webhook '{hook.name}' ({hook.id}); its URL no longer works.")


@_own_hook
async def _reissue(runtime: Runtime, context: CommandContext, hook: Hook, args: list[str]) -> CommandReply:
    """``rotate`` (new credentials, same scheme) and ``scheme`` (new credentials of another scheme)."""
    chosen = Scheme(args[0].lower()) if args else Scheme(hook.scheme)
    try:
        columns, reveal = _credentials(runtime, hook.id, chosen)
    except SecretBoxUnavailable as problem:
        return CommandReply(f"Cannot switch to {chosen.value}: {problem}.")
    await runtime.store.update(Hook, hook.id, scheme=chosen.value, **columns)
    await runtime.ctx.tell_user(context.sender, f"Webhook '{hook.name}' ({hook.id}) has new credentials.\n{reveal}")
    return CommandReply(
        f"Webhook '{hook.name}' ({hook.id}) now uses {chosen.value}; the old URL or secret stopped working. "
        "I sent the new one to you in a private chat."
    )


@_own_hook
async def _identity(runtime: Runtime, _context: CommandContext, hook: Hook, args: list[str]) -> CommandReply:
    style = IdentityStyle(args[0].lower())
    await runtime.store.update(Hook, hook.id, identity=style.value)
    how = "the bridge bot posts 'name: text'" if style is IdentityStyle.BOT else "each sender name gets its own user"
    return CommandReply(f"Webhook '{hook.name}' ({hook.id}) now posts with {style.value} identity: {how}.")


def _shown_url(url: str) -> str:
    """Scheme, host and path only: a query string may carry the receiver's own token."""
    target = parse_target(url)
    return f"{target.scheme}://{target.host}:{target.port}{target.path.split('?', 1)[0]}"


async def _out_add(
    runtime: Runtime, context: CommandContext, args: list[str], power: RoomPower | None,
) -> CommandReply:
    url = args[0]
    try:
        target = parse_target(url)
        check_literal(target, runtime.settings.allow_rules())
        await runtime.http.pick_address(target)  # refused now rather than at the first message
    except UnsafeURL as problem:
        return CommandReply(f"Refused: {problem}.")
    hook_id = secrets.token_hex(6)
    try:
        sealed, reveal = _outbound_secret(runtime, context, hook_id, url)
    except SecretBoxUnavailable as problem:
        return CommandReply(f"Cannot add an outbound hook: {problem}.")
    await runtime.store.add(OutboundHook(
        id=hook_id, room_id=context.room_id, url=url, sealed_secret=sealed, creator=context.sender,
        created_ms=now_ms(),
    ))
    await runtime.ctx.tell_user(context.sender, reveal)
    return CommandReply(
        f"Added outbound webhook {hook_id} to {_shown_url(url)}: this room's messages are posted there. "
        "I sent its signing secret to you in a private chat."
    )


async def _out_list(
    runtime: Runtime, context: CommandContext, _args: list[str], _power: RoomPower | None,
) -> CommandReply:
    hooks = await runtime.store.in_room(OutboundHook, context.room_id)
    if not hooks:
        return CommandReply("This room has no outbound webhooks. Add one with 'webhook out add <url>'.")
    lines = [f"Outbound webhooks of this room ({len(hooks)}):"]
    lines += [f"  {h.id}: {_shown_url(h.url)}, added by {h.creator}{_status(h)}" for h in hooks]
    return CommandReply("\n".join(lines))


async def _out_remove(
    runtime: Runtime, context: CommandContext, args: list[str], power: RoomPower | None,
) -> CommandReply:
    hook = await runtime.store.get(OutboundHook, args[0])
    if hook is None or hook.room_id != context.room_id:
        return CommandReply(f"This room has no outbound webhook {args[0]}; 'webhook out list' shows them.")
    if not _may_change(context, power, hook.creator):
        return CommandReply(
            f"Only {hook.creator}, who added outbound webhook {hook.id}, a room admin or a bridge admin may remove it."
        )
    await runtime.store.remove(OutboundHook, hook.id)
    return CommandReply(f"Removed outbound webhook {hook.id}; messages are no longer sent to {_shown_url(hook.url)}.")


def _outbound_secret(runtime: Runtime, context: CommandContext, hook_id: str, url: str) -> tuple[str, str]:
    """A new signing secret for an outbound hook: sealed, and the private text that reveals it."""
    secret = new_token()
    sealed = runtime.box.seal(secret, row=outbound_row(hook_id))
    return sealed, (
        f"Outbound webhook {hook_id} sends the messages of {context.room_id} to {_shown_url(url)}.\n"
        f"Signing secret (shown only this once): {secret}\n"
        "Each POST has X-Webhook-Timestamp and X-Webhook-Signature: sha256=HMAC-SHA256(secret, timestamp + '.' + body)."
    )


def _status(hook: Hook | OutboundHook) -> str:
    return "" if hook.status == ACTIVE else f" (SUSPENDED: {hook.suspended_reason}; 'webhook adopt {hook.id}')"


async def _adopt(
    runtime: Runtime, context: CommandContext, args: list[str], power: RoomPower | None,
) -> CommandReply:
    """Become the creator of one of the room's hooks, which is (re)activated with new credentials."""
    if not _may_adopt(context, power):
        return CommandReply("Only a room admin (or a bridge admin) may adopt a webhook.")
    hook_id = args[0]
    adopted = {"creator": context.sender, "status": ACTIVE, "suspended_reason": None}
    hook = await runtime.store.hook(hook_id)
    if hook is not None and hook.room_id == context.room_id:
        try:
            columns, reveal = _credentials(runtime, hook.id, Scheme(hook.scheme))
        except SecretBoxUnavailable as problem:
            return CommandReply(f"Cannot adopt webhook {hook.id}: {problem}.")
        await runtime.store.update(Hook, hook.id, **adopted, **columns)
        await runtime.ctx.tell_user(context.sender, f"You adopted webhook '{hook.name}' ({hook.id}).\n{reveal}")
        return CommandReply(
            f"{context.sender} adopted webhook '{hook.name}' ({hook.id}): it is active again, with new credentials "
            f"(the old URL or secret, which {hook.creator} had, no longer works). I sent them to you privately."
        )
    outbound = await runtime.store.get(OutboundHook, hook_id)
    if outbound is None or outbound.room_id != context.room_id:
        return CommandReply(f"This room has no webhook {hook_id}; 'webhook list' and 'webhook out list' show them.")
    try:
        sealed, reveal = _outbound_secret(runtime, context, outbound.id, outbound.url)
    except SecretBoxUnavailable as problem:
        return CommandReply(f"Cannot adopt outbound webhook {outbound.id}: {problem}.")
    await runtime.store.update(OutboundHook, outbound.id, **adopted, sealed_secret=sealed)
    await runtime.ctx.tell_user(context.sender, reveal)
    return CommandReply(
        f"{context.sender} adopted outbound webhook {outbound.id}: this room's messages go to "
        f"{_shown_url(outbound.url)} again (check that you trust that address: {outbound.creator} chose it). "
        "Its new signing secret went to you privately."
    )


_SCHEME_NAMES = frozenset(s.value for s in Scheme)
_STYLE_NAMES = frozenset(s.value for s in IdentityStyle)
_VERBS: dict[str, _Verb] = {
    "create": _Verb(_create, arity=None), "list": _Verb(_list, arity=None, changes=False),
    "remove": _Verb(_remove), "rotate": _Verb(_reissue),
    "scheme": _Verb(_reissue, f"<id> <{'|'.join(s.value for s in Scheme)}>", 2, _SCHEME_NAMES),
    "identity": _Verb(_identity, f"<id> <{'|'.join(s.value for s in IdentityStyle)}>", 2, _STYLE_NAMES),
    "out add": _Verb(_out_add, "<url>"), "out list": _Verb(_out_list, arity=None, changes=False),
    "out remove": _Verb(_out_remove), "adopt": _Verb(_adopt),
}

__all__ = ["USAGE", "Runtime", "webhook_command"]
