"""What the bridge and the IRC keeper say to each other (``bridges/irc/keeper/protocol.py``) and
how secrets travel (``sealing.py``): pure, no Redis."""

from __future__ import annotations

import json

import irc.client
import pytest

from bridgekit import ConfigError, CredentialCipher, CredentialError
from bridgekit.credentials import generate_key
from bridges.irc.account_login import AccountLogin
from bridges.irc.connection_state import ConnectionState
from bridges.irc.keeper import protocol as p
from bridges.irc.keeper.sealing import seal, unseal


def test_an_event_survives_the_stream_with_its_tags_and_the_servers_time() -> None:
    event = irc.client.Event("pubmsg", irc.client.NickMask("bob!b@host"), "#room", ["hi :) there"],
                             [{"key": "time", "value": "2026-01-02T03:04:05.678Z"}, {"key": "msgid", "value": "x1"}])
    fields = p.encode_event("libera/~bot", event, received_at=0.0)
    assert all(isinstance(value, str) for value in fields.values())  # what a stream entry holds
    conn, back = p.decode_event(fields)
    assert conn == "libera/~bot"
    assert (back.type, back.source, back.source.nick, back.target) == ("pubmsg", "bob!b@host", "bob", "#room")
    assert back.arguments == ["hi :) there"]
    assert p.tag_of(back, "time") == "2026-01-02T03:04:05.678Z"  # the server's, not the keeper's
    assert p.tag_of(back, "msgid") == "x1"


def test_without_server_time_the_keepers_receive_time_is_kept() -> None:
    event = irc.client.Event("pubmsg", irc.client.NickMask("bob!b@host"), "#room", ["hi"])
    _conn, back = p.decode_event(p.encode_event("n/~bot", event, received_at=1_700_000_000.25))
    assert p.tag_of(back, "time") == "2023-11-14T22:13:20.250Z"


def test_an_event_without_source_or_target_decodes() -> None:
    event = irc.client.Event("error", None, None, ["Closing link"])
    _conn, back = p.decode_event(p.encode_event("n/@a:x", event, 0.0))
    assert (back.source, back.target, back.arguments) == (None, None, ["Closing link"])


def test_commands_and_results_round_trip_and_unknown_commands_are_refused() -> None:
    command = p.Command("send", "n/@alice:x", "r1", {"command": "PRIVMSG", "params": ["#a"], "trailing": "hi",
                                                      "key": "$ev/0"})
    assert p.Command.decode(command.encode()) == command
    result = p.Result("r1", False, "no such connection", {"repeat": True})
    assert p.Result.decode(result.encode()) == result
    with pytest.raises(ValueError, match="unknown keeper command"):
        p.Command.decode({**command.encode(), "op": "eval"})


def test_a_version_mismatch_says_which_side_to_upgrade() -> None:
    assert p.version_problem(p.PROTOCOL_VERSION, we_are="bridge") is None
    newer_keeper = p.version_problem(p.PROTOCOL_VERSION + 1, we_are="bridge")
    assert newer_keeper is not None
    assert "upgrade the bridge" in newer_keeper
    older_bridge = p.version_problem(p.PROTOCOL_VERSION - 1, we_are="keeper")
    assert older_bridge is not None
    assert "upgrade the bridge" in older_bridge
    older_keeper = p.version_problem(1, we_are="bridge", ours=2)
    assert older_keeper is not None
    assert "upgrade the keeper" in older_keeper
    assert "upgrade" in (p.version_problem("garbage", we_are="keeper") or "")


def test_stream_ids_compare_by_time_then_sequence() -> None:
    assert p.stream_id_after("5-0", None)
    assert p.stream_id_after("10-0", "9-5")  # not as text: "10" < "9"
    assert p.stream_id_after("9-10", "9-9")
    assert not p.stream_id_after("9-9", "9-9")
    assert not p.stream_id_after("8-99", "9-0")


def test_a_snapshot_gives_an_adopting_bridge_the_connections_state() -> None:
    state = ConnectionState("alice[m]", members=True)
    for event in (
        irc.client.Event("welcome", None, "alice[m]", ["Welcome"]),
        irc.client.Event("featurelist", None, "alice[m]", ["CASEMAPPING=ascii", "NICKLEN=20", "are supported"]),
        irc.client.Event("cap", None, "*", ["ACK", "echo-message server-time"]),
        irc.client.Event("join", irc.client.NickMask("alice[m]!a@h"), "#Room", []),
        irc.client.Event("namreply", None, "alice[m]", ["=", "#Room", "@bob alice[m]"]),
    ):
        state.hear(event)
    mirror = ConnectionState("someone")
    p.restore(mirror, p.snapshot(state))
    assert (mirror.nick, mirror.registered, mirror.echo, mirror.nicklen) == ("alice[m]", True, True, 20)
    assert mirror.channels["#room"].name == "#Room"
    assert mirror.channels["#room"].members == {"bob": "bob", "alice[m]": "alice[m]"}
    assert mirror.channels["#room"].prefixes == {"bob": {"o"}}


