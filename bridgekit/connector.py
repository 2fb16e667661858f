"""The connector contract: what a network connector implements, and what it may call.

Everything a connector author meets is in this file (and re-exported by ``bridgekit``):

- A connector is built with its context: the config section names a factory (an entry point or
  ``factory: "pkg.mod:Class"``) that the core calls as ``factory(ctx)`` (:data:`ConnectorFactory`)
  once the section is validated with the factory's ``Settings`` model, so ``ctx.settings`` is
  ready in ``__init__``. Routes and commands are asked for after construction, ``start()`` after
  the appservice answers. :class:`ConnectorBase` is an optional base class keeping ``ctx`` and
  ``name``.
- :class:`NetworkConnector`, required: a ``name``, ``start()`` and ``stop()``.
- :class:`RemoteSession`, one per remote identity, with a :class:`SessionKind`: the network's
  bridge ``bot`` (relay), a ``virtual`` identity the bridge holds for one Matrix user, or a
  ``puppet`` (the user's own account, logged in through a :class:`LoginProvider`).
- Optional abilities, each a small protocol checked at run time with ``isinstance``: a connector
  (or a session) implements only what its network has. Sessions: :class:`EditingSession`,
  :class:`DeletingSession`, :class:`ReactingSession`, :class:`TypingSession`,
  :class:`ReceiptSession`, :class:`ClosableSession`. Connectors:
  :class:`MatrixEventHandler`, :class:`RelayProvider`, :class:`VirtualUserProvider`,
  :class:`LoginProvider`, :class:`PortalResolver`, :class:`HttpRouteProvider`,
  :class:`CommandProvider`, and the homeserver-query handlers at the end.
- Who receives portal messages is declared, never switched silently (:data:`PortalMessages`): a
  connector with sessions gets them through its sessions, one without in
  :meth:`MatrixEventHandler.handle_matrix_event`; one with both must say which with a
  ``portal_messages`` class attribute, or the bridge refuses to start.
- Remote events are data (``RemoteMessage``, ``RemoteEdit``, ``RemoteDelete``,
  ``RemoteReaction``, ``RemoteTyping``, ``RemoteReceipt``) handed to :meth:`BridgeContext.emit`,
  which stores them durably before it returns; the core posts them in order per chat through the
  sender's ghost.

The core decides who says a Matrix message on the network (one routing rule for the three modes,
``core/routing.py``): the sender's puppet, else their virtual identity, else the portal's relay,
else a visible refusal. A connector never makes that choice; it provides the sessions.
"""

from __future__ import annotations

import contextlib
import enum
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, Literal, Protocol, TypeAlias, TypeVar, runtime_checkable

from pydantic import BaseModel

from bridgekit.events import EphemeralEvent, MatrixEvent, RemoteEvent
from bridgekit.ids import ChatID, ContentURI, EventID, MessageID, RemoteUserID, RoomAlias, RoomID, UserID
from bridgekit.media import MediaDownload
from bridgekit.naming import parse_section_ghost_user_id, section_ghost_user_id
from bridgekit.signing import SigningKey

if TYPE_CHECKING:
    import logging
    from pathlib import Path

    from fastapi import APIRouter
    from sqlalchemy import MetaData
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

    from bridgekit.commands import Command
    from bridgekit.credentials import CredentialCipher


class MatrixIntent(Protocol):
    """Acting on Matrix as one user of the bridge, its bot or a ghost (``ctx.matrix.intent(user_id)``):
    the methods of ``bridgekit.matrix.Intent`` connectors use. Matrix errors raise
    ``bridgekit.MatrixError`` subclasses (``MatrixForbidden``, ``MatrixNotFound``...).

    Prefer :meth:`BridgeContext.emit` for what a remote user says: it is durable, ordered and
    deduplicated. An intent is for what the connector itself must do on Matrix (a notice from
    the bot, a ghost joining a DM it was invited to)."""

    user_id: UserID

    async def ensure_registered(self) -> None:
        """Register the user (a ghost) unless the bridge knows it is registered already."""

    async def ensure_joined(self, room_id: RoomID, *, via: Sequence[str] = ()) -> None:
        """Join unless the bridge knows the user is in the room (a ghost refused is invited first)."""

    async def join(self, room: RoomID | RoomAlias, *, via: Sequence[str] = (), reason: str | None = None) -> RoomID:
        """Join a room by ID or alias; its room ID."""

    async def leave(self, room_id: RoomID, *, reason: str | None = None) -> None: ...

    async def invite(self, room_id: RoomID, user_id: UserID, *, reason: str | None = None) -> None: ...

    async def send_text(
        self, room_id: RoomID, body: str, *, html: str | None = None, msgtype: str = "m.text",
        mentions: Iterable[UserID] | None = None, mention_room: bool = False, reply_to: EventID | None = None,
        extra_content: Mapping[str, object] | None = None, txn_id: str | None = None, ts: int | None = None,
    ) -> EventID:
        """Send m.text, m.notice or m.emote. ``txn_id`` is an idempotency key (derive it from the
        event or message that caused the send: sending again with it, even after a restart, gives
        back the first event); ``ts`` sets the timestamp (ms), for messages said earlier."""

    async def send_message(
        self, room_id: RoomID, content: Mapping[str, object], *, event_type: str = "m.room.message",
        txn_id: str | None = None, ts: int | None = None,
    ) -> EventID:
        """Send any room event (``txn_id`` and ``ts`` as in :meth:`send_text`)."""

    async def send_state(
        self, room_id: RoomID, event_type: str, state_key: str, content: Mapping[str, object], *, ts: int | None = None,
    ) -> EventID:
        """Set a state event (the bot's ``m.room.join_rules`` of a portal, say)."""

    async def ban(self, room_id: RoomID, user_id: UserID, *, reason: str | None = None) -> None: ...

    async def unban(self, room_id: RoomID, user_id: UserID, *, reason: str | None = None) -> None: ...

    async def directory_visibility(self, room_id: RoomID) -> str:
        """``public`` or ``private``: whether the room is listed in the room directory."""

    async def set_directory_visibility(self, room_id: RoomID, visibility: str) -> None: ...

    async def get_state(self, room_id: RoomID, event_type: str, state_key: str = "") -> dict[str, Any]:
        """The content of a state event; ``MatrixNotFound`` when the room has none."""

    async def get_state_event(self, room_id: RoomID, event_type: str, state_key: str = "") -> dict[str, Any]:
        """The whole state event (``sender`` included)."""

    async def create_room(
        self, *, alias_localpart: str | None = None, name: str | None = None, topic: str | None = None,
        invitees: Iterable[UserID] = (), initial_state: Iterable[Mapping[str, object]] = (),
        preset: str | None = None, is_direct: bool = False, visibility: str | None = None,
        power_level_content_override: Mapping[str, object] | None = None,
        creation_content: Mapping[str, object] | None = None, room_version: str | None = None,
    ) -> RoomID:
        """Create a room with this user as its creator (and joined)."""

    async def set_displayname(self, displayname: str) -> None: ...

    async def set_presence(self, presence: str, *, status_msg: str | None = None) -> None:
        """``online``, ``unavailable`` or ``offline`` (e.g. a remote user lost in a netsplit)."""

    async def set_avatar_url(self, avatar_url: ContentURI) -> None: ...

    async def upload_media(self, data: bytes, content_type: str, filename: str | None = None) -> ContentURI:
        """Upload bytes to the homeserver's media repository; their ``mxc://`` URI."""


