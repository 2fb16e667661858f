"""Request bodies -> messages: generic fields, markdown, HTML, Slack payloads and GitHub events."""

from __future__ import annotations

import json

import pytest

from bridges.webhook.slack import mrkdwn, render_slack
from bridges.webhook.translate import HookMessage, PayloadError, bot_style, parse_body, to_message


def test_plain_text_body() -> None:
    fields = parse_body("text/plain; charset=utf-8", b"deploy <done> & dusted")
    assert to_message(fields) == HookMessage(text="deploy <done> & dusted")


def test_json_fields_with_notice_and_name() -> None:
    body = json.dumps({"text": "hi", "msgtype": "notice", "username": "CI  bot\n"}).encode()
    fields = parse_body("application/json", body)
    message = to_message(fields)
    assert message == HookMessage(text="hi", msgtype="m.notice", username="CI bot")


def test_form_fields_and_slack_payload_field() -> None:
    assert parse_body("application/x-www-form-urlencoded", b"text=a+b&username=x") == {"text": "a b", "username": "x"}
    payload = b"payload=%7B%22text%22%3A%22from+slack%22%7D"
    assert parse_body("application/x-www-form-urlencoded", payload) == {"text": "from slack"}


def test_markdown_is_rendered_without_raw_html() -> None:
    message = to_message({"markdown": "**build** passed <script>x</script> [log](https://ci/1)"})
    assert message is not None
    assert message.text == "**build** passed <script>x</script> [log](https://ci/1)"
    assert message.html == (
        '<p><strong>build</strong> passed &lt;script&gt;x&lt;/script&gt; <a href="https://ci/1">log</a></p>'
    )


def test_html_is_sanitised_and_gets_a_plain_body() -> None:
    message = to_message({"html": "<b>ok</b><img src=x onerror=alert(1)>"})
    assert message == HookMessage(text="ok", html="<b>ok</b>")


def test_emote_and_bad_msgtype() -> None:
    message = to_message({"text": "waves", "msgtype": "m.emote"})
    assert message is not None
    assert message.msgtype == "m.emote"
    with pytest.raises(PayloadError) as raised:
        to_message({"text": "x", "msgtype": "m.image"})
    assert raised.value.code == "bad_msgtype"


@pytest.mark.parametrize(
    ("content_type", "body", "code"),
    [
        ("application/json", b"[1, 2]", "bad_json"),
        ("application/json", b"{nope", "bad_json"),
        ("application/xml", b"<a/>", "unsupported_media_type"),
        ("text/plain", b"\xff\xfe", "bad_encoding"),
    ],
)
def test_unreadable_bodies(content_type: str, body: bytes, code: str) -> None:
    with pytest.raises(PayloadError) as raised:
        parse_body(content_type, body)
    assert raised.value.code == code


def test_nothing_to_post_is_an_error() -> None:
    with pytest.raises(PayloadError) as raised:
        to_message({"username": "x"})
    assert raised.value.code == "empty_message"


def test_bot_style_line() -> None:
    assert bot_style(HookMessage(text="a < b", username="Grafana"), "hook") == (
        "Grafana: a < b", "<strong>Grafana</strong>: a &lt; b"
    )
    assert bot_style(HookMessage(text="waves", msgtype="m.emote"), "ci")[0] == "* ci waves"


def test_slack_links_mentions_and_styles() -> None:
    plain, html = mrkdwn("*Alert* <https://grafana/d/1|CPU high> for <!channel> &lt;prod&gt; `x*y`")
    assert plain == "*Alert* CPU high (https://grafana/d/1) for @channel <prod> x*y"
    assert html == (
        '<strong>Alert</strong> <a href="https://grafana/d/1">CPU high</a> for @channel &lt;prod&gt; <code>x*y</code>'
    )


def test_slack_attachment_becomes_a_quote() -> None:
    payload = {
        "username": "Alertmanager",
        "icon_url": "https://example.org/a.png",
        "text": "[FIRING:1] HighLatency",
        "attachments": [{
            "color": "danger", "title": "HighLatency", "title_link": "https://am/alerts",
            "text": "p95 above 1s", "fields": [{"title": "severity", "value": "page"}], "footer": "am",
        }],
    }
    message = to_message(payload)
    assert message is not None
    assert message.username == "Alertmanager"
    assert message.avatar_url == "https://example.org/a.png"
    assert message.text == (
        "[FIRING:1] HighLatency\n> HighLatency (https://am/alerts)\n> p95 above 1s\n> severity: page\n> am"
    )
    assert message.html == (
        "[FIRING:1] HighLatency<blockquote><strong><a href=\"https://am/alerts\">HighLatency</a></strong><br>"
        "p95 above 1s<br><strong>severity</strong>: page<br>am</blockquote>"
    )


def test_slack_attachment_fallback_and_blocks() -> None:
    plain, _html = render_slack({"attachments": [{"fallback": "only fallback"}]})
    assert plain == "> only fallback"
    plain, html = render_slack({"blocks": [{"type": "header", "text": {"type": "plain_text", "text": "Deploy"}},
                                           {"type": "section", "text": {"type": "mrkdwn", "text": "_done_"}}]})
    assert plain == "Deploy\n_done_"
    assert html == "<p><strong>Deploy</strong></p><p><em>done</em></p>"


PUSH = {
    "ref": "refs/heads/main", "compare": "https://github.com/o/r/compare/a...b",
    "pusher": {"name": "octocat"}, "repository": {"full_name": "o/r"},
    "commits": [
        {"id": "0123456789abcdef", "message": "Fix the thing\n\nlong text", "url": "https://github.com/o/r/commit/0123456",
         "author": {"name": "Octo Cat"}},
    ],
}


def test_github_push() -> None:
    message = to_message(PUSH, github_event="push")
    assert message is not None
    assert message.msgtype == "m.notice"
    assert message.text == (
        "octocat pushed 1 commit to o/r:main (https://github.com/o/r/compare/a...b)\n- 0123456 Fix the thing (Octo Cat)"
    )
    assert message.html is not None
    assert "<li>" in message.html
    assert "Fix the thing" in message.html


def test_github_pull_request_merged_issue_release_and_others() -> None:
    pr = {"action": "closed", "sender": {"login": "a"}, "repository": {"full_name": "o/r"},
          "pull_request": {"number": 7, "title": "Add x", "html_url": "https://github.com/o/r/pull/7", "merged": True}}
    assert to_message(pr, github_event="pull_request").text == (  # type: ignore[union-attr]
        "a merged pull request o/r#7: Add x (https://github.com/o/r/pull/7)"
    )
    issue = {"action": "opened", "sender": {"login": "b"}, "repository": {"full_name": "o/r"},
             "issue": {"number": 3, "title": "Bug", "html_url": "https://github.com/o/r/issues/3"}}
    assert to_message(issue, github_event="issues").text.startswith("b opened issue o/r#3: Bug")  # type: ignore[union-attr]
    release = {"action": "published", "sender": {"login": "c"}, "repository": {"full_name": "o/r"},
               "release": {"tag_name": "v1.0", "name": "One", "html_url": "https://github.com/o/r/releases/v1.0"}}
    assert to_message(release, github_event="release").text == (  # type: ignore[union-attr]
        "c published release One (v1.0) of o/r: https://github.com/o/r/releases/v1.0"
    )
    star = {"action": "created", "sender": {"login": "d"}, "repository": {"full_name": "o/r"}}
    assert to_message(star, github_event="star").text == "d: star (created) in o/r"  # type: ignore[union-attr]


def test_github_ping_posts_nothing() -> None:
    assert to_message({"zen": "Keep it logically awesome."}, github_event="ping") is None
