"""Connectors' signing keys (``ctx.signing_key``): derived from the credentials key, or made once
and kept in the database, one per connector and purpose."""

from __future__ import annotations

import asyncio

from bridgekit.core.signing_keys import STORED_KEYS_NAMESPACE, SigningKeys
from bridgekit.credentials import generate_key, key_bytes
from bridgekit.signing import derive_key
from bridgekit.store import Database, KeyValueStore


async def test_without_a_credentials_key_one_key_is_made_and_kept(database: Database) -> None:
    kv = KeyValueStore(database)
    first = await SigningKeys([], kv).signing_key("libera", "media-links")
    after_restart = await SigningKeys([], kv).signing_key("libera", "media-links")
    assert after_restart.current == first.current
    assert len(first.current) == 32
    other_purpose = await SigningKeys([], kv).signing_key("libera", "other")
    other_network = await SigningKeys([], kv).signing_key("oftc", "media-links")
    assert len({first.current, other_purpose.current, other_network.current}) == 3
    assert await kv.get("libera", "media-links") is None  # out of the connector's own ctx.kv
    assert await kv.get(STORED_KEYS_NAMESPACE, "libera:media-links") is not None


async def test_two_first_callers_get_one_key(database: Database) -> None:
    keys = SigningKeys([], KeyValueStore(database))
    both = await asyncio.gather(*(keys.signing_key("libera", "media-links") for _ in range(2)))
    assert both[0].current == both[1].current
    assert (await SigningKeys([], KeyValueStore(database)).signing_key("libera", "media-links")) == both[0]


async def test_with_a_credentials_key_the_key_is_derived_and_nothing_is_stored(database: Database) -> None:
    kv = KeyValueStore(database)
    current, previous = key_bytes(generate_key()), key_bytes(generate_key())
    key = await SigningKeys([current, previous], kv).signing_key("libera", "media-links")
    assert key.current == derive_key(current, connector="libera", purpose="media-links")
    assert key.previous == (derive_key(previous, connector="libera", purpose="media-links"),)
    assert key.current not in (current, previous)
    assert await kv.get(STORED_KEYS_NAMESPACE, "libera:media-links") is None
    # After a rotation, what the old key signed still verifies.
    before_rotation = await SigningKeys([previous], kv).signing_key("libera", "media-links")
    assert key.verify(b"a link", before_rotation.sign(b"a link", length=12))