class MatrixAPI(Protocol):
    """The part of the Matrix client a connector uses (``bridgekit.matrix.MatrixClient``)."""

    def intent(self, user_id: UserID) -> MatrixIntent:
        """Act as ``user_id``: the bridge's bot (``ctx.bot_user_id``) or one of its ghosts."""


class SessionState(enum.Enum):
    """What a session's owner sees of it in their management room (and ``logins`` lists)."""

    CONNECTING = "connecting"
    CONNECTED = "connected"
    TRANSIENT_DISCONNECT = "transient-disconnect"
    """Lost, reconnecting by itself. Reported to the user only if it lasts (debounced)."""
    BAD_CREDENTIALS = "bad-credentials"
    """The network refused the login: the user must log in again."""
    LOGGED_OUT = "logged-out"
    """The network ended the session (or the user did)."""
    UNKNOWN_ERROR = "unknown-error"


class RemoteSink(Protocol):
    """Where remote events go (the core's remote -> Matrix delivery)."""

    async def emit(self, network: str, event: RemoteEvent, *, wait: bool = False) -> EventID | None: ...

    async def link_portal(self, network: str, chat_id: str, room_id: RoomID, *, relay: bool | None = None) -> None: ...

    async def link_feed(self, network: str, chat_id: str, room_id: RoomID) -> None: ...

    async def keep_ghost_id(self, network: str, sender_id: str, user_id: UserID) -> UserID: ...

    async def portal_chats(self, network: str) -> list[str]: ...

    async def chat_for_room(self, network: str, room_id: RoomID) -> str | None: ...

    async def room_for_chat(self, network: str, chat_id: str) -> RoomID | None: ...

    async def open_dm(
        self, network: str, chat_id: str, sender_id: str, sender_name: str | None, user_id: UserID
    ) -> RoomID: ...

    async def report_session(
        self, network: str, owner: UserID | None, state: SessionState, detail: str | None
    ) -> None: ...


class GhostNames(Protocol):
    """The core's ghost IDs: the naming rule, and the IDs of ghosts made under an earlier rule."""

    def user_id(self, network: str, remote_id: str) -> UserID: ...


