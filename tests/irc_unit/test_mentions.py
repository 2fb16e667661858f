"""IRC nick mentions become Matrix pills and m.mentions, so Matrix users get notified."""

from __future__ import annotations

import pytest

from bridges.irc.mentions import find_mentions, irc_mentions, irc_message_to_matrix, pill_href

ALICE = "@alice:example.org"
BOB = "@bob:example.org"
KNOWN = {"alice[m]": ALICE, "bob": BOB, "{weird}|nick": "@weird:example.org"}


def rfc1459(text: str) -> str:
    return text.lower().translate(str.maketrans("[]\\~", "{}|^"))


def lookup(folded: str) -> str | None:
    return {rfc1459(nick): user for nick, user in KNOWN.items()}.get(folded)


def mentions(text: str) -> tuple[str, str | None, list[str]]:
    return irc_mentions(text, lookup, casefold=rfc1459)


def test_bob_on_irc_pings_alice_on_matrix() -> None:
    body, html, user_ids = mentions("alice[m]: lunch?")
    assert body == "alice[m]: lunch?"
    assert html == '<a href="https://matrix.to/#/@alice:example.org">alice[m]</a>: lunch?'
    assert user_ids == [ALICE]


def test_no_mention_means_no_html() -> None:
    assert mentions("nobody here <b>") == ("nobody here <b>", None, [])


@pytest.mark.parametrize("text", ["hi bob", "bob, hi", "bob: hi", "(bob)", "@bob thanks", "BOB!", "[bob]", "<bob> hi"])
def test_mention_positions(text: str) -> None:
    _, html, user_ids = mentions(text)
    assert user_ids == [BOB]
    assert html is not None
    assert html.count("<a ") == 1


def test_case_is_folded_by_the_irc_casemapping() -> None:
    _, html, user_ids = mentions("ALICE{M}: hey")
    assert user_ids == [ALICE]
    assert html == '<a href="https://matrix.to/#/@alice:example.org">ALICE{M}</a>: hey'


@pytest.mark.parametrize("text", ["bobby", "thebob", "bob_", "bob-x", "2bob", "bob@example.org", "https://x.org/bob"])
def test_only_whole_nicks_count(text: str) -> None:
    assert mentions(text) == (text, None, [])


def test_special_character_nicks() -> None:
    _, _, user_ids = mentions("ping {weird}|nick please")
    assert user_ids == ["@weird:example.org"]


def test_everyone_mentioned_once_in_order() -> None:
    _, html, user_ids = mentions("bob alice[m] bob")
    assert user_ids == [BOB, ALICE]
    assert html is not None
    assert html.count("<a ") == 3


def test_everything_else_is_escaped() -> None:
    _, html, _ = mentions('<script>"x"</script> & bob')
    assert html == (
        '&lt;script&gt;&quot;x&quot;&lt;/script&gt; &amp; <a href="https://matrix.to/#/@bob:example.org">bob</a>'
    )


def test_hostile_user_id_cannot_break_out_of_the_link() -> None:
    def evil(folded: str) -> str | None:
        return '@x"><script>:example.org' if folded == "bob" else None

    _, html, _ = irc_mentions("bob", evil, casefold=rfc1459)
    assert html is not None
    assert "<script" not in html
    assert '"><' not in html


def test_find_mentions_reports_spans() -> None:
    found = find_mentions("hey [bob] and alice[m]", lookup, casefold=rfc1459)
    assert [(m.start, m.end, m.nick, m.user_id) for m in found] == [(5, 8, "bob", BOB), (14, 22, "alice[m]", ALICE)]


def test_pill_href_percent_encodes_odd_characters() -> None:
    assert pill_href("@alice:example.org") == "https://matrix.to/#/@alice:example.org"
    assert pill_href("@a b#c:x") == "https://matrix.to/#/@a%20b%23c:x"


def test_formatting_and_mentions_together() -> None:
    body, html, user_ids = irc_message_to_matrix("\x02alice[m]\x02: \x0304red <alert>", lookup, casefold=rfc1459)
    assert body == "alice[m]: red <alert>"
    assert html == (
        '<a href="https://matrix.to/#/@alice:example.org"><b>alice[m]</b></a>: '
        '<font data-mx-color="#ff0000">red &lt;alert&gt;</font>'
    )
    assert user_ids == [ALICE]


def test_mention_split_by_formatting_codes_is_still_found() -> None:
    body, html, user_ids = irc_message_to_matrix("b\x02o\x02b: hi", lookup, casefold=rfc1459)
    assert body == "bob: hi"
    assert user_ids == [BOB]
    assert html == '<a href="https://matrix.to/#/@bob:example.org">b<b>o</b>b</a>: hi'


def test_plain_line_without_mentions_stays_plain() -> None:
    assert irc_message_to_matrix("just text", lookup, casefold=rfc1459) == ("just text", None, [])
