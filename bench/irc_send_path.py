"""Matrix -> IRC send path, in one process: N messages of one room go through the inbox's ordered
worker (``RoomDispatcher``) and an IRC session (pacing off, echo-message on) to a real InspIRCd,
until a plain client in the channel has them all. Prints wall time and this process's CPU time
(the bridge side and the watching client) per round.

It measures whatever ``bridgekit`` and ``bridges`` come first on ``sys.path``, so one script
compares two versions: ``PYTHONPATH=<other checkout> .venv/bin/python bench/irc_send_path.py``.
Sessions whose ``send`` returns ``Accepted`` have their delivery handed to the worker, as the core
does (``core/matrix_to_remote.py``); with ``--await-delivery`` the worker awaits it instead, which
is what a ``send`` that waits for its own lines would cost (the design docs/architecture.md
decided against).

    .venv/bin/python bench/irc_send_path.py [--messages 2000] [--rounds 5] [--await-delivery]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

_REPO = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _REPO / "bench"]  # bench/irc.py shadows `irc`
if str(_REPO) not in sys.path:
    sys.path.append(str(_REPO))  # after PYTHONPATH: the version under test comes first

import bridgekit  # noqa: E402
from bridgekit import ChatID, EventID, OutgoingMessage, SessionKind, UserID  # noqa: E402
from bridgekit.core import dispatcher as dispatcher_module  # noqa: E402
from bridgekit.core.dispatcher import RoomDispatcher, WorkItem  # noqa: E402
from bridgekit.demo.irc_client import IrcTestClient  # noqa: E402
from bridges.irc.link import IrcLink  # noqa: E402
from bridges.irc.session import IrcSession  # noqa: E402
from tests.servers.ircd import InspIRCd  # noqa: E402

CHANNEL = ChatID("#capacity")
ACCEPTED = getattr(bridgekit, "Accepted", None)
DEFER = getattr(dispatcher_module, "defer_done", None)


class Host:
    """The little a session asked of its connector before issue 12; no long texts, no media, no progress kept.
    Its own, not the unit tests' stand-in: it must also run against older checkouts."""

    max_lines, edits, reply_template = 5, "diff", "short"

    def fold(self, text: str) -> str:
        return text.lower()

    def channel_name(self, chat_id: str) -> str:
        return chat_id

    def target_of(self, chat_id: str) -> str:
        return chat_id

    def pill_to_nick(self, user_id: str) -> None:
        return None

    def recall(self, message_id: str) -> None:
        return None

    def remember(self, message_id: str, said: Any) -> None:
        pass

    async def publish_text(self, text: str) -> None:
        return None

    async def reconnected(self, session: Any) -> None:
        pass

    def media_link(self, mxc: str, filename: str) -> None:
        return None

    async def progress(self, key: str) -> None:
        return None

    async def record_progress(self, key: str, progress: Any) -> None:
        pass


def session_setup() -> Any:
    """What a session is given: since issue 12 the network's shared parts (``SessionSetup``),
    before it the connector itself (``Host`` above)."""
    try:
        from bridges.irc.session import SessionSetup  # type: ignore[attr-defined,unused-ignore]
    except ImportError:
        return Host()
    from bridges.irc.http_routes import IrcRoutes
    from bridges.irc.network import IrcNetwork
    from bridges.irc.records import IrcRecords
    from bridges.irc.settings import IrcSettings
    from tests.support.contexts import hand_built_context

    settings = IrcSettings(server="bench", max_lines=5)
    records = IrcRecords(None, "bench")
    network = IrcNetwork("bench", ghost_for=str, sender_of_ghost=lambda _user: None)
    return SessionSetup(network, settings, records, IrcRoutes(hand_built_context("bench", settings), records))


async def one_round(
    session: IrcSession, watcher: IrcTestClient, n: int, tag: str, *, await_delivery: bool
) -> tuple[float, float]:
    async def handle(item: WorkItem) -> None:
        result = await session.send(OutgoingMessage(
            chat_id=CHANNEL, text=f"{tag} {item.row_id:05d} the quick brown fox jumps over the lazy dog", html=None,
            msgtype="m.text", event_id=EventID(f"${tag}-{item.row_id}"), sender=UserID("@alice:bench"),
            sender_name="alice",
        ))
        if ACCEPTED is None or not isinstance(result, ACCEPTED):
            return
        if await_delivery or DEFER is None or not DEFER(result.delivered):
            await result.delivered

    async def failed(item: WorkItem, error: BaseException, final: bool) -> None:
        raise SystemExit(f"row {item.row_id} failed: {error!r}")

    dispatcher = RoomDispatcher(handle, on_done=lambda _item: None, on_failure=failed)
    since = watcher.mark()
    wall, cpu = time.perf_counter(), time.process_time()
    dispatcher.enqueue(WorkItem(i, "pdu", "!room", None) for i in range(n))
    await dispatcher.wait_idle(120)
    await watcher.wait_for_count(lambda ln: ln.command == "PRIVMSG" and ln.text.startswith(tag), n, 120, since=since)
    return time.perf_counter() - wall, time.process_time() - cpu


async def main(messages: int, rounds: int, await_delivery: bool) -> None:
    print(f"bridgekit from {Path(bridgekit.__file__).parent.parent}; send returns Accepted: "
          f"{'yes' if ACCEPTED is not None else 'no'}; the worker awaits the delivery: "
          f"{'yes' if await_delivery else 'no'}")
    with tempfile.TemporaryDirectory(prefix="irc-send-path-") as scratch:
        server = InspIRCd(Path(scratch) / "ircd")
        server.start()
        try:
            watcher = await IrcTestClient.connect(server.host, server.port, "watcher")
            await watcher.join(CHANNEL)
            link = IrcLink(host=server.host, port=server.port, tls=False, nick="bridge", ident="bridge",
                           realname="bench", on_event=lambda _link, _event: None, lines_per_second=0)
            await link.connect()
            session = IrcSession(SessionKind.BOT, link, session_setup())
            await one_round(session, watcher, 50, "warmup", await_delivery=await_delivery)
            results = [await one_round(session, watcher, messages, f"r{r}", await_delivery=await_delivery)
                       for r in range(rounds)]
            for r, (wall, cpu) in enumerate(results):
                print(f"round {r}: {messages / wall:8.0f} messages/s   CPU {cpu / messages * 1e6:6.0f} us/message")
            print(f"median: {statistics.median(messages / w for w, _ in results):8.0f} messages/s   "
                  f"CPU {statistics.median(c for _, c in results) / messages * 1e6:6.0f} us/message")
            await link.close()
            await watcher.close()
        finally:
            server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--await-delivery", action="store_true", help="the worker awaits each message's delivery")
    args = parser.parse_args()
    asyncio.run(main(args.messages, args.rounds, args.await_delivery))
