"""The three bridging modes with the example connector (memonet), on the real Synapse and a real
`bridgekit run`: relay, virtual users and puppets each carry a conversation both ways, with
replies, edits, redactions and reactions; relay off without a login is refused visibly; a puppet
login is stored encrypted, survives a restart, and double puppeting posts as the user."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from bridgekit.demo.matrix_client import MatrixTestClient
from bridgekit.testing.bridge_process import BridgeProcess
from bridgekit.testing.matrix_steps import from_sender, management_room, notice
from bridgekit.testing.matrix_steps import linked_portal as link_room
from bridgekit.testing.memonet_client import MemonetClient
from bridgekit.testing.synapse import AppserviceSlot
from bridgekit.testing.synapse_harness import MakeMatrixUser, RunBridge, SynapseHarness

pytestmark = pytest.mark.integration

CHAT = "lobby"
TOKEN = secrets.token_urlsafe(16)
ACCOUNT, PASSWORD = "alice_on_memonet", "correct horse battery staple"

Start = Callable[..., Awaitable[tuple[BridgeProcess, MemonetClient]]]


@pytest.fixture
async def start(
    slot: AppserviceSlot, run_bridge: RunBridge, synapse: SynapseHarness
) -> AsyncIterator[Start]:
    clients: list[MemonetClient] = []

    async def run(*, virtual: bool = False) -> tuple[BridgeProcess, MemonetClient]:
        bridge = await run_bridge(
            slot, "bridgekit.testing.memonet:MemonetConnector",
            connector={"control_token": TOKEN, "chats": [CHAT], "virtual": virtual,
                       "accounts": {ACCOUNT: PASSWORD}},
            permissions={synapse.server_name: "admin"},
            double_puppet={"registration": str(synapse.double_puppet_registration)},
        )
        client = MemonetClient(bridge.public_base_url, TOKEN)
        clients.append(client)
        return bridge, client

    try:
        yield run
    finally:
        for client in clients:
            await client.aclose()


async def linked_portal(alice: MatrixTestClient, slot: AppserviceSlot) -> str:
    return await link_room(alice, slot, CHAT, name="lobby on memonet")


async def edit(alice: MatrixTestClient, room_id: str, event_id: str, text: str) -> str:
    return await alice.send_event(room_id, "m.room.message", {
        "msgtype": "m.text", "body": f"* {text}", "m.new_content": {"msgtype": "m.text", "body": text},
        "m.relates_to": {"rel_type": "m.replace", "event_id": event_id},
    })


async def redact(alice: MatrixTestClient, room_id: str, event_id: str) -> None:
    await alice.request("PUT", f"/_matrix/client/v3/rooms/{room_id}/redact/{event_id}/{secrets.token_hex(8)}",
                        json_body={"reason": "oops"})


async def converse_with_bob(
    alice: MatrixTestClient, room_id: str, memonet: MemonetClient, slot: AppserviceSlot, *, said_as: str,
    shown: Callable[[str], str],
) -> None:
    """Alice and bob talk; bob replies; alice edits and redacts; bob edits, reacts and deletes."""
    event_id = await alice.send_text(room_id, "hi bob")
    post = await memonet.wait_for(CHAT, lambda p: p["text"] == shown("hi bob"))
    assert post["sender"] == said_as

    answer = await memonet.say(CHAT, "bob", "hello alice", reply_to=post["id"])
    ghost = slot.ghost_user_id(f"{slot.connector}_bob")
    reply = await alice.wait_for_event(room_id, from_sender(ghost))
    assert reply["content"]["body"] == "hello alice"
    assert reply["content"]["m.relates_to"]["m.in_reply_to"]["event_id"] == event_id  # a Matrix reply

    await edit(alice, room_id, event_id, "hi bob, how are you?")
    await memonet.wait_for(CHAT, lambda p: p["id"] == post["id"] and p["edits"] == [shown("hi bob, how are you?")])
    await redact(alice, room_id, event_id)
    await memonet.wait_for(CHAT, lambda p: p["id"] == post["id"] and p["deleted"])

    await memonet.edit(CHAT, answer["id"], "bob", "hello alice!")
    replaced = await alice.wait_for_event(room_id, lambda e: e.get("sender") == ghost and
                                          e.get("content", {}).get("m.relates_to", {}).get("rel_type") == "m.replace")
    assert replaced["content"]["m.new_content"]["body"] == "hello alice!"
    assert replaced["content"]["m.relates_to"]["event_id"] == reply["event_id"]
    await memonet.react(CHAT, answer["id"], "bob", "👍")
    reaction = await alice.wait_for_event(room_id, from_sender(ghost, "m.reaction"))
    annotation = {"rel_type": "m.annotation", "event_id": reply["event_id"], "key": "👍"}
    assert reaction["content"]["m.relates_to"] == annotation
    # Taken back and given again: the Matrix reaction goes and comes back (not dropped as a repeat).
    await memonet.react(CHAT, answer["id"], "bob", "👍", removed=True)
    await alice.wait_for_event(room_id, lambda e: e.get("type") == "m.room.redaction" and
                               (e.get("redacts") or e["content"].get("redacts")) == reaction["event_id"])
    await memonet.react(CHAT, answer["id"], "bob", "👍")
    again = await alice.wait_for_event(room_id, lambda e: from_sender(ghost, "m.reaction")(e)
                                       and e["event_id"] != reaction["event_id"])
    assert again["content"]["m.relates_to"] == annotation
    await memonet.delete(CHAT, answer["id"], "bob")
    await alice.wait_for_event(room_id, lambda e: e.get("type") == "m.room.redaction" and
                               (e.get("redacts") or e["content"].get("redacts")) == reply["event_id"])

    # Nothing came back twice: one post per Matrix message, one Matrix message per post.
    posts = await memonet.posts(CHAT)
    assert [p["text"] for p in posts].count(shown("hi bob")) == 1
    events = await alice.room_messages(room_id)
    from_bob = [e for e in events if from_sender(ghost)(e) and "m.new_content" not in e["content"]]
    assert [e["event_id"] for e in from_bob] == [reply["event_id"]]  # (redacted since: no body to compare)
    assert not [e for e in events if e["type"] == "m.room.message" and e["sender"] != alice.user_id
                and "hi bob" in e["content"].get("body", "")]


async def test_relay_mode(start: Start, slot: AppserviceSlot, make_matrix_user: MakeMatrixUser) -> None:
    _bridge, memonet = await start()
    alice = await make_matrix_user("alice")
    room_id = await linked_portal(alice, slot)
    name = alice.user_id.split(":")[0].lstrip("@")
    await converse_with_bob(alice, room_id, memonet, slot, said_as="bridgebot", shown=lambda text: f"<{name}> {text}")

    await alice.send_text(room_id, "!bk relay off")
    await alice.wait_for_event(room_id, notice(slot.bot_user_id, "Relay off"))
    await alice.send_text(room_id, "anyone there?")
    refusal = await alice.wait_for_event(room_id, notice(slot.bot_user_id, "was not bridged"))
    assert "login" in refusal["content"]["body"]  # tells her how to get bridged
    assert not [p for p in await memonet.posts(CHAT) if "anyone there" in p["text"]]


async def test_an_edit_by_anyone_but_the_author_is_not_bridged(
    start: Start, slot: AppserviceSlot, make_matrix_user: MakeMatrixUser
) -> None:
    """Mallory, in the room, sends an m.replace of alice's message (a homeserver does not stop it
    in an unencrypted room): through the relay it would rewrite alice's words on the network."""
    _bridge, memonet = await start()
    alice, mallory = await make_matrix_user("alice"), await make_matrix_user("mallory")
    room_id = await linked_portal(alice, slot)
    await alice.invite(room_id, mallory.user_id)
    await mallory.join(room_id)
    name = alice.user_id.split(":")[0].lstrip("@")
    event_id = await alice.send_text(room_id, "I owe bob 5 euros")
    post = await memonet.wait_for(CHAT, lambda p: p["text"] == f"<{name}> I owe bob 5 euros")

    await edit(mallory, room_id, event_id, "I owe mallory 500 euros")
    await edit(alice, room_id, event_id, "I owe bob 6 euros")  # the author's own edit still crosses
    edited = await memonet.wait_for(CHAT, lambda p: p["id"] == post["id"] and p["edits"])
    assert edited["edits"] == [f"<{name}> I owe bob 6 euros"]
    assert not [p for p in await memonet.posts(CHAT) if "500" in p["text"] or any("500" in e for e in p["edits"])]


