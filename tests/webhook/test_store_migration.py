"""The webhook database: one made by the code of fa2620c is upgraded in place, keeps its hooks and
their secrets, and ends with the schema a new database gets; secrets survive a key rotation."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import sqlite3
from pathlib import Path
from typing import Any, cast

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import create_engine, inspect

from bridges.webhook.inbound import InboundPoster
from bridges.webhook.intake import Intake, Request
from bridges.webhook.schema import SCHEMA_VERSION
from bridges.webhook.secret_box import SecretBox, SecretBoxUnavailable, inbound_row, outbound_row
from bridges.webhook.settings import WebhookSettings
from bridges.webhook.store import Added, Hook, InboundMessage, WebhookStore

OLD_SCHEMA = Path(__file__).with_name("data") / "webhook_fa2620c.sql"
ROOM = "!room:example.org"
ALICE = "@alice:example.org"
BODY = b'{"text": "hello"}'


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


def schema_of(path: Path) -> dict[str, Any]:
    """Tables with their columns (type, nullability, default) and indexes, as SQLite reports them."""
    engine = create_engine(f"sqlite:///{path}")
    try:
        found = inspect(engine)
        return {
            table: (
                {c["name"]: (str(c["type"]), c["nullable"], str(c.get("default"))) for c in found.get_columns(table)},
                sorted((tuple(i["column_names"]), bool(i["unique"])) for i in found.get_indexes(table)),
                sorted(tuple(u["column_names"]) for u in found.get_unique_constraints(table)),
            )
            for table in found.get_table_names()
        }
    finally:
        engine.dispose()


def url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


async def test_a_database_made_by_fa2620c_is_upgraded_and_keeps_working(tmp_path: Path) -> None:
    key = Fernet.generate_key().decode()
    old_database(tmp_path / "old.db", key)

    store = await WebhookStore.open(url(tmp_path / "old.db"))
    try:
        hook = await store.hook("gh01")
        assert hook is not None
        assert (hook.status, hook.creator) == ("active", ALICE)
        assert SecretBox(key).open(hook.sealed_secret or "", row=inbound_row("gh01")) == "old-github-secret"
        [outbound] = await store.outbound_in_room(ROOM, active_only=True)
        assert outbound.status == "active"
        assert [d.id for d in await store.due_deliveries(10)] == ["d1"]
        # The new columns work: suspension drops the queued delivery, a body is remembered once.
        hooks, gone = await store.suspend_creator(ROOM, ALICE, "left")
        assert ([h.id for h in hooks], [o.id for o in gone]) == (["gh01"], ["out01"])
        assert await store.due_deliveries(10) == []
        _, first = await store.add_inbound("gh01", None, ROOM, {}, 2, body_digest="ab" * 32)
        earlier, again = await store.add_inbound("gh01", "other", ROOM, {}, 3, body_digest="ab" * 32)
        assert (first, again) == (Added.NEW, Added.SAME_BODY)
        assert isinstance(earlier, InboundMessage)
    finally:
        await store.close()

    fresh = await WebhookStore.open(url(tmp_path / "new.db"))
    await fresh.close()
    assert schema_of(tmp_path / "old.db") == schema_of(tmp_path / "new.db")
    with sqlite3.connect(tmp_path / "old.db") as db:
        assert db.execute("SELECT version FROM webhook_schema_version").fetchall() == [(SCHEMA_VERSION,)]


async def test_opening_an_upgraded_database_again_changes_nothing(tmp_path: Path) -> None:
    old_database(tmp_path / "old.db", Fernet.generate_key().decode())
    for _ in range(2):
        store = await WebhookStore.open(url(tmp_path / "old.db"))
        await store.close()
    with sqlite3.connect(tmp_path / "old.db") as db:
        assert db.execute("SELECT version FROM webhook_schema_version").fetchall() == [(SCHEMA_VERSION,)]
        assert db.execute("SELECT count(*) FROM webhook_hook").fetchone() == (1,)


class PostedAtOnce:
    """Stands in for the poster: every stored message is 'posted' at once (no Matrix here)."""

    def start_delivery(self, row: InboundMessage) -> asyncio.Task[str | None]:
        async def done() -> str | None:
            return f"$posted{row.id}"

        return asyncio.ensure_future(done())


def github_request(hook_id: str, secret: str) -> Request:
    signature = "sha256=" + hmac.new(secret.encode(), BODY, hashlib.sha256).hexdigest()
    return Request(hook_id, {"X-Hub-Signature-256": signature, "Content-Type": "application/json"}, BODY)


async def test_rotating_the_key_keeps_existing_hooks_working(tmp_path: Path) -> None:
    old_key, new_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    old_database(tmp_path / "hooks.db", old_key)  # gh01: the format before key IDs
    store = await WebhookStore.open(url(tmp_path / "hooks.db"))
    try:
        before = SecretBox(old_key)
        await store.add_hook(Hook(id="gh02", room_id=ROOM, name="ci2", creator=ALICE, scheme="github",
                                  token_hash=None, identity="bot", created_ms=2,
                                  sealed_secret=before.seal("gh02-secret", row=inbound_row("gh02"))))
        rotated = SecretBox(new_key, [old_key])
        intake = Intake(store, WebhookSettings(), rotated, cast(InboundPoster, PostedAtOnce()))

        for hook_id, secret in (("gh01", "old-github-secret"), ("gh02", "gh02-secret")):
            answer = await intake.handle(github_request(hook_id, secret))
            assert answer.status == 200, answer.body

        assert await store.reseal_secrets(rotated) == 3  # both inbound hooks and the outbound one
        assert await store.reseal_secrets(rotated) == 0
        only_new = SecretBox(new_key)
        gh01, gh02, out01 = await store.hook("gh01"), await store.hook("gh02"), await store.outbound("out01")
        assert gh01 is not None
        assert gh02 is not None
        assert out01 is not None
        assert only_new.open(gh01.sealed_secret or "", row=inbound_row("gh01")) == "old-github-secret"
        assert only_new.open(gh02.sealed_secret or "", row=inbound_row("gh02")) == "gh02-secret"
        assert only_new.open(out01.sealed_secret, row=outbound_row("out01")) == "old-outbound-secret"
        with pytest.raises(SecretBoxUnavailable):
            SecretBox(old_key).open(gh02.sealed_secret or "", row=inbound_row("gh02"))
    finally:
        await store.close()


def test_a_secret_copied_into_another_hooks_row_is_refused() -> None:
    box = SecretBox(Fernet.generate_key().decode())
    sealed = box.seal("theirs", row=inbound_row("a"))

    assert box.open(sealed, row=inbound_row("a")) == "theirs"
    with pytest.raises(SecretBoxUnavailable, match="another record"):
        box.open(sealed, row=inbound_row("b"))
    with pytest.raises(SecretBoxUnavailable, match="another record"):
        box.open(sealed, row=outbound_row("a"))