@dataclass(frozen=True)
class BridgeContext:
    """What the core hands a connector's factory (``factory(ctx)``): its config section, the
    Matrix side, a logger, and the calls into the core. Kept by the connector for its lifetime."""

    name: str
    settings: Any
    """The connector's own config section: an instance of its ``Settings`` model when it declares
    one (see :class:`ConfiguredConnector`), else the raw mapping of its keys."""
    matrix: MatrixAPI
    bot_user_id: UserID
    server_name: str
    ghost_prefix: str
    alias_prefix: str
    log: logging.Logger
    remote: RemoteSink
    public_url: str | None = None
    """Where people outside reach the bridge's HTTP app (``appservice.public_url``): the base of
    URLs the connector hands out, such as webhook addresses. None when the admin set none."""
    private_notices: Callable[[UserID, str], Awaitable[None]] | None = None
    kv: KeyValue | None = None
    """Small JSON values the connector keeps across restarts (None only in hand-built contexts)."""
    signing_keys: SigningKeySource | None = None
    """Behind :meth:`signing_key` (None only in hand-built contexts)."""
    media: MediaSource | None = None
    """Behind :meth:`open_media` (None only in hand-built contexts)."""
    job_queue: JobQueue | None = None
    """Behind :attr:`jobs` (None only in hand-built contexts)."""
    connector_database: ConnectorDatabase | None = None
    """Behind :attr:`database` (None only in hand-built contexts)."""
    ghost_names: GhostNames | None = None
    """Behind :meth:`ghost_for` (None: the naming rule alone, as in hand-built contexts)."""
    metrics_source: ConnectorMetricsSource | None = None
    """Behind :attr:`metrics` (None: metrics are dropped, as in hand-built contexts)."""
    credentials: CredentialCipher | None = None
    """The bridge's credentials cipher (``secrets.credentials_key`` or ``BRIDGEKIT_CREDENTIALS_KEY``),
    for a secret the connector must keep in its own records (an IRC channel's key): encrypt it
    with a ``context`` naming its record. None when no key is configured: keep no such secret."""

    @property
    def metrics(self) -> ConnectorMetricsSource:
        """The connector's own Prometheus metrics, served on the bridge's ``/metrics``:
        ``ctx.metrics.counter("webhook_requests", "Webhook requests by outcome", ["outcome"])``
        registers ``bridgekit_connector_webhook_requests_total`` with a ``connector`` label added
        (this section's name); then ``.inc(outcome="accepted")``. Also ``gauge`` (``.set``) and
        ``histogram`` (``.observe``). Register in ``__init__``; label values from a small fixed set
        only (never IDs or user input). No import of prometheus_client needed."""
        return self.metrics_source if self.metrics_source is not None else _NO_METRICS

    @property
    def jobs(self) -> JobQueue:
        """Durable side work, run in order per key with retries, kept across restarts
        (:class:`JobQueue`): register handlers in ``__init__`` or ``start``, enqueue any time."""
        if self.job_queue is None:
            raise RuntimeError("this bridge context has no job queue")
        return self.job_queue

    @property
    def database(self) -> ConnectorDatabase:
        """The bridge's database, for the connector's own tables (:class:`TableOwner`)."""
        if self.connector_database is None:
            raise RuntimeError("this bridge context has no database")
        return self.connector_database

    async def signing_key(self, purpose: str) -> SigningKey:
        """The key this connector signs what it hands out with, for one ``purpose`` (links that
        must not be forged, say): derived from the credentials key when one is configured, else
        made once and kept in the database. Stable across restarts; one per connector and purpose."""
        if self.signing_keys is None:
            raise RuntimeError("this bridge context has no signing keys")
        return await self.signing_keys.signing_key(self.name, purpose)

    def open_media(self, mxc: str, *, max_bytes: int) -> contextlib.AbstractAsyncContextManager[MediaDownload]:
        """Download Matrix media as the bridge's bot, in chunks (``async with ctx.open_media(...)
        as download``): at most ``max_bytes``, redirects only through the SSRF guard. Raises
        ``MediaUnavailable`` or ``MediaTooLarge``. Hand out only media users sent into a portal:
        the bot can read any file the homeserver has."""
        if self.media is None:
            raise RuntimeError("this bridge context cannot download media")
        return self.media.open(mxc, max_bytes=max_bytes)

    async def tell_user(self, user_id: UserID, text: str) -> None:
        """Say ``text`` to one Matrix user privately: in their management room (a direct chat
        with the bridge bot), opened for them if they have none. For what must not be said in a
        shared room (a secret URL, a token)."""
        if self.private_notices is None:
            raise RuntimeError("this bridge context cannot send private notices")
        await self.private_notices(user_id, text)

    def ghost_user_id(self, localpart_suffix: str) -> UserID:
        """The Matrix ID ``@{ghost_prefix}{suffix}:{server_name}`` (no escaping: prefer :meth:`ghost_for`)."""
        return UserID(f"@{self.ghost_prefix}{localpart_suffix}:{self.server_name}")

    def ghost_for(self, sender_id: RemoteUserID) -> UserID:
        """The Matrix ID of the ghost the core posts ``sender_id``'s messages with (for pills):
        ``@{ghost_prefix}{name}_{sender}``, or ``@{ghost_prefix}{sender}`` when the prefix is the
        default ``_{name}_`` (see bridgekit/naming.py); a ghost made before keeps its ID."""
        if self.ghost_names is not None:
            return self.ghost_names.user_id(self.name, sender_id)
        return section_ghost_user_id(self.ghost_prefix, self.name, sender_id, self.server_name)

    async def keep_ghost_id(self, sender_id: RemoteUserID, user_id: UserID) -> UserID:
        """A ghost this connector made itself before posting through the core keeps its ID:
        from now on the core posts ``sender_id``'s events with ``user_id`` (recorded, so once is
        enough). A ghost the core already has for ``sender_id`` stands. Returns the ID in use."""
        return await self.remote.keep_ghost_id(self.name, sender_id, user_id)

    def sender_of_ghost(self, user_id: str) -> RemoteUserID | None:
        """The remote sender behind one of this connector's ghosts, whichever form its ID has
        (None: not one of them)."""
        sender = parse_section_ghost_user_id(user_id, self.ghost_prefix, self.name, self.server_name)
        return RemoteUserID(sender) if sender is not None else None

    async def emit(self, event: RemoteEvent, *, wait: bool = False) -> EventID | None:
        """Hand a remote event to the core. It is stored durably before this returns; the core
        then posts it in its portal, in order per chat, through the sender's ghost, retrying
        with backoff. Emitting the same event again (same chat, message and, for edits,
        ``edit_id``) is harmless. Echoes of messages the bridge's own sessions sent are
        recognised by the message ID ``send`` returned and dropped here.

        With ``wait=True`` it returns only once the event is posted, with the Matrix event it
        became (None for events that post none: typing, receipts, membership, chat info, power,
        or an edit of a message that was never bridged). Durability and order are the same: the
        event is stored first and posted by its portal's worker, behind the chat's earlier
        events. Emitted again after it was posted, the same event answers with the same ID at
        once. Raises :class:`~bridgekit.errors.DeliveryFailed` when every attempt failed, and
        :class:`~bridgekit.errors.DeliveryInterrupted` when the bridge stops first (the event is
        still posted at the next start). Cancelling the caller cancels only the wait. Waiting
        inside ``handle_matrix_event`` cannot deadlock (posting is another worker than the
        room's inbox), but it holds up that room's next Matrix events meanwhile."""
        return await self.remote.emit(self.name, event, wait=wait)

    async def link_portal(self, chat_id: ChatID, room_id: RoomID, *, relay: bool | None = None) -> None:
        """Make ``room_id`` the portal of the remote chat ``chat_id`` (plumbing); ``relay`` sets
        whether the bot relays there (None: the bridge's default; False for private chats)."""
        await self.remote.link_portal(self.name, chat_id, room_id, relay=relay)

    async def link_feed(self, chat_id: ChatID, room_id: RoomID) -> None:
        """Post the chat's events into ``room_id`` without making the room its portal: a *feed*.

        What is emitted to ``chat_id`` is posted there exactly as into a portal (the same outbox,
        order per chat, durability and ``emit(..., wait=True)`` answer), but the room stays what
        it was: :meth:`chat_for_room` does not name the chat, Matrix messages in the room are not
        routed to it (a :class:`MatrixEventHandler` still sees them, as in any room), linking or
        unlinking the room's portal leaves the feed alone, and any number of feeds, of any
        connectors, may post into one room beside its portal. The core never makes a room for a
        feed, and a feed does not set the room's name, topic or power levels
        (``RemoteChatInfo``/``RemotePower`` are dropped). Idempotent; a chat that was a portal
        becomes a feed (and :meth:`link_portal` turns a feed back into a portal). For chats that
        only post into rooms people made for something else: a webhook posting into an IRC
        channel's room, say. The bot must be in the room."""
        await self.remote.link_feed(self.name, chat_id, room_id)

    async def portal_chats(self) -> list[ChatID]:
        """The chats of this connector that have a portal room now (to rejoin them at start)."""
        return [ChatID(chat) for chat in await self.remote.portal_chats(self.name)]

    async def chat_for_room(self, room_id: RoomID) -> ChatID | None:
        """The chat ``room_id`` is the portal of, if it is one of this connector's portals."""
        chat = await self.remote.chat_for_room(self.name, room_id)
        return ChatID(chat) if chat is not None else None

    async def room_for_chat(self, chat_id: ChatID) -> RoomID | None:
        """The portal room of ``chat_id``, if it has one."""
        return await self.remote.room_for_chat(self.name, chat_id)

    async def open_dm(
        self, chat_id: ChatID, sender_id: RemoteUserID, user_id: UserID, *, sender_name: str | None = None
    ) -> RoomID:
        """The direct-chat portal between the remote user ``sender_id`` and the Matrix user
        ``user_id`` (a private message): made by the sender's ghost, inviting the user, the
        first time; relaying is off there. Then ``emit`` the message to ``chat_id`` as usual."""
        return await self.remote.open_dm(self.name, chat_id, sender_id, sender_name, user_id)

    async def report_session(self, owner: UserID | None, state: SessionState, detail: str | None = None) -> None:
        """Say how a session is doing: ``owner`` is the Matrix user whose puppet or virtual
        session it is (None for the bridge bot). The owner is told in their management room;
        a transient disconnect only if it is not followed by ``CONNECTED`` within a few seconds.
        Cheap and never raises: call it on every change."""
        await self.remote.report_session(self.name, owner, state, detail)


