"""The connector conformance kit: what every connector must get right, checked end to end.

A connector passes when, running inside a real bridge against a real homeserver:

- **echoes are suppressed**: a Matrix message reaches the network once, and the network's echo
  of it never comes back into the room;
- **order holds under load**: a burst of messages arrives in the order it was said, both ways;
- **edits and redactions map**: a Matrix edit or redaction changes the right remote message, and
  a remote edit or deletion the right Matrix event;
- **nothing is lost across a restart**: what Matrix users said while the bridge was down
  arrives once it is back;
- **failures are visible**: a message the network refuses is marked in its room, to its sender.

How to use it: subclass :class:`ConnectorConformance` in a test module and provide a
``conformance_env`` fixture returning a :class:`ConformanceEnv`: a Matrix user in a portal room of
your connector, a :class:`RemoteDriver` that acts on your network as a person there would, and
a way to restart the bridge. ``pip install 'bridgekit[testing]'`` brings the fixtures to build it
from (a real Synapse, ``run_bridge``, Matrix users: :mod:`bridgekit.testing.pytest_plugin`) and
:func:`bridgekit.testing.matrix_steps.portal_env`; the tutorial's package
(``tests/data/tutorial_package/test_tutorial_kit.py`` in bridgekit's repository) is a whole
example. Each check is also a plain async function (``check_echo_suppression(env)``...), so a
test can show a check failing for a broken connector.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import pytest

Event = dict[str, Any]


@dataclass(frozen=True)
class SeenMessage:
    """A message as the remote network has it."""

    id: str
    sender: str
    text: str
    edits: tuple[str, ...] = ()
    deleted: bool = False

    @property
    def current_text(self) -> str:
        return self.edits[-1] if self.edits else self.text


class RemoteDriver(Protocol):
    """Acts on the remote network as a person there would (not through the bridge).

    A network without edits, deletions or a way to make it refuse the bridge's sends (IRC) says
    so with ``can_edit = False``, ``can_delete = False`` or ``can_fail_sends = False`` attributes
    (read with ``getattr``, default True): the checks that need them are skipped, visibly.
    """

    async def say(self, chat: str, sender: str, text: str) -> str:
        """Post ``text`` as ``sender``; returns the message's ID."""

    async def edit(self, chat: str, message_id: str, sender: str, text: str) -> None: ...

    async def delete(self, chat: str, message_id: str, sender: str) -> None: ...

    async def messages(self, chat: str) -> list[SeenMessage]:
        """Everything in ``chat``, oldest first (as the network has it now)."""

    async def fail_sends(self, count: int) -> None:
        """Make the network refuse the bridge's next ``count`` sends (0: accept again)."""


class MatrixUser(Protocol):
    """A logged-in Matrix user (bridgekit's tests use ``MatrixTestClient``)."""

    user_id: str

    async def send_text(self, room_id: str, body: str) -> str: ...

    async def send_event(self, room_id: str, event_type: str, content: dict[str, Any]) -> str: ...

    async def request(self, method: str, path: str, *, json_body: Any = None) -> Any: ...

    async def wait_for_events(
        self, room_id: str, predicate: Callable[[Event], bool], count: int, *, timeout: float = 30.0  # noqa: ASYNC109
    ) -> list[Event]:
        """Sync until ``count`` events of the room match (TimeoutError after ``timeout``)."""

    async def room_messages(self, room_id: str) -> list[Event]: ...


@dataclass
class ConformanceEnv:
    """A running bridge with the connector under test, and the people on both sides."""

    user: MatrixUser
    room_id: str
    """A portal room of ``chat`` that ``user`` is in; their messages are bridged (relay on, or
    logged in, or virtual users on)."""
    chat: str
    remote: RemoteDriver
    remote_sender: str
    """A person on the network who is not the bridge (``bob``)."""
    ghost_of: Callable[[str], str]
    """A remote sender -> the Matrix ID of their ghost."""
    bot_user_id: str
    shown: Callable[[str], str] = field(default=lambda text: text)
    """How a Matrix message's text looks on the network (the relay adds ``<alice> ``)."""
    stop_bridge: Callable[[], Awaitable[object]] | None = None
    """Kill the bridge (no clean shutdown); ``start_bridge`` brings it back."""
    start_bridge: Callable[[], Awaitable[object]] | None = None
    timeout: float = 60.0


def _token() -> str:
    return secrets.token_hex(3)