async def test_virtual_user_mode(start: Start, slot: AppserviceSlot, make_matrix_user: MakeMatrixUser) -> None:
    _bridge, memonet = await start(virtual=True)
    alice = await make_matrix_user("alice")
    room_id = await linked_portal(alice, slot)
    name = alice.user_id.split(":")[0].lstrip("@")
    await converse_with_bob(alice, room_id, memonet, slot, said_as=f"{name}[m]", shown=lambda text: text)


async def test_puppet_mode_login_double_puppet_restart_and_logout(
    start: Start, slot: AppserviceSlot, make_matrix_user: MakeMatrixUser
) -> None:
    bridge, memonet = await start()
    alice = await make_matrix_user("alice")
    dm = await management_room(alice, slot)
    await alice.send_text(dm, "login")
    await alice.wait_for_event(dm, notice(slot.bot_user_id, "username?"))
    await alice.send_text(dm, "nobody")
    await alice.wait_for_event(dm, notice(slot.bot_user_id, "password?"))
    await alice.send_text(dm, "wrong")
    await alice.wait_for_event(dm, notice(slot.bot_user_id, "Login to example failed: wrong username or password"))

    await alice.send_text(dm, "login")
    await alice.wait_for_event(dm, notice(slot.bot_user_id, "Your memonet username?"))
    await alice.send_text(dm, ACCOUNT)
    await alice.wait_for_event(dm, notice(slot.bot_user_id, "Your memonet password?"))
    password_event = await alice.send_text(dm, PASSWORD)
    await alice.wait_for_event(dm, notice(slot.bot_user_id, f"Logged in to example as {ACCOUNT}"))
    redacted = await alice.get_event(dm, password_event)
    assert "body" not in redacted["content"]  # the password does not stay in the room

    room_id = await linked_portal(alice, slot)
    await alice.send_text(room_id, "!bk relay off")  # so only her own login can carry her messages
    await alice.wait_for_event(room_id, notice(slot.bot_user_id, "Relay off"))
    await converse_with_bob(alice, room_id, memonet, slot, said_as=ACCOUNT, shown=lambda text: text)

    # Said from "another client" of her memonet account: it appears as alice herself (double
    # puppet), and is not bridged back to memonet.
    await memonet.say(CHAT, ACCOUNT, "typed on my phone")
    mine = await alice.wait_for_event(room_id, lambda e: from_sender(alice.user_id)(e)
                                      and e["content"].get("body") == "typed on my phone")
    assert mine["content"]["net.bridgekit.double_puppet_source"] == slot.connector
    # The bridge handles a room's events in order: once a later message reached memonet, the
    # double-puppeted one was handled too, and it must not have been sent back.
    await alice.send_text(room_id, "after my phone")
    await memonet.wait_for(CHAT, lambda p: p["text"] == "after my phone")
    assert [p["text"] for p in await memonet.posts(CHAT)].count("typed on my phone") == 1
    await alice.send_text(dm, "status")
    status = await alice.wait_for_event(dm, notice(slot.bot_user_id, "Double puppeting"))
    assert "Double puppeting: on (checked)" in status["content"]["body"]
    assert f"example: {ACCOUNT} - connected" in status["content"]["body"]

    # The login survives a restart (stored encrypted, reconnected at start-up).
    await bridge.restart()
    await alice.send_text(room_id, "still me after a restart")
    post = await memonet.wait_for(CHAT, lambda p: p["text"] == "still me after a restart")
    assert post["sender"] == ACCOUNT

    await alice.send_text(dm, "logout")
    await alice.wait_for_event(dm, notice(slot.bot_user_id, "Logged out of example"))
    await alice.send_text(room_id, "after logout")
    await alice.wait_for_event(room_id, notice(slot.bot_user_id, "was not bridged"))