def test_a_list_answer_carries_each_isupport_once_and_adopted_links_get_theirs() -> None:
    def registered(nick: str, *features: str) -> ConnectionState:
        state = ConnectionState(nick)
        state.hear(irc.client.Event("welcome", None, nick, ["Welcome"]))
        state.hear(irc.client.Event("featurelist", None, nick, [*features, "are supported"]))
        return state

    states = [registered(f"u{n}[m]", "CASEMAPPING=ascii", "NICKLEN=20") for n in range(3)]
    other = registered("v[m]", "NICKLEN=9")  # another server's
    spec = p.ConnectionSpec("n/@u:x", "n", "irc.example", 6697, True, "u[m]", "u", "u")
    answer = p.list_answer([(f"c{n}", state, spec) for n, state in enumerate([*states, other])])

    sent = json.loads(json.dumps(answer))  # as it travels
    assert len(json.dumps(sent["isupports"])) < len(json.dumps(sent))
    assert [table["NICKLEN"] for table in sent["isupports"]] == ["20", "9"]  # each once
    connections = p.resolve_isupports(sent)["connections"]
    mirrors = {conn: ConnectionState("someone") for conn in connections}
    for conn, mirror in mirrors.items():
        p.restore(mirror, connections[conn])
    assert [(m.nick, m.nicklen, m.casemapping) for m in mirrors.values()] == [
        ("u0[m]", 20, "ascii"), ("u1[m]", 20, "ascii"), ("u2[m]", 20, "ascii"), ("v[m]", 9, "rfc1459")]
    assert mirrors["c0"].isupport is mirrors["c2"].isupport  # one shared mapping, not a copy each
    assert p.ConnectionSpec.from_dict(sent["specs"]["c3"]) == spec


def test_a_connection_spec_round_trips() -> None:
    spec = p.ConnectionSpec("n/~bot", "n", "irc.example", 6697, True, "bot", "bridge", "Matrix bridge",
                            caps=("server-time",), next_nicks=("bot1", "bot2"), members=True)
    assert p.ConnectionSpec.from_json(spec.to_json()) == spec


def test_secrets_travel_sealed_and_only_for_their_connection() -> None:
    cipher = CredentialCipher(generate_key())
    login = AccountLogin("alice", "hunter2-account", "sasl")
    sealed = seal(cipher, "n/@alice:x", password="server-pass", account=login)
    assert sealed is not None
    assert "hunter2" not in sealed
    assert "server-pass" not in sealed
    password, account = unseal(cipher, "n/@alice:x", sealed)
    assert (password, account) == ("server-pass", login)
    with pytest.raises(CredentialError):
        unseal(cipher, "n/@mallory:x", sealed)  # copied onto another connection: refused
    assert seal(cipher, "n/~bot", password=None, account=None) is None


def test_a_secret_without_a_key_is_refused_not_sent_in_plaintext() -> None:
    with pytest.raises(ConfigError, match="BRIDGEKIT_CREDENTIALS_KEY"):
        seal(None, "n/~bot", password="server-pass", account=None)


def test_a_users_virtual_connection_puppet_and_login_check_have_ids_of_their_own() -> None:
    ids = {kind: p.connection_id("n", "@alice:x", kind) for kind in ("user", "puppet", "login")}
    assert ids == {"user": "n/@alice:x", "puppet": "n/~puppet/@alice:x", "login": "n/~login/@alice:x"}
    assert p.connection_id("n", None) == "n/~bot"
    for kind, conn in ids.items():
        assert p.connection_owner(conn) == (kind, "@alice:x")
    assert p.connection_owner("n/~bot") == ("bot", None)


def test_a_spec_carries_nickserv_and_reads_an_older_or_newer_one() -> None:
    spec = p.ConnectionSpec("n/~puppet/@a:x", "n", "irc.example", 6667, False, "alice", "a", "alice",
                            nickserv_nick="NS", nickserv_identify="LOGIN {account} {password}")
    assert p.ConnectionSpec.from_json(spec.to_json()) == spec
    older = json.loads(spec.to_json())
    del older["nickserv_nick"], older["nickserv_identify"]  # kept in Redis by a keeper of protocol 1
    assert p.ConnectionSpec.from_json(json.dumps(older)).nickserv_nick == "NickServ"
    newer = {**json.loads(spec.to_json()), "something_later": 1}
    assert p.ConnectionSpec.from_json(json.dumps(newer)) == spec


def test_a_keepers_gap_crosses_the_inbound_stream_as_an_entry_no_link_has() -> None:
    fields = p.encode_event(p.gap_connection("libera"), p.gap_event("k1", 1000.5, 1012.25), received_at=1012.25)
    conn, event = p.decode_event(fields)
    assert conn == "libera/~keeper"
    assert conn not in {p.connection_id("libera", owner, kind)  # a bridge that does not know gaps passes it by
                        for owner in ("@a:hs", None) for kind in ("bot", "user", "puppet", "login")}
    assert p.gap_of(event) == ("k1", 1000.5, 1012.25)
    heard = irc.client.Event("pubmsg", irc.client.NickMask("bob!b@host"), "#room", ["1", "2"])
    assert p.gap_of(heard) is None  # anything else heard is no gap
    assert p.gap_of(irc.client.Event(p.GAP_EVENT, None, "k1", ["soon", "later"])) is None  # junk: none