class MetricCounter(Protocol):
    def inc(self, amount: float = 1.0, **labels: str) -> None: ...


class MetricGauge(Protocol):
    def set(self, value: float, **labels: str) -> None: ...


class MetricHistogram(Protocol):
    def observe(self, value: float, **labels: str) -> None: ...


class ConnectorMetricsSource(Protocol):
    """What :attr:`BridgeContext.metrics` offers (``bridgekit/telemetry.py`` implements it)."""

    def counter(self, name: str, documentation: str, labels: Sequence[str] = ()) -> MetricCounter: ...

    def gauge(self, name: str, documentation: str, labels: Sequence[str] = ()) -> MetricGauge: ...

    def histogram(self, name: str, documentation: str, labels: Sequence[str] = ()) -> MetricHistogram: ...


class _NoMetric:
    def inc(self, amount: float = 1.0, **labels: str) -> None:
        pass

    def set(self, value: float, **labels: str) -> None:
        pass

    def observe(self, value: float, **labels: str) -> None:
        pass


class _NoMetrics:
    """A context built by hand (tests) measures nothing."""

    def counter(self, name: str, documentation: str, labels: Sequence[str] = ()) -> MetricCounter:
        return _NoMetric()

    def gauge(self, name: str, documentation: str, labels: Sequence[str] = ()) -> MetricGauge:
        return _NoMetric()

    def histogram(self, name: str, documentation: str, labels: Sequence[str] = ()) -> MetricHistogram:
        return _NoMetric()


_NO_METRICS = _NoMetrics()


class SigningKeySource(Protocol):
    async def signing_key(self, connector: str, purpose: str) -> SigningKey: ...


class MediaSource(Protocol):
    def open(self, mxc: str, *, max_bytes: int) -> contextlib.AbstractAsyncContextManager[MediaDownload]: ...


@dataclass(frozen=True)
class Job:
    """One queued job, as its handler gets it."""

    id: int
    """Stable across attempts and restarts: an idempotency key to hand a receiver."""
    kind: str
    key: str
    """The ordering key it was queued under."""
    payload: Any
    attempt: int
    """1 on the first try, 2 on the first retry, ..."""


@dataclass(frozen=True)
class JobRetry:
    """How a kind of job is retried: after failed attempt n it waits ``base_seconds * 2**(n-1)``,
    at most ``cap_seconds``; after ``max_attempts`` attempts it has failed for good."""

    max_attempts: int = 8
    base_seconds: float = 1.0
    cap_seconds: float = 300.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt ``attempt`` (1-based)."""
        return float(min(self.cap_seconds, self.base_seconds * 2 ** (attempt - 1)))


DEFAULT_JOB_RETRY = JobRetry()
"""Eight attempts over about two minutes (1 s, 2 s, 4 s, ... between them)."""


class GiveUpJob(Exception):
    """Raised by a job handler when retrying cannot help (a receiver answered 404, say): the job
    fails at once, with this message as its error."""


JobHandler = Callable[[Job], Awaitable[None]]
JobFailureHandler = Callable[[Job, str], Awaitable[None]]
"""Told once when a job has failed for good: the job (its last attempt) and the error."""


class JobQueue(Protocol):
    """Durable side work (``ctx.jobs``) that must not hold up a room: an outbound webhook
    delivery, a profile fetch. Jobs are stored in the bridge's database when :meth:`enqueue`
    returns, run by the framework after the connector started, and kept across restarts.

    Order: jobs with the same ``key`` run one at a time in the order queued; a job being retried
    holds back the later jobs of its key (never those of other keys). Handlers run at least once
    per job (again after a crash mid-run): make their effect idempotent, e.g. with ``job.id``."""

    def register(
        self, kind: str, handler: JobHandler, *, retry: JobRetry = DEFAULT_JOB_RETRY,
        on_failed: JobFailureHandler | None = None,
    ) -> None:
        """Run ``handler`` for jobs of ``kind`` (register every kind in ``__init__`` or ``start``). It succeeds by
        returning; raising retries with backoff (:class:`GiveUpJob`: no retry), and after the
        last attempt the job is recorded as failed and ``on_failed`` is called."""

    async def enqueue(self, kind: str, payload: Any, *, key: str, unique: str | None = None) -> int:
        """Queue a job (``payload``: anything JSON can hold), committed when this returns; its ID.

        ``unique`` names work that must be queued once, such as one delivery per hook and Matrix
        event (``handle_matrix_event`` may see an event again after a crash): a job queued again
        with the unique key of an earlier one, pending, failed or done in the last 7 days, is not
        stored again, and the earlier job's ID is returned."""

    async def failed(self, kind: str | None = None, *, limit: int = 100) -> list[Job]:
        """Jobs that failed for good, newest first (``attempt``: how many were made)."""


