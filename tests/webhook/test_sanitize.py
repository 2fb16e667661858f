"""The HTML sanitiser keeps what the Matrix spec allows and nothing else."""

from __future__ import annotations

from bridges.webhook.sanitize import html_to_text, sanitize_html


def test_allowed_formatting_is_kept() -> None:
    source = '<p><strong>bold</strong> <em>it</em> <a href="https://example.org/x">link</a></p><ul><li>one</li></ul>'
    assert sanitize_html(source) == source


def test_scripts_styles_and_their_content_are_dropped() -> None:
    assert sanitize_html("<p>hi<script>alert(1)</script><style>p{}</style></p>") == "<p>hi</p>"


def test_unknown_tags_keep_their_text() -> None:
    assert sanitize_html("<article><blink>hello</blink></article>") == "hello"


def test_event_handlers_and_style_attributes_are_removed() -> None:
    assert sanitize_html('<p onclick="x()" style="color:red">t</p>') == "<p>t</p>"


def test_dangerous_link_schemes_are_removed() -> None:
    assert sanitize_html('<a href="javascript:alert(1)">x</a>') == "<a>x</a>"
    assert sanitize_html('<a href="mailto:a@b.c">m</a>') == '<a href="mailto:a@b.c">m</a>'


def test_images_only_from_mxc() -> None:
    assert sanitize_html('<img src="https://tracker.example/p.gif">') == ""
    assert sanitize_html('<img src="mxc://hs/abc" alt="a" onerror="x">') == '<img src="mxc://hs/abc" alt="a">'


def test_colours_must_be_hex_and_code_classes_languages() -> None:
    assert sanitize_html('<font color="#ff0000">r</font>') == '<font color="#ff0000">r</font>'
    assert sanitize_html('<font color="red;x">r</font>') == "<font>r</font>"
    assert sanitize_html('<code class="language-python">x</code>') == '<code class="language-python">x</code>'
    assert sanitize_html('<code class="evil">x</code>') == "<code>x</code>"


def test_output_is_well_nested_and_escaped() -> None:
    assert sanitize_html("<b><i>x</b> 1 < 2 &amp; 3") == "<b><i>x</i></b> 1 &lt; 2 &amp; 3"
    assert sanitize_html("<blockquote>open") == "<blockquote>open</blockquote>"


def test_plain_text_of_html_writes_links_out() -> None:
    text = html_to_text('<p>Deploy <a href="https://ci.example/1">#1</a> done</p><ul><li>a</li><li>b</li></ul>')
    assert text == "Deploy #1 (https://ci.example/1) done\n\n- a\n- b"