async def test_joining_an_alias_makes_the_portal(
    start: Start, slot: AppserviceSlot, make_matrix_user: MakeMatrixUser
) -> None:
    _bridge, memonet = await start()
    alice = await make_matrix_user("alice")
    room_id = await alice.join(slot.alias(CHAT))
    await alice.wait_for_membership(room_id, alice.user_id)
    await alice.send_text(room_id, "found you by alias")
    post = await memonet.wait_for(CHAT, lambda p: p["text"].endswith("found you by alias"))
    assert post["sender"] == "bridgebot"
    with pytest.raises(Exception, match=r"404|M_NOT_FOUND"):
        await alice.join(slot.alias("no-such-chat"))


async def test_a_message_the_network_refuses_is_marked_in_its_room(
    start: Start, slot: AppserviceSlot, make_matrix_user: MakeMatrixUser
) -> None:
    _bridge, memonet = await start()
    alice = await make_matrix_user("alice")
    room_id = await linked_portal(alice, slot)
    await memonet.fail_sends(1000)
    await alice.send_text(room_id, "this one will not get through")
    failed = await alice.wait_for_event(room_id, notice(slot.bot_user_id, "could not be delivered"), timeout=60)
    assert alice.user_id in failed["content"]["m.mentions"]["user_ids"]


