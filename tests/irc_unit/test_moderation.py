"""A Matrix moderator's kick or ban of a ghost, as IRC lines (or a refusal): ban masks included."""

from __future__ import annotations

import pytest

from bridges.irc.ban_masks import choose_ban_mask
from bridges.irc.casemapping import casefold_irc
from bridges.irc.grammar import IrcGrammar
from bridges.irc.known_users import BridgeIdentities, KnownUsers, UserHost
from bridges.irc.lines import Line
from bridges.irc.moderation import ModerationRequest, plan_moderation

BRIDGE = BridgeIdentities(idents={"bridge", "alice2bcde"}, hosts={"bridge.example.org"})


# ---- which mask ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("user", "bridge", "mask"), [
    # a confirmed ident: the narrowest mask, even on the bridge's host (bridged users have other idents)
    (UserHost("bob", "bob", "irc.example.net"), BRIDGE, "*!bob@irc.example.net"),
    (UserHost("bob", "bob", "bridge.example.org"), BRIDGE, "*!bob@bridge.example.org"),
    # an unconfirmed ident (~): the host, when nobody bridged comes from it
    (UserHost("bob", "~bob", "irc.example.net"), BRIDGE, "*!*@irc.example.net"),
    (UserHost("bob", None, "gateway/web/x"), BRIDGE, "*!*@gateway/web/x"),
    # the bridge's own ident elsewhere is just someone's ident
    (UserHost("eve", "bridge", "elsewhere.example"), BRIDGE, "*!bridge@elsewhere.example"),
    (UserHost("bob", "~bob", "2001:db8::1"), BRIDGE, "*!*@2001:db8::1"),
])
def test_the_narrowest_safe_mask(user: UserHost, bridge: BridgeIdentities, mask: str) -> None:
    assert choose_ban_mask(user, bridge).mask == mask


@pytest.mark.parametrize(("user", "bridge", "reason"), [
    (UserHost("bob", "~bob", "bridge.example.org"), BRIDGE, "is the bridge's own"),
    (UserHost("eve", "bridge", "bridge.example.org"), BRIDGE, "one of the bridge's own"),
    (UserHost("eve", "Bridge", "BRIDGE.example.org"), BRIDGE, "one of the bridge's own"),
    (UserHost("bob", "~bob", "irc.example.net"), BridgeIdentities(idents={"bridge"}), "own host yet"),
    (UserHost("bob", "bob", None), BRIDGE, "does not know bob's host"),
    (UserHost("bob", "~bob", "*"), BRIDGE, "does not know bob's host"),
    (UserHost("bob", "b*b", "bridge.example.org"), BRIDGE, "not known"),
])
def test_no_mask_when_none_is_safe(user: UserHost, bridge: BridgeIdentities, reason: str) -> None:
    choice = choose_ban_mask(user, bridge)
    assert choice.mask is None
    assert reason in choice.reason


def test_wildcards_from_the_user_never_widen_a_mask() -> None:
    for ident, host in [("*", "irc.example.net"), ("bob", "*.net"), ("b?b", "irc.example.net"), ("bob", "a@b")]:
        mask = choose_ban_mask(UserHost("bob", ident, host), BRIDGE).mask
        assert mask is None or mask.count("*") == (2 if mask.startswith("*!*@") else 1), mask


# ---- what is sent -------------------------------------------------------------------------------

def texts(lines: tuple[Line, ...]) -> list[str]:
    return [line.text for line in lines]


def fold(text: str) -> str:
    return casefold_irc(text, "rfc1459")


@pytest.fixture
def known() -> KnownUsers:
    users = KnownUsers(fold)
    users.saw("Spammer", "spam", "irc.example.net")
    users.saw("ann")
    users.saw("ben")
    users.saw("alice[m]", "alice2bcde", "bridge.example.org")
    return users


def plan(known: KnownUsers, folded: str, *, ban: bool = True, own: tuple[str, ...] = ("alice{m}",)):  # type: ignore[no-untyped-def]
    return plan_moderation(ModerationRequest("libera", "#chan", folded, ban, "no spam"), grammar=IrcGrammar(),
                           known=known, own_nicks=own, bridge=BRIDGE)


def test_a_ban_of_a_seen_user_sets_their_mask_then_kicks(known: KnownUsers) -> None:
    result = plan(known, "spammer")
    assert texts(result.lines) == ["MODE #chan +b *!spam@irc.example.net", "KICK #chan Spammer :no spam"]
    assert result.notice is None
    assert texts(plan(known, "spammer", ban=False).lines) == ["KICK #chan Spammer :no spam"]


@pytest.mark.parametrize("folded", ["*", "ann,ben", "*!*@*", "#chan", "ann ben"])
def test_made_up_ghosts_get_nothing_sent_and_the_moderator_is_told(known: KnownUsers, folded: str) -> None:
    result = plan(known, folded)
    assert result.lines == ()
    assert result.notice is not None
    assert "is not an IRC nick" in result.notice
    assert repr(folded) in result.notice


def test_a_valid_nick_the_bridge_never_saw_is_refused(known: KnownUsers) -> None:
    result = plan(known, "nobody", ban=False)
    assert result.lines == ()
    assert "has not seen anyone called nobody" in str(result.notice)


def test_a_bridged_matrix_users_connection_is_not_banned_from_irc(known: KnownUsers) -> None:
    result = plan(known, fold("alice[m]"))
    assert result.lines == ()
    assert "Matrix user's own connection" in str(result.notice)


def test_without_a_safe_mask_the_user_is_only_kicked_and_the_moderator_told_why(known: KnownUsers) -> None:
    known.saw("mallory", "~mal", "bridge.example.org")
    result = plan(known, "mallory")
    assert texts(result.lines) == ["KICK #chan mallory :no spam"]
    assert "no IRC ban was set" in str(result.notice)
    assert "bridge.example.org is the bridge's own" in str(result.notice)


def test_a_nick_change_keeps_what_was_known() -> None:
    users = KnownUsers(fold)
    users.saw("Bob", "bob", "irc.example.net")
    users.renamed("Bob", "Robert")
    assert users.get("robert") == UserHost("Robert", "bob", "irc.example.net")
    assert users.get("bob") is not None  # the ghost a moderator saw leave can still be acted on
    users.saw("Robert")  # a line without ident and host keeps them
    assert users.get("robert") == UserHost("Robert", "bob", "irc.example.net")


def test_the_memory_of_nicks_is_bounded() -> None:
    users = KnownUsers(fold, limit=2)
    for nick in ("a", "b", "c"):
        users.saw(nick)
    assert users.get("a") is None
    assert users.get("c") is not None
