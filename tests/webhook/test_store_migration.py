"""The webhook bridge's tables in the bridge's database: their migrations build the models' schema,
and a webhook.db made by older code (fa2620c's schema, and the last one, version 1) is imported
once at the first start, hooks, secrets, remembered requests and pending deliveries included;
secrets survive a key rotation."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import sqlite3
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from cryptography.fernet import Fernet
from sqlalchemy import select
from sqlalchemy.engine import Connection

from bridgekit import BridgeContext
from bridgekit.core.connector_kv import ConnectorKeyValue
from bridgekit.core.connector_tables import migrate_connector_tables
from bridgekit.core.ghost_ids import GhostIDs
from bridgekit.core.jobs import ConnectorJobs, JobRunner
from bridgekit.ids import UserID
from bridgekit.store import Database, KeyValueStore
from bridgekit.store import Job as JobModel
from bridgekit.store.ghosts import GhostStore
from bridgekit.store.jobs import JobStore
from bridges.webhook.connector import WebhookConnector
from bridges.webhook.inbound import InboundPosts
from bridges.webhook.intake import Intake, Request
from bridges.webhook.legacy_import import import_legacy_database
from bridges.webhook.outbound import DELIVERY, hook_key
from bridges.webhook.secret_box import SecretBox, SecretBoxUnavailable, inbound_row, outbound_row
from bridges.webhook.settings import WebhookSettings
from bridges.webhook.store import Added, Hook, InboundMessage, OutboundHook, WebhookStore
from bridges.webhook.tables import Base
from tests.support.contexts import hand_built_context

OLD_SCHEMA = Path(__file__).with_name("data") / "webhook_fa2620c.sql"
ROOM = "!room:example.org"
ALICE = "@alice:example.org"
BODY = b'{"text": "hello"}'
KEY = "0123456789abcdef"
OLD_GHOST = f"@_webhook_webhook_gh01.{KEY}:example.org"
"""How the old bridge named a ghost (default prefix, then the connector's name once more)."""


def old_database(path: Path, key: str) -> None:
    """A webhook.db as fa2620c left it: its schema, hooks whose secrets its SecretBox sealed (a
    bare Fernet token), a pending delivery and an accepted request."""
    sealed = Fernet(key.encode()).encrypt(b"old-github-secret").decode()
    sealed_out = Fernet(key.encode()).encrypt(b"old-outbound-secret").decode()
    with sqlite3.connect(path) as db:
        db.executescript(OLD_SCHEMA.read_text())
        db.execute("INSERT INTO webhook_hook VALUES ('gh01', ?, 'ci', ?, 'github', NULL, ?, 'bot', 1)",
                   (ROOM, ALICE, sealed))
        db.execute("INSERT INTO webhook_outbound VALUES ('out01', ?, 'https://example.org/in', ?, ?, 1)",
                   (ROOM, sealed_out, ALICE))
        db.execute("INSERT INTO webhook_delivery VALUES ('d1', 'out01', '$e', ?, '{}', 'pending', 0, 0, NULL)",
                   (ROOM,))
        db.execute("INSERT INTO webhook_inbound VALUES (1, 'gh01', 'k1', ?, '{}', 'sent', '$x', 1, 1)", (ROOM,))
        db.execute("INSERT INTO webhook_ghost VALUES ('gh01', ?, ?, 'Deploy Bot', NULL)", (KEY, OLD_GHOST))


def today_database(path: Path, key: str) -> None:
    """A webhook.db as the last version with a database of its own left it (schema version 1:
    its one migration step applied to fa2620c's), with a suspended hook and a remembered body."""
    old_database(path, key)
    with sqlite3.connect(path) as db:
        for table in ("webhook_hook", "webhook_outbound"):
            db.execute(f"ALTER TABLE {table} ADD COLUMN status VARCHAR(16) DEFAULT 'active' NOT NULL")
            db.execute(f"ALTER TABLE {table} ADD COLUMN suspended_reason TEXT")
        db.execute("ALTER TABLE webhook_inbound ADD COLUMN body_digest VARCHAR(64)")
        db.execute("CREATE UNIQUE INDEX ix_webhook_inbound_body_digest ON webhook_inbound (hook_id, body_digest)")
        db.execute("CREATE TABLE webhook_schema_version (version INTEGER NOT NULL, PRIMARY KEY (version))")
        db.execute("INSERT INTO webhook_schema_version VALUES (1)")
        db.execute("INSERT INTO webhook_hook VALUES ('gone1', ?, 'old', ?, 'token', ?, NULL, 'ghosts', 2, "
                   "'suspended', 'left')", (ROOM, ALICE, "0" * 64))
        db.execute("INSERT INTO webhook_inbound VALUES (2, 'gh01', NULL, ?, '{\"text\": \"x\"}', 'pending', NULL, 0, "
                   "2, ?)", (ROOM, "ab" * 32))
        db.execute("INSERT INTO webhook_delivery VALUES ('d2', 'out01', '$f', ?, '{\"n\": 2}', 'pending', 3, 0, 'x')",
                   (ROOM,))
        db.execute("INSERT INTO webhook_delivery VALUES ('d0', 'out01', '$d', ?, '{}', 'sent', 1, 0, NULL)", (ROOM,))


@dataclass
class Bridge:
    """What the import sees of the bridge: its database, the connector's kv and job queue."""

    database: Database
    ctx: BridgeContext
    jobs: JobStore
    ghost_ids: GhostIDs


@pytest.fixture
async def bridge(tmp_path: Path) -> AsyncIterator[Bridge]:
    database = await Database.open(f"sqlite+aiosqlite:///{tmp_path / 'bridge.db'}")
    try:
        await migrate_connector_tables(database, [WebhookConnector(hand_built_context("webhook", WebhookSettings()))])
        jobs = JobStore(database)
        ghost_ids = GhostIDs({"webhook": "_webhook_"}, "example.org")

        async def keep_ghost_id(sender_id: str, user_id: UserID) -> UserID:
            return await ghost_ids.keep(GhostStore(database), "webhook", sender_id, user_id)

        ctx = SimpleNamespace(name="webhook", kv=ConnectorKeyValue(KeyValueStore(database), "webhook"),
                              database=database, jobs=ConnectorJobs(JobRunner(jobs), "webhook"),
                              keep_ghost_id=keep_ghost_id)
        yield Bridge(database, cast(BridgeContext, ctx), jobs, ghost_ids)
    finally:
        await database.close()


def url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


def models_differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return [diff for diff in compare_metadata(context, Base.metadata) if "webhook_" in repr(diff)]


async def test_the_migrations_build_the_models_schema(bridge: Bridge) -> None:
    async with bridge.database.read() as connection:
        assert await connection.run_sync(models_differences) == []


@pytest.mark.parametrize("make", [old_database, today_database], ids=["fa2620c", "schema-1"])
async def test_an_old_webhook_database_is_imported_once(
    bridge: Bridge, tmp_path: Path, make: Callable[[Path, str], None],
) -> None:
    key = Fernet.generate_key().decode()
    make(tmp_path / "webhook.db", key)
    store = WebhookStore(bridge.database)

    counts = await import_legacy_database(bridge.ctx, url(tmp_path / "webhook.db"))

    assert counts is not None
    hook = await store.hook("gh01")
    assert hook is not None
    assert (hook.status, hook.creator, hook.scheme) == ("active", ALICE, "github")
    [outbound] = await store.in_room(OutboundHook, ROOM, active_only=True)
    assert (outbound.id, outbound.url) == ("out01", "https://example.org/in")
    # The remembered request still answers its Idempotency-Key; the secrets open with the key
    # and are sealed again in the current format by the start-up pass.
    added, how = await store.add_inbound("gh01", "k1", ROOM, {}, 5)
    assert (how, added.state, added.event_id) == (Added.SAME_KEY, "sent", "$x")
    box = SecretBox(key)
    assert await store.reseal_secrets(box) == 2
    assert box.open((await store.hook("gh01")).sealed_secret or "", row=inbound_row("gh01")) == "old-github-secret"  # type: ignore[union-attr]
    # Pending deliveries are jobs of the hook's key, in the order they were queued.
    pending = [await bridge.jobs.next_for("webhook", hook_key("out01"))]
    assert pending[0] is not None
    assert pending[0].payload["delivery_id"] == "d1"
    queued = await queued_deliveries(bridge.database)
    assert queued == (["d1", "d2"] if make is today_database else ["d1"])
    if make is today_database:
        suspended = await store.hook("gone1")
        assert suspended is not None
        assert (suspended.status, suspended.suspended_reason, suspended.identity) == ("suspended", "left", "ghosts")
        assert [row.id for row in await store.pending_inbound()] == [2]
        _, again = await store.add_inbound("gh01", "other", ROOM, {}, 6, body_digest="ab" * 32)
        assert again is Added.SAME_BODY

    # The old bridge's ghost stays the same Matrix user (the core posts with its ID, also after
    # a restart: the ghost table has it); a new sender gets the short ID.
    assert bridge.ghost_ids.user_id("webhook", f"gh01.{KEY}") == OLD_GHOST
    restarted = GhostIDs({"webhook": "_webhook_"}, "example.org")
    assert await restarted.load(GhostStore(bridge.database)) == 1
    assert restarted.user_id("webhook", f"gh01.{KEY}") == OLD_GHOST
    assert restarted.user_id("webhook", "gh01.fedcba9876543210") == "@_webhook_gh01.fedcba9876543210:example.org"

    # Recorded: a second start imports nothing, even what was removed since.
    await store.remove(Hook, "gh01")
    assert await import_legacy_database(bridge.ctx, url(tmp_path / "webhook.db")) is None
    assert await store.hook("gh01") is None
    assert await queued_deliveries(bridge.database) == queued
    assert (tmp_path / "webhook.db").is_file()  # left where it was


async def queued_deliveries(database: Database) -> list[str]:
    async with database.read() as connection:
        rows = await connection.execute(select(JobModel.payload).where(JobModel.kind == DELIVERY).order_by(JobModel.id))
        return [(json.loads(p) if isinstance(p, str) else p)["delivery_id"] for (p,) in rows]


async def test_a_new_bridge_without_a_webhook_database_records_that_there_is_nothing(
    bridge: Bridge, tmp_path: Path,
) -> None:
    assert await import_legacy_database(bridge.ctx, url(tmp_path / "absent.db")) == {}
    make_later = tmp_path / "absent.db"
    old_database(make_later, Fernet.generate_key().decode())
    assert await import_legacy_database(bridge.ctx, url(make_later)) is None  # decided once, at the first start


class PostedAtOnce:
    """Stands in for the poster: every stored message is 'posted' at once (no Matrix here)."""

    def post(self, row: InboundMessage, hook: Hook | None = None) -> asyncio.Task[str | None]:
        async def done() -> str | None:
            return f"$posted{row.id}"

        return asyncio.ensure_future(done())


def github_request(hook_id: str, secret: str) -> Request:
    signature = "sha256=" + hmac.new(secret.encode(), BODY, hashlib.sha256).hexdigest()
    return Request(hook_id, {"X-Hub-Signature-256": signature, "Content-Type": "application/json"}, BODY)


async def test_rotating_the_key_keeps_existing_hooks_working(bridge: Bridge, tmp_path: Path) -> None:
    old_key, new_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    old_database(tmp_path / "hooks.db", old_key)  # gh01: the format before key IDs
    await import_legacy_database(bridge.ctx, url(tmp_path / "hooks.db"))
    store = WebhookStore(bridge.database)
    before = SecretBox(old_key)
    await store.add(Hook(id="gh02", room_id=ROOM, name="ci2", creator=ALICE, scheme="github",
                              token_hash=None, identity="bot", created_ms=2,
                              sealed_secret=before.seal("gh02-secret", row=inbound_row("gh02"))))
    rotated = SecretBox(new_key, [old_key])
    intake = Intake(store, WebhookSettings(), rotated, cast(InboundPosts, PostedAtOnce()))

    for hook_id, secret in (("gh01", "old-github-secret"), ("gh02", "gh02-secret")):
        answer = await intake.handle(github_request(hook_id, secret))
        assert answer.status == 200, answer.body

    assert await store.reseal_secrets(rotated) == 3  # both inbound hooks and the outbound one
    assert await store.reseal_secrets(rotated) == 0
    only_new = SecretBox(new_key)
    gh01, gh02, out01 = await store.hook("gh01"), await store.hook("gh02"), await store.get(OutboundHook, "out01")
    assert gh01 is not None
    assert gh02 is not None
    assert out01 is not None
    assert only_new.open(gh01.sealed_secret or "", row=inbound_row("gh01")) == "old-github-secret"
    assert only_new.open(gh02.sealed_secret or "", row=inbound_row("gh02")) == "gh02-secret"
    assert only_new.open(out01.sealed_secret, row=outbound_row("out01")) == "old-outbound-secret"
    with pytest.raises(SecretBoxUnavailable):
        SecretBox(old_key).open(gh02.sealed_secret or "", row=inbound_row("gh02"))


def test_a_secret_copied_into_another_hooks_row_is_refused() -> None:
    box = SecretBox(Fernet.generate_key().decode())
    sealed = box.seal("theirs", row=inbound_row("a"))

    assert box.open(sealed, row=inbound_row("a")) == "theirs"
    with pytest.raises(SecretBoxUnavailable, match="another record"):
        box.open(sealed, row=inbound_row("b"))
    with pytest.raises(SecretBoxUnavailable, match="another record"):
        box.open(sealed, row=outbound_row("a"))