class ConnectorDatabase(Protocol):
    """The bridge's own database (``ctx.database``), for a connector's own tables.

    The same transactions bridgekit uses: on SQLite one writer at a time (so "database is
    locked" cannot happen) and readers beside it; on PostgreSQL a pool. Keep transactions short
    and never wait on the network inside one: on SQLite every other write waits meanwhile. A
    connector never creates an engine or opens the database file itself."""

    dialect: str
    """``"sqlite"`` or ``"postgresql"`` (upserts differ: ``sqlalchemy.dialects.<dialect>.insert``)."""

    def write(self) -> contextlib.AbstractAsyncContextManager[AsyncConnection]:
        """``async with ctx.database.write() as conn``: one transaction, committed at the end of
        the block, rolled back if it raises."""

    def read(self) -> contextlib.AbstractAsyncContextManager[AsyncConnection]:
        """A read-only transaction (one consistent snapshot)."""

    def write_session(self) -> contextlib.AbstractAsyncContextManager[AsyncSession]:
        """An ORM session inside a write transaction, committed at the end of the block."""


@dataclass(frozen=True)
class ConnectorTables:
    """Tables a connector keeps in the bridge's database, with Alembic migrations of its own."""

    schema: str
    """Names the migration history: revisions are recorded in ``alembic_version_<schema>``.
    Lower-case letters, digits and ``_``; start your tables' names with it (``webhook_hook``)."""
    migrations: Path
    """The directory of the Alembic revision files (``0001_hooks.py``, ...; no env.py needed):
    applied in order, up to the newest, at every start, after bridgekit's own migrations."""
    metadata: MetaData | None = None
    """The tables as SQLAlchemy models, when the connector has them (for its own tests, which
    can compare the migrated schema with them)."""


@runtime_checkable
class TableOwner(Protocol):
    """A connector with tables of its own: declare ``tables`` on the class; read and write them
    through :attr:`BridgeContext.database`."""

    tables: ConnectorTables


class KeyValue(Protocol):
    """The connector's own small values (``ctx.kv``), e.g. a network's CASEMAPPING learnt once."""

    async def get(self, key: str, default: Any = None) -> Any:
        """The value stored under ``key`` (``default`` when none). One query: not for hot paths."""

    async def set(self, key: str, value: Any, *, ttl_seconds: float | None = None) -> None:
        """Store ``value`` (anything JSON can hold), committed when this returns; with
        ``ttl_seconds`` it reads as missing after that long and is deleted later. Not for bulk
        data or secrets in clear (encrypt those first)."""

    async def delete(self, key: str) -> None:
        """Remove the value; nothing happens when there is none."""


@runtime_checkable
class NetworkConnector(Protocol):
    """Required of every connector. It is built by its factory with its context
    (:data:`ConnectorFactory`), so everything in ``ctx`` is there from ``__init__`` on;
    ``__init__`` must not connect or do I/O (that is :meth:`start`'s job)."""

    name: str
    """``ctx.name``: the config section that enabled the connector (the core checks it)."""

    async def start(self) -> None:
        """Called once, after the database is ready and the appservice is answering (and after
        :meth:`HttpRouteProvider.http_router` and :meth:`CommandProvider.commands` were asked for).

        Connect to the remote network here. Must not block for long: start background tasks.
        Puppet sessions of logged-in users are restored by the core right after this returns
        (through :meth:`LoginProvider.connect_puppet`).
        """

    async def stop(self) -> None:
        """Called once at shutdown, also when :meth:`start` raised or was never reached after a
        later connector failed. Close connections; must not raise."""


ConnectorFactory: TypeAlias = Callable[[BridgeContext], NetworkConnector]
"""What a connector's entry point or ``factory: "pkg.mod:Class"`` names: called with the
connector's context, returns the connector (usually the class itself). Its ``Settings`` attribute,
when it has one (:class:`ConfiguredConnector`), validates the section before the call."""


SettingsT = TypeVar("SettingsT")


class ConnectorBase(Generic[SettingsT]):
    """An optional base class: keeps ``ctx``, ``name`` (``ctx.name``) and ``settings``
    (``ctx.settings``, typed by the parameter: ``ConnectorBase[MySettings]``). The contract stays
    the protocols above; subclassing this only saves a few lines::

        class MyConnector(ConnectorBase[MySettings]):
            Settings = MySettings

            async def start(self) -> None:
                self.ctx.log.info("connecting as %s", self.settings.nick)
    """

    def __init__(self, ctx: BridgeContext) -> None:
        self.ctx = ctx
        self.name = ctx.name
        self.settings: SettingsT = ctx.settings

    async def start(self) -> None:
        """Nothing to connect by default."""

    async def stop(self) -> None:
        """Nothing to close by default."""


