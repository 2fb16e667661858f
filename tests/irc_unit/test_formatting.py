"""IRC formatting codes <-> Matrix HTML: what each side sees when the other styles text."""

from __future__ import annotations

import random
import re
import time
from html.parser import HTMLParser

import pytest

from bridges.irc.formatting import (
    PALETTE,
    LinkSpan,
    Style,
    nearest_colour,
    strip_formatting,
    style_after,
    style_codes,
)
from bridges.irc.formatting_from_matrix import matrix_to_irc, strip_reply_fallback
from bridges.irc.formatting_to_matrix import irc_to_matrix


def no_pills(user_id: str) -> str | None:
    return None


def to_irc(html: str) -> str:
    return matrix_to_irc(html, pill_to_nick=no_pills)


class _TreeChecker(HTMLParser):
    """Fails on any tag that is closed out of order or left open: Matrix clients need real nesting."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack.append(tag)
        self.tags.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.stack, f"</{tag}> closes nothing"
        assert self.stack[-1] == tag, f"</{tag}> closes {self.stack}"
        self.stack.pop()


def assert_well_nested(html: str) -> list[str]:
    checker = _TreeChecker()
    checker.feed(html)
    checker.close()
    assert checker.stack == []
    return checker.tags


# --- IRC -> Matrix ---------------------------------------------------------------------------


def test_plain_irc_line_has_no_html() -> None:
    assert irc_to_matrix("just words, <b> and & too") == ("just words, <b> and & too", None)


@pytest.mark.parametrize(
    ("irc", "html"),
    [
        ("\x02bold\x02 text", "<b>bold</b> text"),
        ("\x1ditalic", "<i>italic</i>"),
        ("\x1funder\x1f", "<u>under</u>"),
        ("\x1egone\x1e", "<del>gone</del>"),
        ("\x11mono\x11", "<code>mono</code>"),
        ("\x02\x1dboth\x0f plain", "<b><i>both</i></b> plain"),
    ],
)
def test_toggles_become_tags(irc: str, html: str) -> None:
    body, formatted = irc_to_matrix(irc)
    assert formatted == html
    assert body == strip_formatting(irc)


def test_overlapping_toggles_are_nested_properly() -> None:
    # IRC: bold on, italic on, bold off, italic off: the tags must still nest.
    body, formatted = irc_to_matrix("\x02a \x1db\x02 c\x1d d")
    assert body == "a b c d"
    assert formatted == "<b>a <i>b</i></b><i> c</i> d"
    assert_well_nested(formatted)


def test_colours_use_the_official_palette() -> None:
    _, formatted = irc_to_matrix("\x0304red\x03 and \x0312,01blue on black\x03")
    assert formatted == (
        '<font data-mx-color="#ff0000">red</font> and '
        '<font data-mx-color="#0000fc" data-mx-bg-color="#000000">blue on black</font>'
    )


def test_extended_palette_colours() -> None:
    assert len(PALETTE) == 99
    _, formatted = irc_to_matrix("\x0352x\x0398y\x0388z")
    assert formatted == (
        '<font data-mx-color="#ff0000">x</font><font data-mx-color="#ffffff">y</font>'
        '<font data-mx-color="#000000">z</font>'
    )


def test_foreground_change_keeps_background() -> None:
    _, formatted = irc_to_matrix("\x0301,08a\x0304b")
    assert formatted == (
        '<font data-mx-color="#000000" data-mx-bg-color="#ffff00">a</font>'
        '<font data-mx-color="#ff0000" data-mx-bg-color="#ffff00">b</font>'
    )


def test_colour_99_is_default() -> None:
    assert irc_to_matrix("\x0399plain") == ("plain", None)
    _, formatted = irc_to_matrix("\x0399,04on red")
    assert formatted == '<font data-mx-bg-color="#ff0000">on red</font>'


def test_colour_takes_at_most_two_digits_and_a_lone_comma_is_text() -> None:
    body, formatted = irc_to_matrix("\x031234 apples\x03, pears \x034,x")
    assert body == "34 apples, pears ,x"
    assert formatted == '<font data-mx-color="#0000fc">34 apples</font>, pears <font data-mx-color="#ff0000">,x</font>'


def test_hex_colours() -> None:
    _, formatted = irc_to_matrix("\x04FF8800orange\x04 \x04112233,AABBCCboth\x04")
    assert formatted == (
        '<font data-mx-color="#ff8800">orange</font> '
        '<font data-mx-color="#112233" data-mx-bg-color="#aabbcc">both</font>'
    )


def test_reverse_is_dropped_silently() -> None:
    assert irc_to_matrix("\x16reversed\x16 text") == ("reversed text", None)


def test_empty_styles_produce_no_tags() -> None:
    assert irc_to_matrix("\x02\x02\x1d\x1d\x0304\x03hi") == ("hi", None)


def test_script_from_irc_arrives_as_text() -> None:
    body, formatted = irc_to_matrix('\x02<script>alert("x")</script>\x02 <img src=x onerror=alert(1)>')
    assert body == '<script>alert("x")</script> <img src=x onerror=alert(1)>'
    assert formatted is not None
    assert "<script" not in formatted
    assert "<img" not in formatted
    assert "&lt;script&gt;" in formatted
    assert assert_well_nested(formatted) == ["b"]


def test_urls_stay_text() -> None:
    body, formatted = irc_to_matrix("\x02see\x02 https://example.org/?a=1&b=2")
    assert body == "see https://example.org/?a=1&b=2"
    assert formatted == "<b>see</b> https://example.org/?a=1&amp;b=2"


def test_links_nest_with_formatting() -> None:
    text = "\x02hi alice\x02, welcome"
    _, formatted = irc_to_matrix(text, links=[LinkSpan(3, 8, "https://matrix.to/#/@alice:x.org")])
    assert formatted == '<b>hi <a href="https://matrix.to/#/@alice:x.org">alice</a></b>, welcome'
    assert_well_nested(formatted)


def test_link_spanning_a_style_change_stays_one_nesting() -> None:
    _, formatted = irc_to_matrix("al\x02ice\x02 x", links=[LinkSpan(0, 5, "h")])
    assert formatted == '<a href="h">al<b>ice</b></a> x'


def test_link_href_is_escaped() -> None:
    _, formatted = irc_to_matrix("x", links=[LinkSpan(0, 1, '"><script>')])
    assert formatted == '<a href="&quot;&gt;&lt;script&gt;">x</a>'


def test_random_code_soup_always_nests_and_strips() -> None:
    rng = random.Random(1459)
    alphabet = ["\x02", "\x03", "\x0304", "\x0312,05", "\x04", "\x04ABCDEF", "\x0f", "\x11", "\x16", "\x1d",
                "\x1e", "\x1f", "a", " ", "<", "&", "9", ","]  # fmt: skip
    for _ in range(500):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(40)))
        body, formatted = irc_to_matrix(text)
        assert not set(body) & set("\x02\x03\x04\x0f\x11\x16\x1d\x1e\x1f")
        if formatted is not None:
            assert_well_nested(formatted)
            assert "<" not in re.sub(r"</?(b|i|u|del|code|font[^>]*)>", "", formatted)


# --- Matrix -> IRC ---------------------------------------------------------------------------


def test_inline_styles_become_codes() -> None:
    assert to_irc("<b>b</b> <strong>s</strong> <i>i</i> <em>e</em> <u>u</u> <s>s</s> <del>d</del> <code>c</code>") == (
        "\x02b\x02 \x02s\x02 \x1di\x1d \x1de\x1d \x1fu\x1f \x1es\x1e \x1ed\x1e \x11c\x0f"
    )


def test_nested_styles_are_turned_off_exactly_where_they_end() -> None:
    assert to_irc("<b>bold <i>both</i></b> none") == "\x02bold \x1dboth\x02\x1d none"


def test_colours_go_to_the_nearest_classic_colour() -> None:
    assert to_irc('<font data-mx-color="#fe0101">red</font> x') == "\x0304red\x03 x"
    assert to_irc('<span data-mx-color="#0000FF" data-mx-bg-color="#ffff00">y</span>') == "\x0312,08y\x0f"
    assert to_irc('<font color="#00ff00">legacy</font>') == "\x0309legacy\x0f"


def test_colour_code_is_never_glued_to_following_digits() -> None:
    # A naive "\x03" before "5 apples" would make IRC read colour 5 and eat the digit.
    assert to_irc('<font data-mx-color="#ff0000">x</font>5 apples') == "\x0304x\x0399,995 apples"
    assert to_irc('<font data-mx-color="#ff0000">,5</font>') == "\x0304,99,5\x0f"
    assert strip_formatting(to_irc('<font data-mx-color="#ff0000">1</font>2')) == "12"


def test_nested_colours_restore_the_outer_one() -> None:
    irc = to_irc('<font data-mx-color="#ff0000">r<font data-mx-color="#0000fc">b</font>r</font>')
    assert irc == "\x0304r\x0312b\x0304r\x0f"


def test_invalid_colours_are_ignored() -> None:
    assert to_irc('<font data-mx-color="red; x: expression()">t</font>') == "t"


def test_spoiler_is_black_on_black() -> None:
    assert to_irc("<span data-mx-spoiler>secret</span> ok") == "\x0301,01secret\x03 ok"


def test_links_show_label_and_url() -> None:
    assert to_irc('<a href="https://example.org/x">the docs</a>') == "the docs (https://example.org/x)"
    assert to_irc('<a href="https://example.org/x">https://example.org/x</a>') == "https://example.org/x"
    assert to_irc('<a href="https://example.org/">example.org</a>') == "example.org"
    assert to_irc('<a href="mailto:a@b.org">a@b.org</a>') == "a@b.org"
    assert to_irc('<a href="https://example.org/"></a>') == "https://example.org/"


def test_deceptive_link_label_still_shows_the_real_url() -> None:
    assert to_irc('<a href="https://evil.example">https://bank.example</a>') == (
        "https://bank.example (https://evil.example)"
    )


def test_pills_become_nicks() -> None:
    def nick(user_id: str) -> str | None:
        return {"@alice:example.org": "alice[m]"}.get(user_id)

    html = '<a href="https://matrix.to/#/@alice:example.org">Alice 🐇</a>: hi <a href="https://matrix.to/#/%40bob%3Aexample.org">Bob</a>'
    assert matrix_to_irc(html, pill_to_nick=nick) == "alice[m]: hi Bob"


def test_pill_with_formatted_label_is_replaced_cleanly() -> None:
    html = '<b>to <a href="matrix:u/alice:example.org"><i>Alice</i></a></b> ok'
    assert matrix_to_irc(html, pill_to_nick=lambda _: "alice") == "\x02to alice\x02 ok"


def test_reply_fallback_is_removed() -> None:
    html = (
        '<mx-reply><blockquote><a href="https://matrix.to/#/!r:x/$e">In reply to</a> '
        '<a href="https://matrix.to/#/@bob:x">@bob:x</a><br>original</blockquote></mx-reply>my answer'
    )
    assert to_irc(html) == "my answer"


def test_blocks_become_lines() -> None:
    html = "<h1>Title</h1><p>one</p><p>two<br>three</p><div>four</div>\n<ul>\n<li>a</li>\n<li>b</li>\n</ul>"
    assert to_irc(html) == "\x02Title\none\ntwo\nthree\nfour\n• a\n• b"


def test_ordered_and_nested_lists() -> None:
    html = '<ol start="3"><li>x<ul><li>inner</li></ul></li><li>y</li></ol>'
    assert to_irc(html) == "3. x\n  • inner\n4. y"


def test_blockquote_lines_are_prefixed() -> None:
    assert to_irc("<blockquote><p>a</p><p>b<br>c</p></blockquote>after") == "> a\n> b\n> c\nafter"


def test_pre_keeps_lines_and_indentation() -> None:
    html = '<pre><code class="language-py">def f():\n    return 1 &lt; 2\n</code></pre>done'
    assert to_irc(html) == "def f():\n    return 1 < 2\ndone"


def test_whitespace_collapses_outside_pre() -> None:
    assert to_irc("<p>  lots   of\n\n   space  </p>") == "lots of space"


def test_images_use_alt_text() -> None:
    assert to_irc('look <img alt=":party:" src="mxc://x/y"> <img src="mxc://x/z">') == "look :party: mxc://x/z"


def test_unknown_tags_keep_their_text_and_scripts_do_not() -> None:
    assert to_irc("<marquee>hello</marquee> <script>steal()</script><style>p{}</style>world") == "hello world"


def test_entities_are_decoded() -> None:
    assert to_irc("&lt;b&gt; &amp; &quot;q&quot; &#x1F600; &nbsp;x") == '<b> & "q" 😀 \xa0x'


def test_tables_become_rows() -> None:
    html = "<table><tr><th>a</th><th>b</th></tr><tr><td>1</td><td>2</td></tr></table>"
    assert to_irc(html) == "a | b\n1 | 2"


@pytest.mark.parametrize(
    "hostile",
    [
        "a\r\nPRIVMSG #other :pwned",
        "a\rQUIT :bye",
        "nul\x00here",
        "<b>a\r\nKICK #c x</b>",
        "&#13;&#10;QUIT&#0;",
        '<a href="https://x.org/\r\nQUIT">x</a>',
        '<img alt="a\r\nb\x00">',
        "\x01ACTION does\x01",
    ],
)
def test_hostile_input_never_yields_cr_nul_or_ctcp(hostile: str) -> None:
    irc = to_irc(hostile)
    assert "\r" not in irc
    assert "\0" not in irc
    assert "\x01" not in irc


def test_formatting_codes_typed_into_matrix_text_are_not_trusted() -> None:
    assert to_irc("a\x0304b\x02c") == "a04bc"


def test_unclosed_and_stray_tags() -> None:
    assert to_irc("<b>bold <i>both") == "\x02bold \x1dboth\x0f"
    assert to_irc("</b></i>plain</p>") == "plain"
    assert to_irc("<b><i>x</b> y</i>") == "\x02\x1dx\x02\x1d y"


def test_deep_nesting_does_not_crash() -> None:
    html = "<b>" * 5000 + "deep" + "</b>" * 5000
    assert to_irc(html) == "\x02deep\x0f"


def test_style_left_open_is_reset_at_the_end() -> None:
    # A caller appending " (edited)" must not get it in bold.
    assert to_irc("<b>bold") + " (edited)" == "\x02bold\x0f (edited)"


def test_round_trip_of_simple_styles() -> None:
    irc = to_irc("<b>bold</b> <i>it</i> <u>u</u>")
    _, html = irc_to_matrix(irc)
    assert html == "<b>bold</b> <i>it</i> <u>u</u>"


# --- helpers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "stripped"),
    [
        ("> <@bob:x> original\n> more\n\nmy reply", "my reply"),
        ("> <@bob:x> original\n>\n> more\n\nline 1\nline 2", "line 1\nline 2"),
        ("> a quote I typed\nand my comment", "> a quote I typed\nand my comment"),
        ("> only a quote", "> only a quote"),
        ("no quote\n\n> later", "no quote\n\n> later"),
        (">not a fallback\n\nx", ">not a fallback\n\nx"),
    ],
)
def test_strip_reply_fallback(body: str, stripped: str) -> None:
    assert strip_reply_fallback(body) == stripped


def test_nearest_colour() -> None:
    assert nearest_colour("#ff0000") == 4
    assert nearest_colour("#fff") == 0
    assert nearest_colour("010101") == 1
    assert nearest_colour("#808080") == 14


def test_style_codes_restore_a_style() -> None:
    style = style_after("\x02\x1d\x0304,12x")
    assert style == Style(bold=True, italic=True, fg=4, bg=12)
    assert style_codes(style) == "\x02\x1d\x0304,12"
    assert style_after(style_codes(style)) == style
    assert style_codes(Style()) == ""


def test_style_codes_are_as_short_as_the_following_text_allows() -> None:
    red = Style(fg=4)
    assert style_codes(red, following="5 apples") == "\x0304"
    assert style_codes(red, following=",5") == "\x0304,99"
    assert style_after(style_codes(red, following=",5") + ",5") == red
    assert style_codes(Style(bg=4), following="x") == "\x0399,04"
    # A hex colour (\x04) is carried as the nearest of all 99 palette colours.
    assert style_codes(Style(fg="ff8800"), following="x") == "\x0353"


def test_huge_hostile_html_is_handled_quickly() -> None:
    started = time.perf_counter()
    assert to_irc("<i>" * 10_000 + "x" + "</b>" * 10_000).startswith("\x1dx")
    assert to_irc("<a href='https://x.org'>" * 5_000 + "y").startswith("y")
    assert time.perf_counter() - started < 10