async def wait_remote(
    env: ConformanceEnv, predicate: Callable[[list[SeenMessage]], bool], what: str
) -> list[SeenMessage]:
    """The chat's messages once ``predicate`` holds; AssertionError naming ``what`` at the deadline."""
    messages: list[SeenMessage] = []
    try:
        async with asyncio.timeout(env.timeout):
            while True:
                messages = await env.remote.messages(env.chat)
                if predicate(messages):
                    break
                await asyncio.sleep(0.05)  # the network offers nothing to wait on from outside
    except TimeoutError:
        raise AssertionError(f"{what}: not seen on the network within {env.timeout:.0f} s; it has "
                             f"{[m.text for m in messages[-10:]]}") from None
    return messages


async def wait_matrix(
    env: ConformanceEnv, predicate: Callable[[Event], bool], what: str, count: int = 1
) -> list[Event]:
    try:
        return await env.user.wait_for_events(env.room_id, predicate, count, timeout=env.timeout)
    except TimeoutError:
        raise AssertionError(f"{what}: not seen in the Matrix room within {env.timeout:.0f} s") from None


def _message_from(sender: str, body: str | None = None) -> Callable[[Event], bool]:
    def matches(event: Event) -> bool:
        content = event.get("content", {})
        return (event.get("type") == "m.room.message" and event.get("sender") == sender
                and "m.new_content" not in content and (body is None or content.get("body") == body))
    return matches


# --- the checks ---------------------------------------------------------------------------------


async def check_echo_suppression(env: ConformanceEnv) -> None:
    """A Matrix message reaches the network once and never comes back; a remote one arrives once."""
    tag = _token()
    mine, theirs = f"echo test {tag}", f"answer {tag}"
    await env.user.send_text(env.room_id, mine)
    await wait_remote(env, lambda ms: any(m.text == env.shown(mine) for m in ms), "the Matrix message")
    await env.remote.say(env.chat, env.remote_sender, theirs)
    ghost = env.ghost_of(env.remote_sender)
    await wait_matrix(env, _message_from(ghost, theirs), "the remote answer")
    # The answer was said after the network had the Matrix message (and so its echo); once the
    # answer is in the room, an echo bridged back would be there too.
    on_network = [m for m in await env.remote.messages(env.chat) if m.text == env.shown(mine)]
    assert len(on_network) == 1, f"the Matrix message reached the network {len(on_network)} times"
    echoes = [e for e in await env.user.room_messages(env.room_id)
              if e.get("type") == "m.room.message" and e.get("sender") != env.user.user_id
              and mine in e.get("content", {}).get("body", "")]
    assert not echoes, f"the network's echo came back into the room from {[e['sender'] for e in echoes]}"
    answers = [e for e in await env.user.room_messages(env.room_id) if _message_from(ghost, theirs)(e)]
    assert len(answers) == 1, f"the remote answer was posted {len(answers)} times"


async def check_order_under_load(env: ConformanceEnv, count: int = 30) -> None:
    """``count`` messages each way, said as fast as possible, arrive all and in order."""
    tag = _token()
    said = [f"burst {tag} #{number:03d}" for number in range(count)]
    for text in said:
        await env.user.send_text(env.room_id, text)
    shown = [env.shown(text) for text in said]

    def arrived(messages: list[SeenMessage]) -> bool:
        return sum(1 for m in messages if m.text in shown) >= count

    messages = await wait_remote(env, arrived, f"{count} Matrix messages")
    order = [m.text for m in messages if m.text in shown]
    assert order == shown, f"Matrix -> network order broken: {order}"

    answers = [f"reply burst {tag} #{number:03d}" for number in range(count)]
    for text in answers:
        await env.remote.say(env.chat, env.remote_sender, text)
    ghost = env.ghost_of(env.remote_sender)
    events = await wait_matrix(
        env, lambda e: _message_from(ghost)(e) and e["content"].get("body") in answers, f"{count} remote messages",
        count=count,
    )
    got = [e["content"]["body"] for e in events]
    assert got == answers, f"network -> Matrix order broken: {got}"


async def check_edits_and_redactions(env: ConformanceEnv) -> None:
    """A Matrix edit and redaction change the right remote message (or, on a network without
    edits, the correction is said after it)."""
    tag = _token()
    original, corrected = f"edit me {tag}", f"edited {tag}"
    event_id = await env.user.send_text(env.room_id, original)
    await wait_remote(env, lambda ms: any(m.text == env.shown(original) for m in ms), "the message to edit")
    await env.user.send_event(env.room_id, "m.room.message", {
        "msgtype": "m.text", "body": f"* {corrected}", "m.new_content": {"msgtype": "m.text", "body": corrected},
        "m.relates_to": {"rel_type": "m.replace", "event_id": event_id},
    })
    # Either an edit of the message, or (networks without edits) a correction said after it.
    messages = await wait_remote(
        env, lambda ms: any(corrected in m.current_text for m in ms), "the Matrix edit"
    )
    target = next(m for m in messages if m.text == env.shown(original))
    edited_in_place = corrected in target.current_text
    await env.user.request(
        "PUT", f"/_matrix/client/v3/rooms/{env.room_id}/redact/{event_id}/{_token()}", json_body={}
    )
    if edited_in_place:  # a network with edits has deletions too, in every network we know
        await wait_remote(env, lambda ms: any(m.id == target.id and m.deleted for m in ms), "the Matrix redaction")