PortalMessages: TypeAlias = Literal["sessions", "events"]
"""Which ability receives a connector's portal messages (messages, edits, redactions, reactions,
topic changes and leaves in its portals): ``"sessions"``, routed by the core to the session the
routing rule picks, or ``"events"``, handed to :meth:`MatrixEventHandler.handle_matrix_event`.

Declared as a ``portal_messages`` class attribute. Needed only by a connector that offers both
sessions (:class:`RelayProvider`, :class:`VirtualUserProvider` or :class:`LoginProvider`) and
``handle_matrix_event``: without the declaration the bridge refuses to start. Otherwise it follows
from what the connector offers (sessions: ``"sessions"``; only ``handle_matrix_event``: ``"events"``)."""

PORTAL_MESSAGE_RECEIVERS: tuple[PortalMessages, ...] = ("sessions", "events")


@runtime_checkable
class MatrixEventHandler(Protocol):
    """A connector that wants room events itself (optional)."""

    async def handle_matrix_event(self, event: MatrixEvent) -> None:
        """Called for each room event from the homeserver that the core did not handle itself,
        in order per room, after it is stored.

        Portal messages, edits, redactions and reactions come here only when the connector's
        portal messages go to events (:data:`PortalMessages`); with sessions the core routes them
        to the sessions. Membership, state and events of rooms that are no portal always come
        here, and so do the messages of rooms that are another connector's portal (a webhook
        delivering what is said in an IRC channel's room). May be called again for the same
        event after a crash (at-least-once): make effects idempotent (e.g. derive Matrix
        transaction IDs from ``event.event_id``). Raising makes the
        core retry with backoff, then mark the event failed. Events sent by the bridge's own users
        (its bot and ghosts) are not passed here.
        """


class SessionKind(enum.Enum):
    """Whose remote identity a session is."""

    BOT = "bot"
    """The network's bridge bot: relays everyone (``<name> text``)."""
    VIRTUAL = "virtual"
    """An identity the bridge holds on the network for one Matrix user, without their credentials."""
    PUPPET = "puppet"
    """A Matrix user's own remote account, logged in through the bridge."""


@dataclass(frozen=True)
class OutgoingMessage:
    """A Matrix message on its way to the remote network, as the core routed it."""

    chat_id: ChatID
    text: str
    """Plain text; for the relay, already formatted with the relay template (``<alice> hi``)."""
    html: str | None
    msgtype: str
    """m.text, m.notice or m.emote."""
    event_id: EventID
    """The Matrix event: a stable key should the network support idempotent sends."""
    sender: UserID
    sender_name: str
    reply_to: MessageID | None = None
    """The remote message ID this one replies to, when the Matrix message was a reply."""
    media: OutgoingMedia | None = None
    """For m.image, m.file, m.video and m.audio: the file (``text`` is its name or caption)."""
    mentions: tuple[UserID, ...] = ()
    """Users the message mentions (``m.mentions``), e.g. ghosts whose remote names to address."""


@dataclass(frozen=True)
class OutgoingMedia:
    """A file sent on Matrix. Networks without file transfer get a link: the bridge serves the
    file at ``{public_url}`` routes of the connector's own (homeserver media needs a token)."""

    mxc: str
    filename: str
    size: int | None
    mimetype: str | None


@dataclass(frozen=True)
class Accepted:
    """What ``send`` returns for a message it has taken but not yet delivered: it waits in the
    session's own queue (an output rate limit), and ``delivered`` finishes once it has gone.

    The core maps ``message_id`` at once and moves on to the room's next event, but records this
    Matrix event handled only once ``delivered`` has finished (and every earlier event of the
    room is handled). A crash before that replays the event at the next start, so nothing that
    waited in memory is lost. If ``delivered`` raises, the event is given up on (recorded failed,
    its sender told in the room); it is not retried, as the room has moved on.
    """

    message_id: MessageID | None
    delivered: Awaitable[object]
    """Its result, if any, is ignored."""


@runtime_checkable
class RemoteSession(Protocol):
    """One remote identity. Sending may raise: the core retries with backoff, then tells the room."""

    kind: SessionKind

    async def send(self, message: OutgoingMessage) -> MessageID | Accepted | None:
        """Send to ``message.chat_id``; return the remote message ID if the network gives one.

        The core records it, so the echo of this message from the network is not bridged back,
        and later replies, edits and redactions can find it. Must not return before the network
        accepted the message (as far as it can tell), unless it returns :class:`Accepted`.
        """


@runtime_checkable
class EditingSession(Protocol):
    """A session that can edit what it sent. Without it, a Matrix edit goes out as a new
    message ``* corrected text`` (what IRC users expect)."""

    async def edit(self, chat_id: ChatID, message_id: MessageID, message: OutgoingMessage) -> None:
        """Replace the text of ``message_id`` (sent by this session) with ``message.text``."""


@runtime_checkable
class DeletingSession(Protocol):
    """A session that can delete messages. Without it, a Matrix redaction is not bridged."""

    async def delete(self, chat_id: ChatID, message_id: MessageID) -> None:
        """Delete ``message_id`` in ``chat_id``."""


@runtime_checkable
class ReactingSession(Protocol):
    """A session that can react to messages."""

    async def react(self, chat_id: ChatID, message_id: MessageID, emoji: str) -> None:
        """A Matrix user reacted to ``message_id``: react as this session. Called in the room's
        order; may raise (retried, then reported). Must not emit the reaction back."""

    async def unreact(self, chat_id: ChatID, message_id: MessageID, emoji: str) -> None:
        """The Matrix reaction was redacted: take this session's reaction back."""


@runtime_checkable
class TypingSession(Protocol):
    """A session that can show that its user is typing. Used for puppet and virtual sessions
    only (the relay bot typing for someone else would mislead); needs ``receive_ephemeral``."""

    async def set_typing(self, chat_id: ChatID, typing: bool) -> None:
        """The session's Matrix user started or stopped typing. Best effort: must not raise for
        a network that lost the chat, and must not block (typing is worthless late)."""


