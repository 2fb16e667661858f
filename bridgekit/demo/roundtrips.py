"""What the demo does on Matrix and IRC once the stack runs: the demo user, the portal of
``#demo``, a webhook into it, and one message each way, reported as each side saw it."""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from bridgekit.demo.irc_client import IrcTestClient, Line
from bridgekit.demo.matrix_client import MatrixTestClient
from bridgekit.demo.matrix_steps import Event, link_new_room, notice, open_management_room
from bridgekit.demo.state import DEMO_USER, IRC_CHANNEL, IRC_NETWORK, SERVER_NAME, DemoState

BOT = f"@bridgebot:{SERVER_NAME}"
BOT_NICK = "bridgebot"
TIMEOUT_S = 60.0


@dataclass(frozen=True)
class _Homeserver:
    url: str
    shared_secret: str


@dataclass(frozen=True)
class RoundTrip:
    name: str
    sent: str
    seen: str


async def demo_user(state: DemoState) -> tuple[MatrixTestClient, str]:
    """The demo user, logged in; and whether it was registered now or found."""
    if state.user_registered:
        return await MatrixTestClient.login(state.homeserver_url, DEMO_USER, state.password), "logged in"
    homeserver = _Homeserver(state.homeserver_url, state.shared_secret)
    user = await MatrixTestClient.create_user(homeserver, DEMO_USER, password=state.password)
    state.user_registered = True
    return user, "registered"


async def demo_portal(user: MatrixTestClient, state: DemoState) -> str:
    """The room linked to ``#demo`` (made and linked once; later runs find it)."""
    if not state.room_id:
        state.room_id = await link_new_room(user, BOT, IRC_NETWORK, IRC_CHANNEL, name=f"{IRC_CHANNEL} (IRC)")
    return state.room_id


async def demo_hook(user: MatrixTestClient, state: DemoState) -> str:
    """An inbound webhook of the portal; its URL comes to the user's direct chat with the bot."""
    if state.hook_url:
        return state.hook_url
    dm = await open_management_room(user, BOT)
    await user.send_text(state.room_id, "!bk webhook create demo")
    answer = await user.wait_for_event(state.room_id, notice(BOT, "Created webhook 'demo'"), timeout=TIMEOUT_S)
    hook_id = _search(r"\(([0-9a-f]{16}),", answer)
    private = await user.wait_for_event(dm, notice(BOT, f"({hook_id})"), timeout=TIMEOUT_S)
    state.hook_url = _search(r"URL[^:]*: (\S+)", private)
    return state.hook_url


def _search(pattern: str, event: Event) -> str:
    body = str(event.get("content", {}).get("body", ""))
    found = re.search(pattern, body)
    if found is None:
        raise RuntimeError(f"the bridge bot's answer did not match {pattern!r}: {body!r}")
    return found.group(1)


async def prove(user: MatrixTestClient, state: DemoState) -> list[RoundTrip]:
    """One message each way: Matrix -> IRC, IRC -> Matrix, webhook -> Matrix."""
    stamp = time.strftime("%H:%M:%S")
    visitor = await IrcTestClient.connect("127.0.0.1", state.ports.irc, f"visitor{secrets.token_hex(2)}")
    try:
        await visitor.join(IRC_CHANNEL)
        await visitor.wait_for(_bot_present, timeout=TIMEOUT_S)
        trips = [await _matrix_to_irc(user, visitor, state, stamp), await _irc_to_matrix(user, visitor, state, stamp)]
    finally:
        await visitor.quit("demo done")
    trips.append(await _webhook_to_matrix(user, state, stamp))
    return trips


def _bot_present(line: Line) -> bool:
    if line.command == "JOIN" and line.is_from(BOT_NICK):
        return True
    return line.command == "353" and BOT_NICK in (nick.lstrip("~&@%+") for nick in line.text.split())


async def _matrix_to_irc(user: MatrixTestClient, visitor: IrcTestClient, state: DemoState, stamp: str) -> RoundTrip:
    text = f"hello IRC, this is Matrix ({stamp})"
    mark = visitor.mark()
    await user.send_text(state.room_id, text)
    line = await visitor.wait_for(
        lambda ln: ln.command == "PRIVMSG" and ln.target == IRC_CHANNEL and text in ln.text, TIMEOUT_S, since=mark
    )
    return RoundTrip("Matrix -> IRC", f"{user.user_id} said: {text}",
                     f"IRC {visitor.nick} saw in {IRC_CHANNEL}: <{line.source}> {line.text}")


async def _irc_to_matrix(user: MatrixTestClient, visitor: IrcTestClient, state: DemoState, stamp: str) -> RoundTrip:
    text = f"hello Matrix, this is IRC ({stamp})"
    await visitor.privmsg(IRC_CHANNEL, text)
    event = await user.wait_for_event(state.room_id, _message_with(text), timeout=TIMEOUT_S)
    return RoundTrip("IRC -> Matrix", f"{visitor.nick} said in {IRC_CHANNEL}: {text}", _matrix_saw(user, event))


async def _webhook_to_matrix(user: MatrixTestClient, state: DemoState, stamp: str) -> RoundTrip:
    text = f"hello Matrix, this is a webhook ({stamp})"
    async with httpx.AsyncClient(timeout=TIMEOUT_S) as http:
        answer = await http.post(state.hook_url, json={"text": text, "username": "curl"})
    if answer.status_code not in (200, 202):
        raise RuntimeError(f"the webhook answered {answer.status_code}: {answer.text[:300]}")
    event = await user.wait_for_event(state.room_id, _message_with(text), timeout=TIMEOUT_S)
    return RoundTrip("webhook -> Matrix", f"POST {state.hook_url.split('/webhook/')[0]}/webhook/… answered "
                     f"{answer.status_code}: {text}", _matrix_saw(user, event))


def _message_with(text: str) -> Callable[[Event], bool]:
    return lambda e: e.get("type") == "m.room.message" and text in str(e.get("content", {}).get("body", ""))


def _matrix_saw(user: MatrixTestClient, event: Event) -> str:
    return f"Matrix {user.user_id} saw: {event['sender']}: {event['content']['body']}"