async def test_typing_and_read_receipts_cross_for_a_users_own_identity(
    start: Start, slot: AppserviceSlot, make_matrix_user: MakeMatrixUser
) -> None:
    _bridge, memonet = await start(virtual=True)
    alice = await make_matrix_user("alice")
    room_id = await linked_portal(alice, slot)
    nick = alice.user_id.split(":")[0].lstrip("@") + "[m]"
    await alice.send_text(room_id, "hello")  # opens her virtual identity
    await memonet.wait_for(CHAT, lambda p: p["sender"] == nick)

    await alice.request("PUT", f"/_matrix/client/v3/rooms/{room_id}/typing/{alice.user_id}",
                        json_body={"typing": True, "timeout": 30000})
    await memonet.wait_for_presence(CHAT, lambda s: nick in s["typing"])
    await alice.request("PUT", f"/_matrix/client/v3/rooms/{room_id}/typing/{alice.user_id}",
                        json_body={"typing": False})
    await memonet.wait_for_presence(CHAT, lambda s: nick not in s["typing"])

    post = await memonet.say(CHAT, "bob", "did you read this?")
    ghost = slot.ghost_user_id(f"{slot.connector}_bob")
    event = await alice.wait_for_event(room_id, from_sender(ghost))
    await alice.request("POST", f"/_matrix/client/v3/rooms/{room_id}/receipt/m.read/{event['event_id']}", json_body={})
    await memonet.wait_for_presence(CHAT, lambda s: s["read"].get(nick) == post["id"])

    await memonet.set_typing(CHAT, "bob")
    await alice.wait_for_ephemeral(room_id, lambda e: e["type"] == "m.typing" and ghost in e["content"]["user_ids"])
    await memonet.mark_read(CHAT, "bob", post["id"])
    await alice.wait_for_ephemeral(room_id, lambda e: e["type"] == "m.receipt" and ghost in
                                   e["content"].get(event["event_id"], {}).get("m.read", {}))


