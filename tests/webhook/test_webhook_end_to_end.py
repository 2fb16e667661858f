"""The webhook bridge end to end: Synapse, a real `bridgekit run` with the webhook connector, and
HTTP senders and receivers on loopback.

The story: alice creates hooks in her room by command and gets their URLs privately; CI tools
post plain, markdown, HTML, Slack and GitHub payloads, which appear in the room from the right
sender; forged, replayed, oversized and flooding requests are refused without posting; and the
room's messages go out to signed outbound hooks, surviving a receiver's outage, while hooks aimed
at the bridge's own network are refused.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from typing import Any

import httpx
import pytest

from bridges.webhook.identity import name_key
from bridges.webhook.signatures import sign
from tests.servers.matrix_test_client import Event
from tests.webhook.conftest import WebhookWorld

pytestmark = pytest.mark.integration


def messages(events: list[Event]) -> list[Event]:
    return [e for e in events if e["type"] == "m.room.message"]


async def post(url: str, **kwargs: Any) -> httpx.Response:
    async with httpx.AsyncClient(timeout=30) as http:
        return await http.post(url, **kwargs)


async def posted(world: WebhookWorld, room_id: str, response: httpx.Response) -> Event:
    """The room's event a 200 answer names."""
    assert response.status_code == 200, response.text
    event_id = response.json()["event_id"]
    return await world.alice.wait_for_event(room_id, lambda e: e["event_id"] == event_id)


async def test_payload_formats_arrive_from_the_right_sender(webhook_world: WebhookWorld) -> None:
    world = webhook_world
    room_id = await world.room("deploys")
    ghosts = await world.create_hook(room_id, "ci", "ghosts")
    bot_hook = await world.create_hook(room_id, "alerts")
    # The secret URL went to alice's private chat, never into the room.
    assert not [e for e in messages(world.alice.events(room_id)) if ghosts.url.split("/")[-1] in e["content"]["body"]]

    plain = await posted(world, room_id, await post(ghosts.url, json={
        "text": "deploy 42 done", "username": "Deploy Bot", "avatar_url": f"{world.avatars.url}/bot.png",
    }))
    ghost_id = f"{world.ghost_prefix()}{ghosts.id}.{name_key('Deploy Bot')}:{world.slot.server_name}"
    assert plain["sender"] == ghost_id
    assert plain["content"] == {"msgtype": "m.text", "body": "deploy 42 done", "m.mentions": {}}
    profile = await world.alice.request("GET", f"/_matrix/client/v3/profile/{ghost_id}")
    assert profile["displayname"] == "Deploy Bot"
    assert profile["avatar_url"].startswith("mxc://")  # fetched from the allow-listed host

    answer = await post(ghosts.url, json={"markdown": "**green** build", "username": "Deploy Bot"})
    markdown = await posted(world, room_id, answer)
    assert markdown["sender"] == ghost_id
    assert markdown["content"]["formatted_body"] == "<p><strong>green</strong> build</p>"

    html = await posted(world, room_id, await post(ghosts.url, json={"html": "<b>bold</b><script>x()</script>"}))
    assert html["sender"] == f"{world.ghost_prefix()}{ghosts.id}.{name_key('ci')}:{world.slot.server_name}"
    assert (html["content"]["body"], html["content"]["formatted_body"]) == ("bold", "<b>bold</b>")

    notice = await posted(world, room_id, await post(ghosts.url, content=b"text=maintenance+at+5&msgtype=notice",
                                                     headers={"Content-Type": "application/x-www-form-urlencoded"}))
    assert notice["content"]["msgtype"] == "m.notice"
    emote = await posted(world, room_id, await post(ghosts.url, json={"text": "waves", "msgtype": "emote"}))
    assert emote["content"] == {"msgtype": "m.emote", "body": "waves", "m.mentions": {}}

    slack = await posted(world, room_id, await post(bot_hook.url, json={
        "username": "Grafana", "text": "<https://grafana.example/d/1|CPU high> on *prod*",
        "attachments": [{"title": "CPU", "text": "95% for 5m", "fields": [{"title": "host", "value": "db1"}]}],
    }))
    assert slack["sender"] == world.slot.bot_user_id  # bot-style hook: "**name**: text"
    assert slack["content"]["body"] == (
        "Grafana: CPU high (https://grafana.example/d/1) on *prod*\n> CPU\n> 95% for 5m\n> host: db1"
    )
    assert slack["content"]["formatted_body"] == (
        '<strong>Grafana</strong>: <a href="https://grafana.example/d/1">CPU high</a> on <strong>prod</strong>'
        "<blockquote><strong>CPU</strong><br>95% for 5m<br><strong>host</strong>: db1</blockquote>"
    )