async def check_remote_edits_and_deletions(env: ConformanceEnv) -> None:
    """A remote edit and deletion land on the right Matrix event."""
    driver = env.remote
    if not getattr(driver, "can_edit", True) or not getattr(driver, "can_delete", True):
        pytest.skip("the network has no edits or deletions of its own")
    tag = _token()
    said = f"remote original {tag}"
    message_id = await env.remote.say(env.chat, env.remote_sender, said)
    ghost = env.ghost_of(env.remote_sender)
    posted = (await wait_matrix(env, _message_from(ghost, said), "the remote message"))[0]
    await env.remote.edit(env.chat, message_id, env.remote_sender, f"remote edited {tag}")
    edit = (await wait_matrix(env, lambda e: e.get("content", {}).get("m.relates_to", {}).get("rel_type") == "m.replace"
                              and e["content"]["m.relates_to"].get("event_id") == posted["event_id"],
                              "the remote edit"))[0]
    assert edit["content"]["m.new_content"]["body"] == f"remote edited {tag}"
    await env.remote.delete(env.chat, message_id, env.remote_sender)
    await wait_matrix(env, lambda e: e.get("type") == "m.room.redaction"
                      and (e.get("redacts") or e.get("content", {}).get("redacts")) == posted["event_id"],
                      "the remote deletion")


async def check_replay_after_restart(env: ConformanceEnv, count: int = 5) -> None:
    """Messages said on Matrix while the bridge is down reach the network once it is back."""
    if env.stop_bridge is None or env.start_bridge is None:
        return
    tag = _token()
    said = [f"while down {tag} #{number}" for number in range(count)]
    await env.stop_bridge()
    for text in said:
        await env.user.send_text(env.room_id, text)
    await env.start_bridge()
    shown = [env.shown(text) for text in said]
    messages = await wait_remote(
        env, lambda ms: {m.text for m in ms} >= set(shown), f"{count} messages said while the bridge was down"
    )
    first_seen = list(dict.fromkeys(m.text for m in messages if m.text in shown))
    assert first_seen == shown, f"replayed out of order: {first_seen}"


async def check_failures_are_visible(env: ConformanceEnv) -> None:
    """A message the network refuses on every attempt is marked in its room, to its sender."""
    if not getattr(env.remote, "can_fail_sends", True):
        pytest.skip("the driver cannot make the network refuse the bridge's sends")
    text = f"refused {_token()}"
    await env.remote.fail_sends(10_000)
    try:
        await env.user.send_text(env.room_id, text)
        notices = await wait_matrix(
            env, lambda e: e.get("sender") == env.bot_user_id and "could not be delivered" in
            e.get("content", {}).get("body", "") and env.user.user_id in
            e.get("content", {}).get("m.mentions", {}).get("user_ids", []),
            "a notice that the message failed", count=1,
        )
        assert notices
    finally:
        await env.remote.fail_sends(0)
    assert not [m for m in await env.remote.messages(env.chat) if text in m.text]


class ConnectorConformance:
    """Subclass in a test module and provide a ``conformance_env`` fixture (see the module doc)."""

    async def test_echo_suppression(self, conformance_env: ConformanceEnv) -> None:
        await check_echo_suppression(conformance_env)

    async def test_order_under_load(self, conformance_env: ConformanceEnv) -> None:
        await check_order_under_load(conformance_env)

    async def test_edits_and_redactions(self, conformance_env: ConformanceEnv) -> None:
        await check_edits_and_redactions(conformance_env)

    async def test_remote_edits_and_deletions(self, conformance_env: ConformanceEnv) -> None:
        await check_remote_edits_and_deletions(conformance_env)

    async def test_replay_after_restart(self, conformance_env: ConformanceEnv) -> None:
        await check_replay_after_restart(conformance_env)

    async def test_failures_are_visible(self, conformance_env: ConformanceEnv) -> None:
        await check_failures_are_visible(conformance_env)


__all__ = [
    "ConformanceEnv",
    "ConnectorConformance",
    "MatrixUser",
    "RemoteDriver",
    "SeenMessage",
    "check_echo_suppression",
    "check_edits_and_redactions",
    "check_failures_are_visible",
    "check_order_under_load",
    "check_remote_edits_and_deletions",
    "check_replay_after_restart",
]