# The smallest valid PNG (1x1, transparent).
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
    "0000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)


async def test_a_remote_users_picture_follows_them_and_a_private_address_is_refused(
    start: Start, slot: AppserviceSlot, make_matrix_user: MakeMatrixUser
) -> None:
    _bridge, memonet = await start()
    alice = await make_matrix_user("alice")
    room_id = await linked_portal(alice, slot)
    picture = await alice.upload(PNG, "image/png")
    ghost = slot.ghost_user_id(f"{slot.connector}_carol")

    await memonet.say(CHAT, "carol", "with my picture", avatar_url=picture)
    await alice.wait_for_event(room_id, from_sender(ghost))
    profile = await alice.request("GET", f"/_matrix/client/v3/profile/{ghost}")
    assert (profile["displayname"], profile["avatar_url"]) == ("carol", picture)

    # A URL on a loopback address is never fetched by the bridge (SSRF): the message still
    # arrives, and the ghost keeps its picture.
    await memonet.say(CHAT, "carol", "new picture?", avatar_url="http://127.0.0.1:9/me.png")
    await alice.wait_for_event(room_id, lambda e: from_sender(ghost)(e) and e["content"]["body"] == "new picture?")
    profile = await alice.request("GET", f"/_matrix/client/v3/profile/{ghost}")
    assert profile["avatar_url"] == picture


async def test_membership_and_topic_follow_both_ways(
    start: Start, slot: AppserviceSlot, make_matrix_user: MakeMatrixUser
) -> None:
    _bridge, memonet = await start(virtual=True)
    alice = await make_matrix_user("alice")
    room_id = await linked_portal(alice, slot)
    # The bot may kick and set topics (alice, the room's creator, is above every level).
    levels = await alice.get_state(room_id, "m.room.power_levels")
    levels["users"] = {**levels.get("users", {}), slot.bot_user_id: 100}
    await alice.send_state(room_id, "m.room.power_levels", levels)
    dave = slot.ghost_user_id(f"{slot.connector}_dave")

    await memonet.membership(CHAT, "dave", "join")
    await alice.wait_for_membership(room_id, dave)
    await memonet.membership(CHAT, "dave", "kick", by="erin")
    kicked = await alice.wait_for_event(room_id, lambda e: e["type"] == "m.room.member" and e.get("state_key") == dave
                                        and e["content"].get("membership") == "leave" and e["sender"] != dave)
    assert "erin" in kicked["content"].get("reason", "")
    await memonet.membership(CHAT, "dave", "join")
    await alice.wait_for_event(room_id, lambda e: e["type"] == "m.room.member" and e.get("state_key") == dave
                               and e["content"].get("membership") == "join"
                               and e["origin_server_ts"] > kicked["origin_server_ts"])
    await memonet.membership(CHAT, "dave", "leave")
    await alice.wait_for_event(room_id, lambda e: e["type"] == "m.room.member" and e.get("state_key") == dave
                               and e["content"].get("membership") == "leave" and e["sender"] == dave)

    await memonet.set_topic(CHAT, "dave", "memonet topic")
    topic = await alice.wait_for_event(room_id, lambda e: e["type"] == "m.room.topic")
    assert topic["content"]["topic"] == "memonet topic"

    nick = alice.user_id.split(":")[0].lstrip("@") + "[m]"
    await alice.send_text(room_id, "hello")  # opens her own identity on memonet
    await memonet.wait_for(CHAT, lambda p: p["sender"] == nick)
    await alice.send_state(room_id, "m.room.topic", {"topic": "set on Matrix"})
    await memonet.wait_for_presence(CHAT, lambda s: s["topic"] == "set on Matrix")
    await alice.leave(room_id)
    await memonet.wait_for_presence(CHAT, lambda s: nick not in s["members"])
