"""Nick and channel grammar (RFC 2812 §2.3.1 and the network's ISUPPORT): what may reach the wire."""

from __future__ import annotations

import pytest

from bridges.irc.connector import IrcConnector
from bridges.irc.grammar import IrcGrammar
from bridges.irc.settings import IrcSettings
from tests.support.contexts import hand_built_context

RFC = IrcGrammar()


@pytest.mark.parametrize("nick", ["alice", "Alice[m]", "[bot]", "a-1", "_x_", "`^{|}\\", "a" * 30])
def test_nicks_of_the_rfc_grammar_pass(nick: str) -> None:
    assert RFC.nick_problem(nick) is None


@pytest.mark.parametrize(("nick", "why"), [
    ("*", "starts with"),                    # MODE +b *!*@*: everyone banned
    ("a,b,c", "','"),                        # KICK #chan a,b,c: three people kicked
    ("alice!*@*", "'!'"),
    ("ali ce", "' '"),
    ("#chan", "starts with"),                # a private message that goes to a channel
    ("1abc", "starts with"),
    ("-abc", "starts with"),
    ("ali?e", "'?'"),
    ("al:ce", "':'"),
    ("al\rQUIT", "'\\r'"),
    ("", "empty"),
    ("a" * 31, "at most 30"),
    ("zoë", "'ë'"),                          # not on an ASCII network
])
def test_other_nicks_are_refused_with_the_reason(nick: str, why: str) -> None:
    problem = RFC.nick_problem(nick)
    assert problem is not None
    assert why in problem


def test_nicklen_comes_from_the_server() -> None:
    grammar = RFC.with_isupport({"NICKLEN": "9"})
    assert grammar.is_nick("a" * 9)
    assert not grammar.is_nick("a" * 10)


def test_a_utf8_network_accepts_letters_of_any_script_but_never_wildcards() -> None:
    grammar = RFC.with_isupport({}, casemapping="rfc7613")
    assert grammar.is_nick("zoë")
    assert grammar.is_nick("Дмитрий")
    assert not grammar.is_nick("zoë*")
    assert not grammar.is_nick("١abc")  # a digit first, in any script
    assert not grammar.is_nick("a\u200bb")  # an invisible format character


@pytest.mark.parametrize("channel", ["#python", "&local", "#a", "#ça-va", "#a.b[c]"])
def test_channels_of_the_grammar_pass(channel: str) -> None:
    assert RFC.channel_problem(channel) is None


@pytest.mark.parametrize("channel", [
    "#a,#b", "#a b", "#a:b", "#*.org", "#ab?", "#a\x07", "#a\x00", "#", "python", "+modeless", "!12345ab",
    "#" + "a" * 64,
])
def test_other_channels_are_refused(channel: str) -> None:
    assert RFC.channel_problem(channel) is not None


def test_chantypes_and_channellen_come_from_the_server() -> None:
    grammar = RFC.with_isupport({"CHANTYPES": "#", "CHANNELLEN": "10"})
    assert grammar.is_channel("#python")
    assert not grammar.is_channel("&local")  # InspIRCd has no & channels
    assert not grammar.is_channel("#" + "a" * 10)
    assert not RFC.with_isupport({"CHANTYPES": ""}).is_channel("#python")  # a network without channels


def test_an_alias_or_link_name_gets_the_channel_prefix() -> None:
    assert RFC.as_channel("python") == "#python"
    assert RFC.as_channel("&local") == "&local"
    assert RFC.with_isupport({"CHANTYPES": "&"}).as_channel("local") == "&local"
    inspircd = RFC.with_isupport({"CHANTYPES": "#"})
    assert not inspircd.is_channel(inspircd.as_channel("&local"))  # not quietly #&local


async def test_aliases_and_link_commands_make_portals_only_of_channel_names() -> None:
    # Before start: the RFC's grammar, rfc1459 folding.
    connector = IrcConnector(hand_built_context("net", IrcSettings(server="irc.test")))
    assert (await connector.portal_for_alias("#Python")) is not None
    info = await connector.portal_for_alias("python")
    assert info is not None
    assert info.chat_id == "#python"
    for name in ("#a,#b", "#*.org", "a b", "#a\x07b", "#"):
        assert await connector.portal_for_alias(name) is None, name
