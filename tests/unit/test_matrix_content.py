"""Message content: mentions are always explicit, replies carry no fallback quote."""

from __future__ import annotations

from bridgekit.ids import EventID, UserID
from bridgekit.matrix import mentions, text_content

BOB = UserID("@bob:hs.test")
CAROL = UserID("@carol:hs.test")


def test_a_message_that_mentions_nobody_says_so() -> None:
    assert text_content("hello bob")["m.mentions"] == {}


def test_mentioned_users_are_listed_once_in_order() -> None:
    assert mentions([CAROL, BOB, CAROL]) == {"user_ids": [CAROL, BOB]}


def test_a_room_mention_is_explicit() -> None:
    assert text_content("@room look", mention_room=True)["m.mentions"] == {"room": True}


def test_html_comes_with_its_format() -> None:
    content = text_content("*hi*", html="<em>hi</em>", msgtype="m.emote")
    assert content == {
        "msgtype": "m.emote", "body": "*hi*", "format": "org.matrix.custom.html",
        "formatted_body": "<em>hi</em>", "m.mentions": {},
    }


def test_a_reply_points_at_its_event_and_quotes_nothing() -> None:
    content = text_content("yes", reply_to=EventID("$q"), mentioned=[BOB])
    assert content["m.relates_to"] == {"m.in_reply_to": {"event_id": "$q"}}
    assert content["body"] == "yes"
    assert content["m.mentions"] == {"user_ids": [BOB]}