async def test_signatures_are_checked_and_refusals_post_nothing(webhook_world: WebhookWorld) -> None:
    world = webhook_world
    room_id = await world.room("signed")
    github = await world.create_hook(room_id, "gh", "github")
    slack = await world.create_hook(room_id, "sl", "slack")
    assert github.secret
    assert slack.secret
    push = json.dumps({
        "ref": "refs/heads/main", "pusher": {"name": "octocat"}, "repository": {"full_name": "o/r"},
        "commits": [{"id": "abcdef1234567", "message": "Ship it", "url": "https://github.com/o/r/commit/abcdef1",
                     "author": {"name": "Octo"}}],
    }).encode()

    def github_headers(secret: str, body: bytes, event: str = "push") -> dict[str, str]:
        digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        return {"X-Hub-Signature-256": f"sha256={digest}", "X-GitHub-Event": event,
                "Content-Type": "application/json"}

    forged = await post(github.url, content=push, headers=github_headers("not the secret", push))
    assert forged.status_code == 401
    assert forged.json()["error"] == "bad_signature"
    ping = await post(github.url, content=b"{}", headers=github_headers(github.secret, b"{}", "ping"))
    assert (ping.status_code, ping.json()["posted"]) == (200, False)
    answer = await post(github.url, content=push, headers=github_headers(github.secret, push))
    accepted = await posted(world, room_id, answer)
    assert accepted["content"]["body"] == "gh: octocat pushed 1 commit to o/r:main\n- abcdef1 Ship it (Octo)"

    stale = int(time.time()) - 600
    body = b"text=replayed"
    basestring = b"v0:" + str(stale).encode() + b":" + body
    replay_headers = {
        "X-Slack-Request-Timestamp": str(stale),
        "X-Slack-Signature": "v0=" + hmac.new(slack.secret.encode(), basestring, hashlib.sha256).hexdigest(),
        "Content-Type": "application/x-www-form-urlencoded",
    }
    replayed = await post(slack.url, content=body, headers=replay_headers)
    assert (replayed.status_code, replayed.json()["error"]) == (401, "stale_timestamp")
    now = int(time.time())
    fresh_base = b"v0:" + str(now).encode() + b":text=fresh"
    fresh = await post(slack.url, content=b"text=fresh", headers={
        "X-Slack-Request-Timestamp": str(now), "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Signature": "v0=" + hmac.new(slack.secret.encode(), fresh_base, hashlib.sha256).hexdigest(),
    })
    await posted(world, room_id, fresh)

    # Everything refused above left no trace: the room holds exactly the two accepted messages.
    bodies = [e["content"]["body"] for e in messages(await world.alice.room_messages(room_id))
              if e["sender"] == world.slot.bot_user_id and not e["content"]["body"].startswith("Created")]
    assert len(bodies) == 2
    assert bodies[1] == "sl: fresh"


async def test_idempotency_size_limit_and_rate_limit(webhook_world: WebhookWorld) -> None:
    world = webhook_world
    room_id = await world.room("limits")
    flood = await world.create_hook(room_id, "flood")
    calm = await world.create_hook(room_id, "calm")

    first = await post(calm.url, json={"text": "once"}, headers={"Idempotency-Key": "build-7"})
    again = await post(calm.url, json={"text": "once"}, headers={"Idempotency-Key": "build-7"})
    assert first.status_code == again.status_code == 200
    assert first.json()["event_id"] == again.json()["event_id"]

    huge = await post(calm.url, content=b"x" * (11 * 1024 * 1024), headers={"Content-Type": "text/plain"})
    assert (huge.status_code, huge.json()["error"]) == (413, "body_too_large")

    async with httpx.AsyncClient(timeout=30) as http:
        burst = await asyncio.gather(*(http.post(flood.url, json={"text": f"flood {i}"}) for i in range(25)))
        steady = await asyncio.gather(*(http.post(calm.url, json={"text": f"calm {i}"}) for i in range(5)))
    refused = [r for r in burst if r.status_code == 429]
    accepted = [r for r in burst if r.status_code in (200, 202)]
    assert refused
    assert len(accepted) + len(refused) == 25
    assert all(int(r.headers["Retry-After"]) >= 1 and r.json()["error"] == "rate_limited" for r in refused)
    assert [r.status_code for r in steady] == [200] * 5

    expected = 1 + 5 + len(accepted)  # "once", the calm five, the accepted part of the flood
    await world.alice.wait_for_events(room_id, lambda e: e["type"] == "m.room.message"
                                      and e["sender"] == world.slot.bot_user_id
                                      and e["content"]["body"].startswith(("calm:", "flood:")), expected)
    bodies = [e["content"]["body"] for e in messages(await world.alice.room_messages(room_id))]
    assert bodies.count("calm: once") == 1
    assert len([b for b in bodies if b.startswith("flood: flood")]) == len(accepted)
    assert len([b for b in bodies if b.startswith("calm: calm")]) == 5