@runtime_checkable
class ReceiptSession(Protocol):
    """A session that can mark a chat read up to a message (puppet and virtual sessions only)."""

    async def mark_read(self, chat_id: ChatID, message_id: MessageID) -> None:
        """The session's Matrix user read up to ``message_id`` (a message from the network).
        Best effort, like typing."""


@runtime_checkable
class MembershipSession(Protocol):
    """A session that can leave a chat: when its Matrix user leaves a portal, they leave the chat."""

    async def leave_chat(self, chat_id: ChatID, reason: str | None) -> None:
        """The session's Matrix user left the portal: leave the chat on the network. Must not
        close the session (the user may still be in other portals)."""


@runtime_checkable
class JoiningSession(Protocol):
    """A session that can join a chat before it says anything. When the connector's
    ``join_on_portal_join`` is true, a Matrix user joining a portal (whom the routing rule gives a
    puppet or virtual identity) joins the chat at once, so the other side sees who is listening,
    and the core keeps that virtual session open, whatever ``virtual_idle_minutes`` says, while
    the user is in one of the network's portals."""

    async def join_chat(self, chat_id: ChatID) -> None:
        """Join the chat on the network now (nothing happens if already in it)."""


@runtime_checkable
class TopicSession(Protocol):
    """A session that can set a chat's topic: a topic set on Matrix reaches the chat."""

    async def set_topic(self, chat_id: ChatID, topic: str) -> None:
        """A Matrix user set the portal's topic: set it on the network, as this session. May raise
        when the network refuses (the user lacks the right); must not emit it back."""


@runtime_checkable
class ClosableSession(Protocol):
    async def close(self) -> None:
        """End the session (disconnect from the network). Called by the core for a virtual
        session idle longer than ``virtual_idle_minutes``, and for a puppet at logout; the core
        asks for a new session when the user speaks again. Must not raise."""


@runtime_checkable
class RelayProvider(Protocol):
    async def relay_session(self) -> RemoteSession | None:
        """The network's bot session, or None while it is not connected."""


class UseRelay(Exception):
    """Raised by ``virtual_session``: no identity of their own for this user now (a connection
    limit is reached, say); the core has their message said by the portal's relay instead, with
    the relay template (``<name> text``), or refuses it where the portal's relay is off. The
    ``reason`` is told to the user once per network (privately, as :meth:`BridgeContext.tell_user`),
    not per message; once the connector gives them a session again, a later ``UseRelay`` is told
    again. Never hand back the bot's session instead: it would send their text under the bot's
    name, without the prefix."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@runtime_checkable
class VirtualUserProvider(Protocol):
    virtual_users: bool
    """True while virtual-user mode is on (usually a setting of the connector)."""

    async def virtual_session(self, user_id: UserID, display_name: str) -> RemoteSession:
        """A new virtual identity for ``user_id`` on the network, connected.

        Called by the core when the user speaks in a portal and has no live virtual session;
        the core keeps the session and closes it (:class:`ClosableSession`) when it has been
        idle for the connector's ``virtual_idle_minutes``. Must not cache sessions itself.
        Raise :class:`UseRelay` to have the user relayed instead for now."""


@dataclass(frozen=True)
class LoginField:
    """One question of a login flow (``username``, ``password``, ``token``...)."""

    key: str
    prompt: str
    """What the bot asks: ``Your chatnet password?``."""
    secret: bool = False
    """The answer is redacted from the room and never logged."""


@dataclass(frozen=True)
class LoginFlow:
    """A way to log in to the network, asked for field by field in the management room."""

    id: str
    name: str
    fields: tuple[LoginField, ...]


@dataclass(frozen=True)
class PuppetLogin:
    """A user's login on the network, as the core stores it (credentials encrypted at rest)."""

    remote_user_id: RemoteUserID
    """The user's ID on the network: the core recognises their messages by it (double puppet)."""
    remote_name: str
    credentials: Mapping[str, str] = field(default_factory=dict)
    """What ``connect_puppet`` needs to connect again after a restart (a token, a password)."""


class LoginFailed(Exception):
    """Raised by a login or a puppet connection: the message is shown to the user as it is."""

    def __init__(self, message: str, *, bad_credentials: bool = True) -> None:
        super().__init__(message)
        self.bad_credentials = bad_credentials


@runtime_checkable
class LoginProvider(Protocol):
    """Puppet mode: a Matrix user logs in to the network with their own account."""

    login_flows: Sequence[LoginFlow]

    async def login(self, user_id: UserID, flow_id: str, answers: Mapping[str, str]) -> PuppetLogin:
        """Check the answers with the network; return what the core stores.

        Raise :class:`LoginFailed` with a message for the user when the network refuses.
        Must not keep a connection open: :meth:`connect_puppet` is called next."""

    async def connect_puppet(self, user_id: UserID, login: PuppetLogin) -> RemoteSession:
        """Connect ``user_id``'s own account (at login, at start-up, and on ``reconnect``).

        Raise :class:`LoginFailed` when the credentials no longer work. The connector reports
        later state changes with :meth:`BridgeContext.report_session`."""

    async def logout(self, user_id: UserID, login: PuppetLogin) -> None:
        """The user logged out: revoke what can be revoked. The session was closed already."""


@dataclass(frozen=True)
class PortalInfo:
    """A remote chat, as an alias query resolves it."""

    chat_id: ChatID
    name: str | None = None
    topic: str | None = None


@runtime_checkable
class PortalResolver(Protocol):
    async def portal_for_alias(self, alias_suffix: str) -> PortalInfo | None:
        """Someone asked for ``#{alias_prefix}{alias_suffix}:server``: the chat it names, or None.

        On an answer the core creates the portal room with that alias before the homeserver gets
        its 200, so joining the alias works at once. Must answer within a few seconds."""


