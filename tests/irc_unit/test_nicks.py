"""Nicks, idents and realnames for Matrix users: what IRC users see in the channel and in WHOIS."""

from __future__ import annotations

import random
import re

import pytest

from bridges.irc.nicks import (
    NICK_CHARS,
    NICK_FIRST_CHARS,
    collision_nick,
    ident_for,
    matrix_user_nick,
    realname_for,
    sanitize_nick_part,
    template_suffix,
)

VALID_NICK = re.compile(r"[A-Za-z\[\]\\`_^{|}][A-Za-z0-9\[\]\\`_^{|}-]*")
TEMPLATE = "{displayname}[m]"


def nick(displayname: str | None, user_id: str = "@alice:example.org", nicklen: int = 30) -> str:
    return matrix_user_nick(TEMPLATE, displayname=displayname, user_id=user_id, nicklen=nicklen)


def test_alice_gets_the_familiar_nick() -> None:
    assert nick("Alice") == "Alice[m]"


def test_character_sets_match_rfc_2812() -> None:
    assert "a" in NICK_FIRST_CHARS
    assert "|" in NICK_FIRST_CHARS
    assert "1" not in NICK_FIRST_CHARS
    assert "-" not in NICK_FIRST_CHARS
    assert {"1", "-"} <= NICK_CHARS
    assert not {" ", ":", "!", "@", "#", ",", "*", "."} & NICK_CHARS


@pytest.mark.parametrize(
    ("displayname", "expected"),
    [
        ("Alice Smith", "AliceSmith[m]"),
        ("José Ñúñez", "JoseNunez[m]"),
        ("Ｆｕｌｌｗｉｄｔｈ", "Fullwidth[m]"),
        ("2pac", "_2pac[m]"),
        ("-dash", "_-dash[m]"),
        ("a.b@c!d:e", "abcde[m]"),
        ("[bot] {x}|y^`\\", "[bot]{x}|y^`\\[m]"),
        ("bob 🎉", "bob[m]"),
    ],
)
def test_displaynames_are_reduced_to_nick_characters(displayname: str, expected: str) -> None:
    assert nick(displayname) == expected


@pytest.mark.parametrize("displayname", [None, "", "   ", "🎉🎉", "日本語", "!!!"])
def test_falls_back_to_the_localpart(displayname: str | None) -> None:
    assert nick(displayname, "@alice:example.org") == "alice[m]"


def test_falls_back_to_a_stable_hash_when_nothing_is_usable() -> None:
    first = nick("🎉", "@...:example.org")
    assert first == nick(None, "@...:example.org")
    assert VALID_NICK.fullmatch(first)
    assert first != nick("🎉", "@===:example.org")


def test_numeric_localpart_gets_a_valid_start() -> None:
    assert nick(None, "@12345:example.org") == "_12345[m]"


def test_localpart_template() -> None:
    assert matrix_user_nick("M-{localpart}", displayname="Ignored", user_id="@bob.smith:x.org", nicklen=30) == (
        "M-bobsmith"
    )


def test_name_is_truncated_so_suffix_and_reserve_fit() -> None:
    # NICKLEN 16: 16 - 3 reserved - 3 for "[m]" = 10 characters of name.
    assert nick("Bartholomew Featherstonehaugh", nicklen=16) == "Bartholome[m]"
    assert len(nick("x" * 100, nicklen=16)) == 13


def test_rfc_default_nicklen_nine() -> None:
    assert nick("Alexandra", nicklen=9) == "Ale[m]"


def test_tiny_nicklen_gives_up_reserve_then_suffix() -> None:
    assert nick("Alexandra", nicklen=5) == "Al[m]"
    assert nick("Alexandra", nicklen=2) == "Al"
    assert matrix_user_nick(TEMPLATE, displayname="Al", user_id="@a:x", nicklen=9, reserve=0) == "Al[m]"


def test_template_literals_are_sanitised_and_must_have_one_placeholder() -> None:
    assert matrix_user_nick("{displayname} (m)", displayname="Al", user_id="@a:x", nicklen=30) == "Alm"
    with pytest.raises(ValueError, match="exactly one"):
        matrix_user_nick("matrixuser", displayname="Al", user_id="@a:x", nicklen=30)
    with pytest.raises(ValueError, match="exactly one"):
        matrix_user_nick("{displayname}{localpart}", displayname="Al", user_id="@a:x", nicklen=30)


def test_template_cannot_make_a_nick_start_with_a_digit() -> None:
    assert matrix_user_nick("1{displayname}", displayname="Al", user_id="@a:x", nicklen=30) == "_1Al"


def test_template_suffix() -> None:
    assert template_suffix("{displayname}[m]") == "[m]"
    assert template_suffix("m-{localpart}") == ""