def verify_outbound(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """What a receiver does: recompute the signature over timestamp + "." + body."""
    timestamp = int(headers["x-webhook-timestamp"])
    fresh = abs(time.time() - timestamp) < 300
    return fresh and hmac.compare_digest(headers["x-webhook-signature"], sign(secret, timestamp, body))


async def test_outbound_hooks_are_signed_retried_and_guarded(webhook_world: WebhookWorld) -> None:
    world = webhook_world
    room_id = await world.room("outbound")
    receiver = world.receiver
    path = f"/out/{room_id}"
    added = await world.command(room_id, f"out add {receiver.url}{path}", "Added outbound webhook")
    hook_id = added.split()[3]
    bot = world.slot.bot_user_id
    private = await world.alice.wait_for_event(
        world.dm, lambda e: e.get("sender") == bot and f"Outbound webhook {hook_id}" in e["content"].get("body", "")
    )
    secret = private["content"]["body"].split("shown only this once): ", 1)[1].split()[0]

    sent_id = await world.alice.send_text(room_id, "hello receiver")
    [delivery] = await receiver.wait_for(1, path)
    assert verify_outbound(secret, delivery.headers, delivery.body)
    assert not verify_outbound("wrong", delivery.headers, delivery.body)
    payload = json.loads(delivery.body)
    assert payload["event_id"] == sent_id
    assert payload["body"] == "hello receiver"
    assert payload["sender"] == world.alice.user_id
    assert payload["room"] == room_id
    assert {"displayname", "html", "msgtype", "timestamp"} <= payload.keys()

    # The receiver goes down for about 20 s: the message waits, then arrives once.
    await receiver.stop()
    down_since = time.monotonic()
    outage_id = await world.alice.send_text(room_id, "while you were away")
    await asyncio.sleep(20)  # the outage itself, not a wait for the bridge
    await receiver.start()
    [_, late] = await receiver.wait_for(2, path, timeout=30)
    assert json.loads(late.body)["event_id"] == outage_id
    assert late.at - down_since >= 20
    assert verify_outbound(secret, late.headers, late.body)
    marker = await world.alice.send_text(room_id, "after the outage")
    await receiver.wait_for(3, path)
    ids = [json.loads(r.body)["event_id"] for r in receiver.requests if r.path == path]
    assert ids == [sent_id, outage_id, marker]  # each once: nothing doubled

    # A receiver that refuses the request: the failure is told in the room.
    await world.command(room_id, f"out add {world.rejecting.url}/no", "Added outbound webhook")
    await world.alice.send_text(room_id, "this one bounces")
    notice = await world.alice.wait_for_event(
        room_id, lambda e: e.get("sender") == bot and "could not deliver" in e["content"].get("body", "")
    )
    assert "HTTP 400" in notice["content"]["body"]

    # Targets on the bridge's own network are refused, even when spelled as IPv4-mapped IPv6.
    for target in ("http://127.0.0.1:9/x", "http://169.254.169.254/latest/meta-data",
                   "http://[::ffff:127.0.0.1]:9/x"):
        refusal = await world.command(room_id, f"out add {target}", "Refused")
        assert "non-public address" in refusal
    listing = await world.command(room_id, "out list", "Outbound webhooks")
    assert hook_id in listing
    assert "9/x" not in listing
