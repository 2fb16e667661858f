"""Paths, transaction IDs and content URIs: the string work every request relies on."""

from __future__ import annotations

import re

import pytest

import bridgekit.matrix
from bridgekit.ids import ContentURI
from bridgekit.matrix.paths import CLIENT_V3, endpoint_template, localpart, path, split_content_uri, txn_id_for


@pytest.mark.parametrize(
    ("segment", "encoded"),
    [
        ("!room:hs.test", "%21room%3Ahs.test"),
        ("#chat:hs.test", "%23chat%3Ahs.test"),
        ("@_irc_a=2fb:hs.test", "%40_irc_a%3D2fb%3Ahs.test"),
        ("$ev/ent+id=", "%24ev%2Fent%2Bid%3D"),
        ("m.room.message", "m.room.message"),
        ("a b?c&d", "a%20b%3Fc%26d"),
        ("", ""),
        ("é", "%C3%A9"),
    ],
)
def test_each_segment_is_encoded_whole(segment: str, encoded: str) -> None:
    assert path(CLIENT_V3, "rooms", segment) == f"/_matrix/client/v3/rooms/{encoded}"


def test_the_same_key_always_gives_the_same_transaction_id() -> None:
    # Pinned: a bridge restarted on a new release must derive the IDs the old one did.
    assert txn_id_for("irc:libera:#chat:1700000000.123") == "bk1.MjG1Gn1Xg43bgZgkLX5JkMvO"
    assert txn_id_for("a") != txn_id_for("b")


@pytest.mark.parametrize("key", ["x", "ü/?#%", "k" * 10_000, ""])
def test_transaction_ids_are_short_and_safe_in_a_path(key: str) -> None:
    txn_id = txn_id_for(key)
    assert re.fullmatch(r"[A-Za-z0-9._-]{1,40}", txn_id)


def test_a_content_uri_splits_into_server_and_media_id() -> None:
    assert split_content_uri(ContentURI("mxc://hs.test:8448/AbC123")) == ("hs.test:8448", "AbC123")


@pytest.mark.parametrize(
    "uri", ["https://hs.test/x", "mxc://hs.test", "mxc:///id", "mxc://hs.test/a/b", "mxc:/x"],
)
def test_anything_else_is_not_a_content_uri(uri: str) -> None:
    with pytest.raises(ValueError, match="not a Matrix content URI"):
        split_content_uri(uri)


def test_localpart_of_a_user_id() -> None:
    assert localpart("@_irc_alice:hs.test:8448") == "_irc_alice"
    with pytest.raises(ValueError, match="not a Matrix user ID"):
        localpart("alice")


def test_the_public_api_is_what_all_says() -> None:
    exported = {name for name in dir(bridgekit.matrix) if not name.startswith("_")}
    modules = {"client", "content", "errormap", "intent", "memory", "paths", "retry"}
    assert exported - modules == set(bridgekit.matrix.__all__)


@pytest.mark.parametrize(
    ("segments", "template"),
    [
        (("rooms", "!r:hs.test", "send", "m.room.message", "bk1.AbC-_x"),
         "/_matrix/client/v3/rooms/{roomId}/send/{eventType}/{txnId}"),
        (("rooms", "!r:hs.test", "state", "m.room.member", "@u:hs.test"),
         "/_matrix/client/v3/rooms/{roomId}/state/{eventType}/{stateKey}"),
        (("rooms", "!r:hs.test", "state", "m.room.name", ""),
         "/_matrix/client/v3/rooms/{roomId}/state/{eventType}/{stateKey}"),
        (("rooms", "!r:hs.test", "redact", "$e", "t1"), "/_matrix/client/v3/rooms/{roomId}/redact/{eventId}/{txnId}"),
        (("join", "#chat:hs.test"), "/_matrix/client/v3/join/{roomIdOrAlias}"),
        (("profile", "@_irc_bob:hs.test", "displayname"), "/_matrix/client/v3/profile/{userId}/displayname"),
        (("register",), "/_matrix/client/v3/register"),
        (("createRoom",), "/_matrix/client/v3/createRoom"),
        (("rooms", "!r:hs.test", "read_markers"), "/_matrix/client/v3/rooms/{roomId}/read_markers"),
        (("unknownthing", "!r:hs.test", "Odd-Segment.1"), "/_matrix/client/v3/unknownthing/{roomId}/{param}"),
    ],
)
def test_an_endpoint_template_names_every_identifier(segments: tuple[str, ...], template: str) -> None:
    assert endpoint_template(path(CLIENT_V3, *segments)) == template