def test_hostile_displaynames_always_give_valid_nicks() -> None:
    rng = random.Random(2812)
    pool = "aZ09 -_[]{}|^`\\:!@#,*.\r\n\x00\x01\x02éß日😀\u200d\u0301\ud800"
    for _ in range(2000):
        displayname = "".join(rng.choice(pool) for _ in range(rng.randrange(0, 40)))
        nicklen = rng.choice([9, 16, 30, 50])
        result = nick(displayname, f"@{rng.choice(['u', '1', '_x', '='])}:x", nicklen)
        assert VALID_NICK.fullmatch(result), (displayname, result)
        assert len(result) <= nicklen


def test_sanitize_nick_part() -> None:
    assert sanitize_nick_part("  ") == ""
    assert sanitize_nick_part("9lives") == "_9lives"


# --- collisions ------------------------------------------------------------------------------


def test_collision_tag_goes_before_the_suffix() -> None:
    result = collision_nick("alice[m]", user_id="@alice:example.org", attempt=0, nicklen=30, keep_suffix="[m]")
    assert re.fullmatch(r"alice-[a-z2-7]{2}\[m\]", result)


def test_collision_nick_is_stable_across_reconnects() -> None:
    first = collision_nick("alice[m]", user_id="@alice:example.org", attempt=0, nicklen=30, keep_suffix="[m]")
    again = collision_nick("alice[m]", user_id="@alice:example.org", attempt=0, nicklen=30, keep_suffix="[m]")
    assert first == again


def test_attempts_never_repeat_and_are_not_counters() -> None:
    results = [
        collision_nick("alice[m]", user_id="@alice:example.org", attempt=n, nicklen=30, keep_suffix="[m]")
        for n in range(1024)
    ]
    assert len(set(results)) == 1024
    assert not any(re.search(r"\[m\]\d+$", result) for result in results)


def test_two_users_with_the_same_nick_get_different_fallbacks() -> None:
    tags = {collision_nick("alice[m]", user_id=f"@alice:server{n}.org", attempt=0, nicklen=30) for n in range(50)}
    assert len(tags) > 40


def test_collision_nick_fits_nicklen() -> None:
    # A nick made with the default reserve keeps its whole name.
    base = nick("Bartholomew", nicklen=16)
    result = collision_nick(base, user_id="@b:x", attempt=0, nicklen=16, keep_suffix="[m]")
    assert result.startswith("Bartholome-")
    assert result.endswith("[m]")
    assert len(result) == 16
    # Without reserve the name is shortened instead.
    result = collision_nick("Bartholomew1[m]", user_id="@b:x", attempt=0, nicklen=15, keep_suffix="[m]")
    assert len(result) == 15
    assert result.startswith("Bartholom-")


def test_collision_without_suffix_appends_the_tag() -> None:
    assert re.fullmatch(r"bob-[a-z2-7]{2}", collision_nick("bob", user_id="@bob:x", attempt=3, nicklen=9))


def test_collision_with_tiny_nicklen() -> None:
    result = collision_nick("alice[m]", user_id="@a:x", attempt=0, nicklen=5, keep_suffix="[m]")
    assert len(result) == 5
    assert result.startswith("al-")
    with pytest.raises(ValueError, match="NICKLEN"):
        collision_nick("alice", user_id="@a:x", attempt=0, nicklen=3)
    with pytest.raises(ValueError, match="negative"):
        collision_nick("alice", user_id="@a:x", attempt=-1, nicklen=30)


# --- idents and realnames --------------------------------------------------------------------


def test_ident_is_short_stable_and_readable() -> None:
    ident = ident_for("@alice:example.org")
    assert ident == ident_for("@alice:example.org")
    assert re.fullmatch(r"alice[a-z2-7]{5}", ident)


def test_same_localpart_on_other_servers_gets_another_ident() -> None:
    assert ident_for("@alice:example.org") != ident_for("@alice:example.com")


@pytest.mark.parametrize(
    "user_id",
    ["@_discord_123456789012345:x.org", "@123:x", "@=2e=2e:x", "@ÄÖÜ:x", "@:x", "@a b\r\n:x", "@\ud800:x", ""],
)
def test_ident_is_always_valid(user_id: str) -> None:
    ident = ident_for(user_id)
    assert re.fullmatch(r"[a-z][a-z0-9]{1,9}", ident), ident


def test_double_bridged_users_get_near_unique_idents() -> None:
    # No allocation, so nothing to run out of; the hash keeps look-alike users apart.
    idents = {ident_for(f"@_discord_{n}:example.org") for n in range(5000)}
    assert len(idents) >= 4995


def test_ident_maxlen() -> None:
    assert len(ident_for("@averyveryverylongname:x", maxlen=6)) == 6
    assert len(ident_for("@a:x", maxlen=2)) == 2
    with pytest.raises(ValueError, match="at least 2"):
        ident_for("@a:x", maxlen=1)


def test_realname_is_the_matrix_id() -> None:
    assert realname_for("@alice:example.org") == "@alice:example.org"


def test_realname_cannot_break_the_wire() -> None:
    assert realname_for("@evil\r\nQUIT:x\x00") == "@evil QUIT:x"
