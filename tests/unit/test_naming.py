"""Ghost user IDs: the IDs users see, that must map back and never change."""

from __future__ import annotations

import random
import re

import pytest

from bridgekit.errors import BridgekitError
from bridgekit.naming import (
    MAX_USER_ID_BYTES,
    IdentifierTooLong,
    escape_localpart,
    ghost_localpart,
    ghost_user_id,
    parse_ghost_user_id,
    unescape_localpart,
)

OUTPUT_ALPHABET = re.compile(r"[a-z0-9._=-]*")


# Golden vectors: homeservers keep these IDs forever, so any change here strands existing ghosts.
@pytest.mark.parametrize(
    ("text", "keep_case", "escaped"),
    [
        ("alice", False, "alice"),
        ("alice", True, "alice"),
        ("a.b-c9", False, "a.b-c9"),
        ("a_b", False, "a_b"),
        ("a_b", True, "a__b"),
        ("Alice", True, "_alice"),
        ("Alice", False, "=41lice"),
        ("a=b", False, "a=3db"),
        ("a=b", True, "a=3db"),
        ("a/b+c", False, "a=2fb=2bc"),
        ("tom{m}|away", False, "tom=7bm=7d=7caway"),
        ("[Bot]", True, "=5b_bot=5d"),
        ("é", False, "=c3=a9"),
        ("🎉", False, "=f0=9f=8e=89"),
        ("a b", False, "a=20b"),
        ("\x00", False, "=00"),
        ("", False, ""),
        ("__", True, "____"),
        ("_A", True, "___a"),
    ],
)
def test_escaping_matches_the_frozen_scheme(text: str, keep_case: bool, escaped: str) -> None:
    assert escape_localpart(text, keep_case=keep_case) == escaped
    assert unescape_localpart(escaped, keep_case=keep_case) == text


def test_alice_on_libera_gets_the_expected_ghost() -> None:
    nick = "alice"  # as the network folds "Alice"
    assert ghost_user_id("_irc_", "libera", nick, "example.org") == "@_irc_libera_alice:example.org"
    assert parse_ghost_user_id("@_irc_libera_alice:example.org", "_irc_", "libera", "example.org") == "alice"


def test_a_nick_with_brackets_pipe_and_emoji_round_trips() -> None:
    nick = "tom{m}|away🎉"  # "Tom[m]|Away🎉" as an rfc1459 network folds it
    user_id = ghost_user_id("_irc_", "libera", nick, "example.org")
    assert user_id == "@_irc_libera_tom=7bm=7d=7caway=f0=9f=8e=89:example.org"
    assert parse_ghost_user_id(user_id, "_irc_", "libera", "example.org") == nick


def test_equals_and_underscore_never_collide_with_escapes() -> None:
    # '=' is itself escaped, so a nick containing "=41" stays apart from the escape of "A".
    assert escape_localpart("=41") == "=3d41"
    assert escape_localpart("=41") != escape_localpart("A")
    assert unescape_localpart("=3d41") == "=41"
    # With case kept, '_' is doubled, so "_a" (underscore, a) stays apart from "A".
    assert escape_localpart("_a", keep_case=True) == "__a"
    assert escape_localpart("A", keep_case=True) == "_a"
    assert unescape_localpart("__a", keep_case=True) == "_a"
    assert unescape_localpart("_a", keep_case=True) == "A"


def test_keep_case_keeps_alice_and_alice_apart() -> None:
    upper = ghost_user_id("_wh_", "hooks", "Alice", "example.org", keep_case=True)
    lower = ghost_user_id("_wh_", "hooks", "alice", "example.org", keep_case=True)
    assert upper == "@_wh_hooks__alice:example.org"
    assert lower == "@_wh_hooks_alice:example.org"
    assert parse_ghost_user_id(upper, "_wh_", "hooks", "example.org", keep_case=True) == "Alice"
    assert parse_ghost_user_id(lower, "_wh_", "hooks", "example.org", keep_case=True) == "alice"


def test_unfolded_input_without_keep_case_is_escaped_not_merged() -> None:
    assert ghost_user_id("_irc_", "libera", "Alice", "example.org") == "@_irc_libera_=41lice:example.org"
    assert ghost_user_id("_irc_", "libera", "Alice", "example.org") != ghost_user_id(
        "_irc_", "libera", "alice", "example.org"
    )


def test_an_id_over_255_bytes_is_refused_with_its_length() -> None:
    server = "example.org"
    # '@_irc_libera_' (13) + ':example.org' (12) leaves 230 bytes for the escaped nick.
    fits = "a" * 230
    assert len(ghost_user_id("_irc_", "libera", fits, server)) == MAX_USER_ID_BYTES
    with pytest.raises(IdentifierTooLong, match=r"256 bytes.*limit of 255") as caught:
        ghost_user_id("_irc_", "libera", fits + "b", server)
    assert isinstance(caught.value, BridgekitError)
    assert (caught.value.length, caught.value.limit) == (256, 255)
    assert "server name 'example.org' 11 bytes" in str(caught.value)
    # Escaping counts: 80 emoji are 320 bytes of UTF-8 and 960 bytes once escaped.
    with pytest.raises(IdentifierTooLong, match=r"remote id of 320 bytes"):
        ghost_user_id("_irc_", "libera", "🎉" * 80, server)
    with pytest.raises(IdentifierTooLong, match="refused rather than truncated"):
        ghost_localpart("_irc_", "libera", "x" * 300)


