"""one_line: a reason (PART, KICK) that must stay one IRC parameter, whatever line breaks it holds."""

from __future__ import annotations

from bridges.irc.output_gate import one_line


def test_line_breaks_and_injections_become_one_line() -> None:
    assert one_line("bye\r\nQUIT :pwned\nJOIN #evil\r\n", 200) == "bye QUIT :pwned JOIN #evil"
    assert one_line("a\u2028b\u2029c\x85d\re\x00f", 200) == "a b c d ef"
    assert one_line("  \n\n ", 200) == ""


def test_formatting_codes_survive_and_bytes_are_capped() -> None:
    assert one_line("\x1ditalic\x1d and \x1funderline\x1f", 200) == "\x1ditalic\x1d and \x1funderline\x1f"
    cut = one_line("é" * 300, 201)
    assert cut == "é" * 100
    assert len(cut.encode()) <= 201
