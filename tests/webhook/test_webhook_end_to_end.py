"""The webhook bridge end to end: Synapse, a real `bridgekit run` with the webhook connector, and
HTTP senders and receivers on loopback.

The story: alice creates hooks in her room by command and gets their URLs privately; CI tools
post plain, markdown, HTML, Slack and GitHub payloads, which appear in the room from the right
sender; forged, replayed, oversized and flooding requests are refused without posting; and the
room's messages go out to signed outbound hooks, surviving a receiver's outage, while hooks aimed
at the bridge's own network are refused. Authority: a member without the room's admin power may
list hooks but change nothing; a banned creator's hooks stop (403 in, nothing out) until a room
admin adopts them with new credentials; captured signed requests cannot be replayed; and the
secrets key can be rotated under running hooks (last, as it restarts the module's bridge).
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
import yaml
from cryptography.fernet import Fernet
from prometheus_client.parser import text_string_to_metric_families

from bridgekit.demo.matrix_client import Event
from bridges.webhook.identity import name_key
from bridges.webhook.signatures import sign
from tests.webhook.conftest import WebhookWorld
from tests.webhook.receiver import Received

pytestmark = pytest.mark.integration


def messages(events: list[Event]) -> list[Event]:
    return [e for e in events if e["type"] == "m.room.message"]


async def bot_posts(world: WebhookWorld, room_id: str) -> list[str]:
    """What the bot posted in the room for hooks (its command answers, and its request for the
    power to announce the room as bridged, left out)."""
    return [e["content"]["body"] for e in messages(await world.alice.room_messages(room_id))
            if e["sender"] == world.slot.bot_user_id
            and not e["content"]["body"].startswith(("Created", "The bridge cannot show which network"))]


def github_headers(secret: str, body: bytes, event: str = "push") -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"X-Hub-Signature-256": f"sha256={digest}", "X-GitHub-Event": event, "Content-Type": "application/json"}


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
    bodies = await bot_posts(world, room_id)
    assert len(bodies) == 2
    assert bodies[1] == "sl: fresh"


async def requests_by_outcome(world: WebhookWorld) -> dict[str, float]:
    """The bridge's ``bridgekit_connector_webhook_requests_total`` by outcome, scraped."""
    async with httpx.AsyncClient(timeout=10) as http:
        text = (await http.get(world.bridge.metrics_url + "/metrics")).text
    return {sample.labels["outcome"]: sample.value for family in text_string_to_metric_families(text)
            for sample in family.samples if sample.name == "bridgekit_connector_webhook_requests_total"}


async def test_idempotency_size_limit_and_rate_limit(webhook_world: WebhookWorld) -> None:
    world = webhook_world
    counted_before = await requests_by_outcome(world)
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

    counted = await requests_by_outcome(world)
    moved = {outcome: counted[outcome] - counted_before.get(outcome, 0) for outcome in counted}
    assert moved["rate_limited"] == len(refused)
    assert moved["body_too_large"] == 1
    assert moved["duplicate"] == 1
    assert moved.get("posted", 0) + moved.get("queued", 0) == 1 + 5 + len(accepted)


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


async def test_a_retried_delivery_holds_back_only_its_own_hooks_later_messages(webhook_world: WebhookWorld) -> None:
    world = webhook_world
    room_id = await world.room("ordered")
    receiver = world.receiver
    flaky, steady = f"/flaky/{room_id}", f"/steady/{room_id}"
    for path in (flaky, steady):
        await world.command(room_id, f"out add {receiver.url}{path}", "Added outbound webhook")
    receiver.failures[(flaky, b'"body": "one"')] = 2  # the first message fails twice there, then lands

    sent = [await world.alice.send_text(room_id, text) for text in ("one", "two", "three")]

    def landed(path: str) -> list[Received]:
        return [r for r in receiver.requests if r.path == path and r.status == 200]

    await receiver.wait_for(3, steady)
    await receiver.wait_for(5, flaky)  # two refusals, then the three messages
    assert [json.loads(r.body)["event_id"] for r in landed(flaky)] == sent  # 1, 2, 3: in the room's order
    assert [json.loads(r.body)["event_id"] for r in landed(steady)] == sent
    # The other hook of the room was not held up: all of its messages were in before the flaky
    # hook's first message got through (after two retries with backoff).
    assert landed(steady)[-1].at < landed(flaky)[0].at
    first_attempts = [r for r in receiver.requests if r.path == flaky and b'"body": "one"' in r.body]
    assert [r.status for r in first_attempts] == [500, 500, 200]
    assert len({r.headers["x-webhook-delivery"] for r in first_attempts}) == 1  # one delivery, retried


