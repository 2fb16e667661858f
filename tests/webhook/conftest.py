"""Fixtures of the webhook end-to-end tests: one bridge for the module, its receivers, a user.

Starting a bridge costs seconds, so the end-to-end module shares one: each test makes its own
hooks and rooms, so they do not see each other's messages.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from bridgekit.core.connector_tables import migrate_connector_tables
from bridgekit.demo.matrix_client import MatrixTestClient
from bridgekit.store import Database
from bridgekit.testing.bridge_process import BridgeProcess
from bridgekit.testing.synapse import AppserviceSlot
from bridgekit.testing.synapse_harness import SynapseHarness
from bridges.webhook.connector import WebhookConnector
from bridges.webhook.settings import WebhookSettings
from bridges.webhook.store import WebhookStore
from tests.support.contexts import hand_built_context
from tests.webhook.receiver import Receiver

FACTORY = "bridges.webhook.connector:WebhookConnector"
REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class CreatedHook:
    id: str
    url: str
    secret: str | None


@dataclass
class WebhookWorld:
    """The running bridge, its slot, the receivers it may reach, and alice with her DM.

    Everyone on the homeserver has the bridge's ``user`` level; what they may do with a room's
    hooks depends on their power in that room (alice makes her rooms, so she is their admin)."""

    slot: AppserviceSlot
    bridge: BridgeProcess
    alice: MatrixTestClient
    dm: str
    receiver: Receiver
    rejecting: Receiver
    avatars: Receiver
    synapse: SynapseHarness
    dms: dict[str, str] = field(default_factory=dict)

    def ghost_prefix(self) -> str:
        return f"@{self.slot.ghost_prefix}{self.slot.connector}_"

    async def room(self, name: str) -> str:
        room_id = await self.alice.create_room(name=name, invite=[self.slot.bot_user_id])
        await self.alice.wait_for_membership(room_id, self.slot.bot_user_id)
        return room_id

    async def user(self, name: str) -> MatrixTestClient:
        """Another user of the homeserver (bridge level ``user``), with a direct chat with the bot."""
        client = await self.synapse.create_user(f"{name}_{secrets.token_hex(4)}")
        self.dms[client.user_id] = await client.create_room(is_direct=True, invite=[self.slot.bot_user_id])
        await client.wait_for_membership(self.dms[client.user_id], self.slot.bot_user_id)
        return client

    async def join(self, room_id: str, member: MatrixTestClient, *, power: int | None = None) -> None:
        """``member`` joins alice's room, with ``power`` set by alice when given."""
        await self.alice.invite(room_id, member.user_id)
        await member.join(room_id)
        if power is not None:
            levels = await self.alice.get_state(room_id, "m.room.power_levels")
            levels["users"][member.user_id] = power
            await self.alice.send_state(room_id, "m.room.power_levels", levels)

    def _dm(self, user: MatrixTestClient) -> str:
        return self.dm if user is self.alice else self.dms[user.user_id]

    async def command(self, room_id: str, text: str, expect: str, *, user: MatrixTestClient | None = None) -> str:
        """Send ``!bk webhook <text>`` (as alice, or ``user``) and return the bot's answer, which
        must contain ``expect``."""
        sender = user or self.alice
        earlier = {e["event_id"] for e in sender.events(room_id)}
        await sender.send_text(room_id, f"!bk webhook {text}")
        bot = self.slot.bot_user_id
        reply = await sender.wait_for_event(
            room_id,
            lambda e: e["event_id"] not in earlier and e.get("sender") == bot and e["type"] == "m.room.message"
            and expect in e["content"].get("body", ""),
        )
        return str(reply["content"]["body"])

    async def private_credentials(self, user: MatrixTestClient, hook_id: str, after: set[str]) -> CreatedHook:
        """The URL (and secret) of ``hook_id`` the bot sent ``user`` privately, newer than ``after``."""
        bot = self.slot.bot_user_id
        private = await user.wait_for_event(
            self._dm(user), lambda e: e["event_id"] not in after and e.get("sender") == bot
            and f"({hook_id})" in e["content"].get("body", ""),
        )
        body = private["content"]["body"]
        url = re.search(r"URL[^:]*: (\S+)", body).group(1)  # type: ignore[union-attr]
        secret = re.search(r"shown only this once\): (\S+)", body)
        return CreatedHook(hook_id, url, secret.group(1) if secret else None)

    async def create_hook(
        self, room_id: str, name: str, *options: str, user: MatrixTestClient | None = None,
    ) -> CreatedHook:
        """Create a hook by command and read its URL (and secret) from the creator's private chat."""
        sender = user or self.alice
        await sender.sync_once()
        earlier = {e["event_id"] for e in sender.events(self._dm(sender))}
        answer = await self.command(room_id, f"create {name} {' '.join(options)}".strip(), f"Created webhook '{name}'",
                                    user=sender)
        hook_id = re.search(r"\(([0-9a-f]{16}),", answer).group(1)  # type: ignore[union-attr]
        return await self.private_credentials(sender, hook_id, earlier)


@pytest.fixture(scope="module")
async def webhook_world(
    synapse: SynapseHarness, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[WebhookWorld]:
    slot = synapse.slot("main")
    tmp: Path = tmp_path_factory.mktemp("webhook")
    receiver, rejecting, avatars = Receiver(), Receiver(status=400), Receiver()
    for server in (receiver, rejecting, avatars):
        await server.start()
    settings: dict[str, Any] = {
        "factory": FACTORY,
        "public_url": slot.bridge_url,
        "database": f"sqlite+aiosqlite:///{tmp / 'webhook.db'}",
        "secrets_key": Fernet.generate_key().decode(),
        "rate_per_second": 1.0,
        "rate_burst": 10,
        "outbound_allow": [f"127.0.0.1:{server.port}" for server in (receiver, rejecting, avatars)],
        "outbound_retry_base_seconds": 0.5,
        "outbound_retry_cap_seconds": 2.0,
        "outbound_max_attempts": 60,
    }
    config = slot.write_bridge_config(
        tmp / "bridge.yaml", f"sqlite+aiosqlite:///{tmp / 'bridge.db'}",
        connectors={slot.connector: settings}, permissions={synapse.server_name: "user"},
    )
    bridge = BridgeProcess(config, env={"PYTHONPATH": str(REPO_ROOT)})
    await bridge.start_ready()
    alice = await synapse.create_user(f"alice_{secrets.token_hex(4)}")
    try:
        dm = await alice.create_room(is_direct=True, invite=[slot.bot_user_id])
        await alice.wait_for_membership(dm, slot.bot_user_id)
        yield WebhookWorld(slot, bridge, alice, dm, receiver, rejecting, avatars, synapse)
    finally:
        await alice.aclose()
        await bridge.stop()
        for server in (receiver, rejecting, avatars):
            await server.stop()


@pytest.fixture
async def webhook_store(tmp_path: Path) -> AsyncIterator[WebhookStore]:
    """The webhook's tables in a bridge database of their own, migrated as at a bridge's start."""
    database = await Database.open(f"sqlite+aiosqlite:///{tmp_path / 'bridge.db'}")
    try:
        await migrate_connector_tables(database, [WebhookConnector(hand_built_context("webhook", WebhookSettings()))])
        yield WebhookStore(database)
    finally:
        await database.close()