@pytest.mark.parametrize(
    "user_id",
    [
        "@_irc_libera_alice:other.org",  # another server
        "@_irc_libera_alice:example.org:8448",  # same host, another port
        "@_xmpp_libera_alice:example.org",  # another prefix
        "@_irc_oftc_alice:example.org",  # another network
        "@_irc_libera-chat_alice:example.org",  # a network that merely starts the same
        "@_irc_libera_:example.org",  # no remote id
        "@_irc_libera_=4:example.org",  # truncated escape
        "@_irc_libera_=zz:example.org",  # not hex
        "@_irc_libera_=7C:example.org",  # upper-case hex is not canonical
        "@_irc_libera_=61lice:example.org",  # 'a' spelled as an escape
        "@_irc_libera_=c3:example.org",  # half a UTF-8 character
        "@_irc_libera_Alice:example.org",  # raw upper case
        "@_irc_libera_a/b:example.org",  # raw '/'
        "_irc_libera_alice:example.org",  # no sigil
        "@_irc_libera_alice",  # no server
        "",
    ],
)
def test_parse_refuses_what_the_scheme_could_not_have_made(user_id: str) -> None:
    assert parse_ghost_user_id(user_id, "_irc_", "libera", "example.org") is None


def test_parse_with_keep_case_refuses_non_canonical_case_escapes() -> None:
    for bad in ("@_wh_hooks_=41lice:example.org", "@_wh_hooks_=5f:example.org", "@_wh_hooks__:example.org",
                "@_wh_hooks__1:example.org"):
        assert parse_ghost_user_id(bad, "_wh_", "hooks", "example.org", keep_case=True) is None


@pytest.mark.parametrize(
    ("escaped", "keep_case", "message"),
    [
        ("ab=", False, "position 2: '=' must be followed by two lower-case hex digits"),
        ("=4g", False, "two lower-case hex digits, found '4g'"),
        ("=41", True, "'A' is written '_a', never '=41'"),
        ("=5f", False, "'_' is written '_', never '=5f'"),
        ("a_", True, "'_' must be followed by '_' or a lower-case letter"),
        ("A", False, "character 'A' at position 0"),
        ("=ff", False, "does not decode to valid UTF-8"),
    ],
)
def test_malformed_escapes_say_what_is_wrong(escaped: str, keep_case: bool, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        unescape_localpart(escaped, keep_case=keep_case)


@pytest.mark.parametrize("network", ["Libera", "libera_chat", "", "libera chat", "libéra", "libera\n"])
def test_invalid_network_names_are_refused(network: str) -> None:
    with pytest.raises(ValueError, match="network name"):
        ghost_user_id("_irc_", network, "alice", "example.org")


def test_invalid_prefix_server_and_empty_ids_are_refused() -> None:
    with pytest.raises(ValueError, match="ghost prefix"):
        ghost_user_id("_IRC_", "libera", "alice", "example.org")
    with pytest.raises(ValueError, match="server name"):
        ghost_user_id("_irc_", "libera", "alice", "example.org/x")
    with pytest.raises(ValueError, match="empty"):
        ghost_user_id("_irc_", "libera", "", "example.org")
    with pytest.raises(ValueError, match="lone surrogate"):
        escape_localpart("a\ud800")


def test_server_names_with_ports_and_ip_literals_work() -> None:
    for server in ("localhost:8448", "[::1]:8448", "127.0.0.1"):
        user_id = ghost_user_id("_irc_", "libera", "alice", server)
        assert user_id == f"@_irc_libera_alice:{server}"
        assert parse_ghost_user_id(user_id, "_irc_", "libera", server) == "alice"


# Characters chosen to hit every branch: plain, '_', '=', upper case, IRC specials, control
# characters, multi-byte UTF-8 (2, 3 and 4 bytes), and the characters the scheme singles out.
ALPHABET = "abcxyz019.-_=ABZ/+ []{}|\\^~#@:!\x00\x7f\téß€中🎉😀\u200b\ufeff"


def generated_strings(count: int) -> list[str]:
    rng = random.Random(20240611)
    strings = [rng.choice(ALPHABET)]
    while len(strings) < count:
        strings.append("".join(rng.choice(ALPHABET) for _ in range(rng.randint(1, 24))))
    return strings


GENERATED = generated_strings(400)


@pytest.mark.parametrize("keep_case", [False, True])
def test_every_generated_string_round_trips_through_a_valid_localpart(keep_case: bool) -> None:
    seen: dict[str, str] = {}
    for text in GENERATED:
        escaped = escape_localpart(text, keep_case=keep_case)
        assert OUTPUT_ALPHABET.fullmatch(escaped), (text, escaped)
        assert unescape_localpart(escaped, keep_case=keep_case) == text
        # Injective: two different remote ids never share a ghost.
        assert seen.setdefault(escaped, text) == text


@pytest.mark.parametrize("keep_case", [False, True])
def test_every_generated_ghost_parses_back(keep_case: bool) -> None:
    for text in GENERATED:
        user_id = ghost_user_id("_irc_", "libera", text, "example.org", keep_case=keep_case)
        assert parse_ghost_user_id(user_id, "_irc_", "libera", "example.org", keep_case=keep_case) == text
        assert parse_ghost_user_id(user_id, "_irc_", "oftc", "example.org", keep_case=keep_case) is None