async def test_a_member_without_room_power_can_list_but_not_change_hooks(webhook_world: WebhookWorld) -> None:
    world = webhook_world
    room_id = await world.room("authority")
    hook = await world.create_hook(room_id, "alices")
    bob = await world.user("bob")
    try:
        await world.join(room_id, bob)  # bridge level "user", room power 0 (the room's admins have 100)
        for verb in ("create bobs", f"out add {world.receiver.url}/bob", f"remove {hook.id}", f"rotate {hook.id}",
                     f"identity {hook.id} ghosts", f"adopt {hook.id}"):
            refusal = await world.command(room_id, verb, "needs power level 100 in this room", user=bob)
            assert "(yours is 0); your bridge permission level ('user') is enough" in refusal
        listing = await world.command(room_id, "list", "Inbound webhooks", user=bob)
        assert hook.id in listing
        assert "bobs" not in listing
        assert "This room has no outbound webhooks" in await world.command(room_id, "out list", "outbound", user=bob)
        # alice's hook still works with its URL: nothing bob asked for was done.
        await posted(world, room_id, await post(hook.url, json={"text": "still mine"}))
    finally:
        await bob.aclose()


async def test_a_banned_creators_hooks_are_suspended_until_a_room_admin_adopts_them(
    webhook_world: WebhookWorld,
) -> None:
    world = webhook_world
    room_id = await world.room("departures")
    bob = await world.user("bob")
    try:
        await world.join(room_id, bob, power=100)  # a room admin: he may make hooks here
        inbound = await world.create_hook(room_id, "bobs", user=bob)
        bob_path, alice_path = f"/bob/{room_id}", f"/alice/{room_id}"
        added = await world.command(room_id, f"out add {world.receiver.url}{bob_path}", "Added outbound", user=bob)
        bob_out = added.split()[3]
        await world.command(room_id, f"out add {world.receiver.url}{alice_path}", "Added outbound")
        await posted(world, room_id, await post(inbound.url, json={"text": "before the ban"}))
        await world.alice.send_text(room_id, "hello both")
        await world.receiver.wait_for(1, bob_path)
        await world.receiver.wait_for(1, alice_path)

        await world.alice.request("POST", f"/_matrix/client/v3/rooms/{room_id}/ban",
                                  json_body={"user_id": bob.user_id, "reason": "spam"})
        told = await world.alice.wait_for_event(room_id, lambda e: e.get("sender") == world.slot.bot_user_id
                                                and "suspended" in e["content"].get("body", ""))
        assert f"{bob.user_id} was banned by {world.alice.user_id}" in told["content"]["body"]
        assert inbound.id in told["content"]["body"]
        assert bob_out in told["content"]["body"]

        refused = await post(inbound.url, json={"text": "posting after my ban"})
        assert (refused.status_code, refused.json()["error"]) == (403, "hook_suspended")
        await world.alice.send_text(room_id, "bob must not read this")
        [_, late] = await world.receiver.wait_for(2, alice_path)  # alice's hook got it: the round is done
        assert json.loads(late.body)["body"] == "bob must not read this"
        assert len([r for r in world.receiver.requests if r.path == bob_path]) == 1
        listing = await world.command(room_id, "list", "Inbound webhooks")
        assert f"SUSPENDED: {bob.user_id} was banned" in listing

        # alice, a room admin, adopts bob's inbound hook: hers now, with credentials bob never saw.
        await world.alice.sync_once()
        before = {e["event_id"] for e in world.alice.events(world.dm)}
        adopted = await world.command(room_id, f"adopt {inbound.id}", "adopted webhook")
        assert "active again" in adopted
        fresh = await world.private_credentials(world.alice, inbound.id, before)
        assert fresh.url != inbound.url
        stale = await post(inbound.url, json={"text": "bob's old URL"})
        assert (stale.status_code, stale.json()["error"]) == (401, "bad_token")
        await posted(world, room_id, await post(fresh.url, json={"text": "adopted and working"}))
        bodies = [e["content"]["body"] for e in messages(await world.alice.room_messages(room_id))]
        assert not [b for b in bodies if "posting after my ban" in b or "bob's old URL" in b]
    finally:
        await bob.aclose()


