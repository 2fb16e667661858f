"""The output gate: nothing reaches the IRC wire that could end a command, and every line fits."""

from __future__ import annotations

import random
import time
import unicodedata

import pytest

from bridges.irc.formatting import strip_formatting, style_after
from bridges.irc.output_gate import (
    DEFAULT_HOST_ALLOWANCE,
    SUFFIX_ALLOWANCE,
    UNKNOWN_HOST,
    Plan,
    line_budget,
    plan,
    sanitize,
    split_lines,
)


def size(text: str) -> int:
    return len(text.encode("utf-8"))


def words(lines: list[str]) -> list[str]:
    return strip_formatting(" ".join(lines)).split()


# --- sanitize --------------------------------------------------------------------------------


def test_crlf_is_a_line_break_and_a_lone_cr_a_space() -> None:
    # A lone CR is how injections start (text\rQUIT): it must not even split the message.
    assert sanitize("a\r\nb\rc\nd") == "a\nb c\nd"


def test_nul_ctcp_and_other_controls_are_removed() -> None:
    assert sanitize("a\x00b\x01ACTION x\x01\x07\x1b[31m\x7f\x9b") == "abACTION x[31m"


def test_tabs_become_spaces() -> None:
    assert sanitize("a\tb\x0bc\x0cd") == "a b c d"


def test_formatting_codes_survive() -> None:
    codes = "\x02\x03\x04\x0f\x11\x16\x1d\x1e\x1f"
    assert sanitize(codes) == codes


def test_unicode_line_separators_become_line_breaks() -> None:
    assert sanitize("a\u2028b\u2029c\x85d") == "a\nb\nc\nd"


def test_lone_surrogates_become_replacement_characters() -> None:
    cleaned = sanitize("bad \ud800 pair")
    assert cleaned == "bad \ufffd pair"
    assert size(cleaned)  # encodable


def test_no_control_character_gets_through() -> None:
    allowed = set("\n\x02\x03\x04\x0f\x11\x16\x1d\x1e\x1f")
    cleaned = sanitize("".join(chr(code) for code in range(0x100)))
    assert not {c for c in cleaned if unicodedata.category(c) == "Cc"} - allowed


# --- line_budget -----------------------------------------------------------------------------


def test_budget_makes_the_line_other_clients_receive_exactly_512_bytes() -> None:
    budget = line_budget(nick="alice[m]", ident="~alice1234", host="user/alice", target="#chan")
    received = f":alice[m]!~alice1234@user/alice PRIVMSG #chan :{'x' * budget}\r\n"
    assert size(received) == 512


def test_budget_counts_the_tilde_servers_may_add() -> None:
    assert line_budget(nick="n", ident="id", host="h", target="#c") == line_budget(
        nick="n", ident="~id", host="h", target="#c"
    )


def test_action_costs_nine_bytes() -> None:
    plain = line_budget(nick="n", ident="i", host="h", target="#c")
    assert line_budget(nick="n", ident="i", host="h", target="#c", action=True) == plain - 9
    received = f":n!~i@h PRIVMSG #c :\x01ACTION {'x' * (plain - 9)}\x01\r\n"
    assert size(received) == 512


def test_notice_is_shorter_than_privmsg() -> None:
    privmsg = line_budget(nick="n", ident="i", host="h", target="#c")
    assert line_budget(nick="n", ident="i", host="h", target="#c", command="NOTICE") == privmsg + 1


def test_unknown_host_assumes_the_longest() -> None:
    assert len(UNKNOWN_HOST) == DEFAULT_HOST_ALLOWANCE == 63
    assert line_budget(nick="n", ident="i", host=None, target="#c") == line_budget(
        nick="n", ident="i", host=UNKNOWN_HOST, target="#c"
    )


def test_budget_counts_bytes_not_characters() -> None:
    ascii_target = line_budget(nick="n", ident="i", host="h", target="#cafe")
    assert line_budget(nick="n", ident="i", host="h", target="#café") == ascii_target - 1


def test_absurd_prefix_is_refused() -> None:
    with pytest.raises(ValueError, match="no room"):
        line_budget(nick="n" * 300, ident="i", host="h" * 200, target="#c")


# --- split_lines -----------------------------------------------------------------------------


def test_short_text_is_one_line() -> None:
    assert split_lines("hello world", 100) == ["hello world"]


def test_newlines_start_new_lines_and_blank_lines_go() -> None:
    assert split_lines("one\n\n  \ntwo\r\nthree\n\x02\x02\n", 100) == ["one", "two", "three"]


def test_long_line_splits_at_the_last_space_that_fits() -> None:
    assert split_lines("aaa bbb ccc ddd", 8) == ["aaa bbb", "ccc ddd"]
    assert split_lines("aaa bbb ccc ddd", 7) == ["aaa bbb", "ccc ddd"]
    assert split_lines("aaa bbb ccc ddd", 6) == ["aaa", "bbb", "ccc", "ddd"]


def test_word_longer_than_a_line_is_cut_between_characters() -> None:
    assert split_lines("x " + "a" * 10, 4) == ["x", "aaaa", "aaaa", "aa"]


def test_multibyte_characters_are_never_cut() -> None:
    lines = split_lines("é" * 10, 5)  # two bytes each
    assert lines == ["éé"] * 5
    for line in lines:
        line.encode("utf-8").decode("utf-8")