@runtime_checkable
class PortalListener(Protocol):
    """Told when the core links or unlinks a portal of this connector (``link`` and ``unlink``
    commands, alias queries, room upgrades), so it can join or leave the chat on the network."""

    async def portal_linked(self, chat_id: ChatID, room_id: RoomID) -> None:
        """``chat_id`` has a portal room now: join it on the network so its events are heard.
        Called after the link is stored; errors are logged, never undo the link."""

    async def portal_unlinked(self, chat_id: ChatID) -> None:
        """``chat_id`` is no longer bridged: leave it on the network unless the connector keeps it
        for another reason."""


@runtime_checkable
class LinkApprover(Protocol):
    """Asked before a room is linked to one of this connector's chats (the ``link`` command and
    the provisioning API) at the request of someone who is not a bridge admin: the people who run
    the chat on the network may have a say (the IRC bridge asks a channel operator). Bridge
    admins link at once, as without this ability."""

    async def approve_link(self, user_id: UserID, chat_id: ChatID, room_id: RoomID) -> bool | str:
        """True: link ``room_id`` to ``chat_id`` (canonical, as ``portal_for_alias`` gave it) for
        ``user_id``. False, or the reason as one line: refused (the room is told, with the reason).

        May take minutes (it asks people); bound it yourself. The core awaits it in a task of
        its own and answers the command at once, so the room's other events are not held up; it
        posts the outcome in the room. An exception counts as a refusal (and is logged)."""


@runtime_checkable
class HttpRouteProvider(Protocol):
    def http_router(self) -> APIRouter:
        """Routes mounted on the bridge's HTTP app (the webhook bridge's inbound hooks).

        Called once, after construction, before the app serves and before
        :meth:`NetworkConnector.start`; the handlers run only after it. Paths must not start
        with ``/_matrix``, ``/health`` or ``/metrics`` (refused at start-up). The routes do their
        own authentication."""


@runtime_checkable
class CommandProvider(Protocol):
    def commands(self) -> Sequence[Command]:
        """Management-room commands the connector adds (``help`` lists them). A name taken by
        bridgekit or another connector stops the bridge at start-up with the clash named."""


class ConfiguredConnector(Protocol):
    """A connector whose config section has a typed model of its own.

    Declare ``Settings`` (a pydantic model) on the class (the factory); the core validates the
    section with it before the connector is built and hands the instance over as ``ctx.settings``. A bad
    value stops the bridge with an error naming ``connectors.<name>.<key>`` and the fix; keys the
    model does not know are warned about (and kept, as everywhere in the config).
    """

    Settings: type[BaseModel]


@runtime_checkable
class EphemeralHandler(Protocol):
    async def handle_ephemeral(self, event: EphemeralEvent) -> None:
        """Typing, receipts, presence (when ``receive_ephemeral`` is on). Same rules as events."""


@runtime_checkable
class UserQueryHandler(Protocol):
    async def query_user(self, user_id: UserID) -> bool:
        """The homeserver asks whether ``user_id`` (in our namespace) exists.

        Return True to claim it; the core then registers the user before answering 200.
        Must not block for more than a few seconds (the homeserver is waiting).
        """


@runtime_checkable
class AliasQueryHandler(Protocol):
    async def query_alias(self, alias: RoomAlias) -> bool:
        """The homeserver asks whether ``alias`` (in our namespace) exists.

        Return True only after creating the room and giving it the alias (spec: the room must
        exist before the 200).
        """


@runtime_checkable
class ThirdPartyHandler(Protocol):
    """Third-party network lookups (``/thirdparty/*``) for the protocols the connector provides."""

    protocol_ids: tuple[str, ...]
    """A class attribute: ``generate-registration`` reads it from the factory, unbuilt."""

    async def thirdparty_protocol(self, protocol: str) -> dict[str, Any] | None:
        """Protocol metadata (user_fields, location_fields, icon, field_types, instances)."""

    async def thirdparty_locations(self, protocol: str, fields: Mapping[str, str]) -> list[dict[str, Any]]:
        """Portals matching the fields: ``[{alias, protocol, fields}]``."""

    async def thirdparty_users(self, protocol: str, fields: Mapping[str, str]) -> list[dict[str, Any]]:
        """Ghosts matching the fields: ``[{userid, protocol, fields}]``."""

    async def thirdparty_location_by_alias(self, alias: RoomAlias) -> list[dict[str, Any]]:
        """Reverse lookup of a Matrix alias."""

    async def thirdparty_user_by_id(self, user_id: UserID) -> list[dict[str, Any]]:
        """Reverse lookup of a Matrix user ID."""


__all__ = [
    "DEFAULT_JOB_RETRY",
    "PORTAL_MESSAGE_RECEIVERS",
    "AliasQueryHandler",
    "BridgeContext",
    "ClosableSession",
    "CommandProvider",
    "ConfiguredConnector",
    "ConnectorBase",
    "ConnectorDatabase",
    "ConnectorFactory",
    "ConnectorTables",
    "DeletingSession",
    "EditingSession",
    "EphemeralHandler",
    "GhostNames",
    "GiveUpJob",
    "HttpRouteProvider",
    "Job",
    "JobFailureHandler",
    "JobHandler",
    "JobQueue",
    "JobRetry",
    "KeyValue",
    "LoginFailed",
    "LoginField",
    "LoginFlow",
    "LoginProvider",
    "MatrixAPI",
    "MatrixEventHandler",
    "MatrixIntent",
    "MediaSource",
    "MembershipSession",
    "NetworkConnector",
    "OutgoingMedia",
    "OutgoingMessage",
    "PortalInfo",
    "PortalListener",
    "PortalMessages",
    "PortalResolver",
    "PuppetLogin",
    "ReactingSession",
    "ReceiptSession",
    "RelayProvider",
    "RemoteSession",
    "RemoteSink",
    "SessionKind",
    "SessionState",
    "SigningKeySource",
    "TableOwner",
    "ThirdPartyHandler",
    "TopicSession",
    "TypingSession",
    "UseRelay",
    "UserQueryHandler",
    "VirtualUserProvider",
]