async def test_captured_signed_requests_cannot_be_replayed(webhook_world: WebhookWorld) -> None:
    world = webhook_world
    room_id = await world.room("replays")
    github = await world.create_hook(room_id, "gh", "github")
    generic = await world.create_hook(room_id, "hm", "hmac")
    assert github.secret
    assert generic.secret
    body = json.dumps({"action": "opened", "issue": {"number": 7, "title": "Replay me",
                                                      "html_url": "https://github.com/o/r/issues/7"},
                       "repository": {"full_name": "o/r"}, "sender": {"login": "octocat"}}).encode()
    headers = github_headers(github.secret, body, "issues")

    first = await posted(world, room_id, await post(github.url, content=body,
                                                    headers={**headers, "X-GitHub-Delivery": "d-1"}))
    redelivered = await post(github.url, content=body, headers={**headers, "X-GitHub-Delivery": "d-1"})
    assert (redelivered.status_code, redelivered.json()["event_id"]) == (200, first["event_id"])
    for delivery in ({"X-GitHub-Delivery": "d-2"}, {}):
        replay = await post(github.url, content=body, headers={**headers, **delivery})
        assert (replay.status_code, replay.json()["error"]) == (401, "replayed_signature")

    # hmac: captured an hour ago, replayed without the timestamp header and "<ts>." + body as body.
    captured_at = int(time.time()) - 3600
    text = b'{"text": "deploy approved"}'
    replay = await post(generic.url, content=str(captured_at).encode() + b"." + text, headers={
        "X-Webhook-Signature": sign(generic.secret, captured_at, text), "Content-Type": "application/json"})
    assert (replay.status_code, replay.json()["error"]) == (401, "missing_timestamp")
    now = int(time.time())
    signed = {"X-Webhook-Timestamp": str(now), "X-Webhook-Signature": sign(generic.secret, now, text),
              "Content-Type": "application/json"}
    accepted = await posted(world, room_id, await post(generic.url, content=text, headers=signed))
    # Captured and sent again inside the signature window, under a new Idempotency-Key: the first
    # answer comes back and nothing is posted twice.
    copy = await post(generic.url, content=text, headers={**signed, "Idempotency-Key": "fresh-key"})
    assert (copy.status_code, copy.json()["event_id"], copy.json()["duplicate"]) == (200, accepted["event_id"], True)

    bodies = await bot_posts(world, room_id)
    assert len(bodies) == 2
    assert bodies[1] == "hm: deploy approved"


async def test_rotating_the_secrets_key_keeps_existing_hooks_working(webhook_world: WebhookWorld) -> None:
    """Runs last in the module: the bridge is restarted with a new key, the old one as previous."""
    world = webhook_world
    room_id = await world.room("rotation")
    github = await world.create_hook(room_id, "gh", "github")
    assert github.secret
    path = f"/rotated/{room_id}"
    added = await world.command(room_id, f"out add {world.receiver.url}{path}", "Added outbound webhook")
    out_id = added.split()[3]
    private = await world.alice.wait_for_event(world.dm, lambda e: f"Outbound webhook {out_id}" in
                                               e["content"].get("body", ""))
    out_secret = private["content"]["body"].split("shown only this once): ", 1)[1].split()[0]

    config = yaml.safe_load(world.bridge.config_path.read_text())
    section = config["connectors"][world.slot.connector]
    section["previous_secrets_keys"] = [section["secrets_key"]]
    section["secrets_key"] = Fernet.generate_key().decode()
    world.bridge.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    await world.bridge.restart()

    body = b'{"action": "created", "release": {"tag_name": "v2"}, "repository": {"full_name": "o/r"}}'
    await posted(world, room_id, await post(github.url, content=body, headers=github_headers(github.secret, body,
                                                                                           "release")))
    await world.alice.send_text(room_id, "after the rotation")
    [delivery] = await world.receiver.wait_for(1, path)
    assert verify_outbound(out_secret, delivery.headers, delivery.body)