def test_combining_marks_and_emoji_sequences_stay_whole() -> None:
    family = "👩\u200d👩\u200d👧"  # 18 bytes, one character to the eye
    accented = "e\u0301"
    flag = "🇫🇷"
    thumbs = "👍🏽"
    for glyph in (family, accented, flag, thumbs):
        text = glyph * 7
        for budget in range(max(4, size(glyph)), size(glyph) * 3 + 2):
            for line in split_lines(text, budget):
                assert line == glyph * (len(line) // len(glyph)), (glyph, budget, line)


def test_zalgo_bigger_than_a_line_is_still_cut() -> None:
    zalgo = "a" + "\u0301" * 400
    lines = split_lines(zalgo, 100)
    assert all(size(line) <= 100 for line in lines)
    assert "".join(lines) == zalgo


def test_formatting_codes_are_never_cut() -> None:
    for budget in range(6, 20):
        for line in split_lines("\x0304,12" + "word " * 20, budget):
            assert not line.endswith(("\x03", "\x030", "\x0304,", "\x0304,1"))


def test_formatting_is_reapplied_after_a_cut() -> None:
    lines = split_lines("\x02bold \x0304red words here", 10)
    assert lines[0] == "\x02bold"
    assert all(style_after(line).bold for line in lines)
    assert style_after(lines[-1]).fg == 4
    assert words(lines) == ["bold", "red", "words", "here"]


def test_reset_is_not_reapplied() -> None:
    lines = split_lines("\x02a\x0f bbbb", 4)
    assert lines == ["\x02a\x0f", "bbbb"]


def test_crlf_injection_becomes_separate_lines() -> None:
    assert split_lines("hi\r\nQUIT :bye\x00", 100) == ["hi", "QUIT :bye"]


def test_tiny_budget_is_refused() -> None:
    with pytest.raises(ValueError, match="at least"):
        split_lines("x", 3)


ALPHABETS = [
    "abcdefghij",
    "ÄÖÜßéèçñ",
    "日本語中文한국어",
    "😀🎉👍🏽👩\u200d💻🇫🇷",
    "e\u0301a\u0308",
]


def random_text(rng: random.Random) -> str:
    alphabet = "".join(rng.sample(ALPHABETS, rng.randrange(1, len(ALPHABETS) + 1)))
    pieces: list[str] = []
    for _ in range(rng.randrange(0, 80)):
        pieces.append("".join(rng.choice(alphabet) for _ in range(rng.choice([1, 2, 5, 12, 40]))))
        pieces.append(rng.choice([" ", " ", " ", "  ", "\n", " \x02", "\x1d "]))
    return "".join(pieces)


def test_property_no_line_too_long_and_no_words_lost_or_reordered() -> None:
    rng = random.Random(512)
    for _ in range(600):
        text = random_text(rng)
        budget = rng.choice([16, 23, 40, 64, 100, 300, 450])
        lines = split_lines(text, budget)
        assert all(0 < size(line) <= budget for line in lines)
        assert all("\n" not in line and "\r" not in line for line in lines)
        assert all(strip_formatting(line).strip() for line in lines)
        joined = "".join(strip_formatting(" ".join(lines)).split())
        assert joined == "".join(strip_formatting(text).split())
        longest_word = max((size(word) for word in text.split()), default=0)
        if longest_word + 2 <= budget // 2:  # no word needed cutting, even after re-applied codes
            assert words(lines) == strip_formatting(text).split()


def test_property_every_line_decodes() -> None:
    rng = random.Random(7)
    for _ in range(300):
        text = random_text(rng)
        for line in split_lines(text, rng.randrange(4, 60)):
            assert line.encode("utf-8").decode("utf-8") == line


# --- plan ------------------------------------------------------------------------------------


def test_plan_sends_short_messages_as_lines() -> None:
    assert plan("one\ntwo\nthree", 100, 3) == Plan(["one", "two", "three"], truncated=False)


def test_plan_truncates_to_an_excerpt_with_room_for_the_link() -> None:
    text = "first line " + "word " * 50 + "\n" + "\n".join(f"line {n}" for n in range(10))
    result = plan(text, 200, 3)
    assert result.truncated
    assert len(result.lines) == 1
    assert result.lines[0].startswith("first line word")
    assert size(result.lines[0]) <= 200 - SUFFIX_ALLOWANCE
    suffix = " … (full message: https://example.org/_matrix/media/v3/download/x/abcdef)"
    assert size(result.lines[0] + suffix) <= 200


def test_plan_counts_split_lines_not_newlines() -> None:
    assert plan("word " * 100, 100, 3).truncated
    assert not plan("word " * 10, 100, 3).truncated


def test_plan_closes_formatting_before_the_suffix() -> None:
    result = plan("\x02" + "bold " * 100, 150, 2)
    assert result.truncated
    assert result.lines[0].endswith("\x0f")
    assert size(result.lines[0]) <= 150 - SUFFIX_ALLOWANCE


def test_plan_custom_suffix_allowance() -> None:
    result = plan("x " * 300, 300, 1, suffix_allowance=200)
    assert size(result.lines[0]) <= 100


def test_plan_of_nothing_is_nothing() -> None:
    assert plan(" \n\x00\n", 100, 3) == Plan([], truncated=False)


def test_plan_refuses_zero_lines() -> None:
    with pytest.raises(ValueError, match="max_lines"):
        plan("x", 100, 0)


def test_huge_hostile_input_is_handled_quickly() -> None:
    # A Matrix event may hold 64 KiB; splitting must stay linear, even for one endless "character".
    started = time.perf_counter()
    assert len(split_lines("word " * 50_000, 400)) > 500
    assert len(split_lines("a" + "\u0301" * 100_000, 400)) > 400
    assert len(split_lines("\x02x" * 100_000, 400)) > 400
    assert time.perf_counter() - started < 10
