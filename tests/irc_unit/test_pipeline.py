"""The user's story through the pure modules: what a message becomes on the other side."""

from __future__ import annotations

from bridges.irc.formatting import strip_formatting, style_after
from bridges.irc.formatting_from_matrix import matrix_to_irc
from bridges.irc.mentions import irc_message_to_matrix
from bridges.irc.nicks import ident_for, matrix_user_nick
from bridges.irc.output_gate import line_budget, plan


def test_alice_on_matrix_says_hi_and_bob_on_irc_sees_it() -> None:
    nick = matrix_user_nick("{displayname}[m]", displayname="Alice", user_id="@alice:example.org", nicklen=30)
    budget = line_budget(nick=nick, ident=ident_for("@alice:example.org"), host=None, target="#chat")
    html = "<b>hi</b> <a href='https://matrix.to/#/@bob:example.org'>Bob</a>!"
    text = matrix_to_irc(html, pill_to_nick=lambda _: "bob")
    assert nick == "Alice[m]"
    assert plan(text, budget, max_lines=3).lines == ["\x02hi\x02 bob!"]


def test_bob_on_irc_answers_and_alice_is_notified() -> None:
    nicks = {"alice[m]": "@alice:example.org"}
    body, html, mentioned = irc_message_to_matrix("alice[m]: \x02hello\x02", nicks.get, casefold=str.lower)
    assert body == "alice[m]: hello"
    assert html == '<a href="https://matrix.to/#/@alice:example.org">alice[m]</a>: <b>hello</b>'
    assert mentioned == ["@alice:example.org"]


def test_a_long_bold_paragraph_stays_bold_on_every_irc_line() -> None:
    text = matrix_to_irc("<p><b>" + "important words " * 60 + "</b></p>", pill_to_nick=lambda _: None)
    budget = line_budget(nick="alice[m]", ident="alice", host="example.org", target="#chat")
    lines = plan(text, budget, max_lines=5).lines
    assert len(lines) == 3
    assert all(style_after(line[:1]).bold for line in lines)
    assert strip_formatting(" ".join(lines)).split() == ["important", "words"] * 60


def test_a_paste_of_many_lines_becomes_an_excerpt_and_a_link() -> None:
    paste = "\n".join(f"line {n}" for n in range(20))
    text = matrix_to_irc(f"<pre><code>{paste}</code></pre>", pill_to_nick=lambda _: None)
    planned = plan(text, 400, max_lines=3)
    assert planned.truncated
    assert planned.lines == ["line 0"]


def test_a_matrix_message_cannot_inject_irc_commands() -> None:
    text = matrix_to_irc("hi&#13;&#10;QUIT :owned<br>\x00JOIN #x", pill_to_nick=lambda _: None)
    lines = plan(text, 400, max_lines=5).lines
    assert lines == ["hi QUIT :owned", "JOIN #x"]
    assert all("\r" not in line and "\n" not in line and "\0" not in line for line in lines)
