"""A logged-in user's own connection (``puppets.py``) with a stand-in link: it is made with their
account and nick (no ``[m]``), a refused account at login is one LoginFailed with the server's
words, and a dropped connection whose account is refused on reconnecting stops there
(``bad-credentials``) instead of trying again and again."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, cast

import pytest

from bridgekit import (
    BridgeContext,
    LoginFailed,
    PuppetLogin,
    RemoteUserID,
    SessionKind,
    SessionState,
    UserID,
)
from bridgekit.connector import MatrixAPI, RemoteSink
from bridgekit.testing.waiting import eventually
from bridges.irc.account_login import AccountLogin
from bridges.irc.link import AccountRefused, IrcLink
from bridges.irc.puppets import Puppets
from tests.irc_unit.stand_in import session_setup

ALICE = UserID("@alice:example.org")
LOGIN = PuppetLogin(RemoteUserID("alice"), "alice", {"account": "alice", "password": "pw"})


@dataclass
class Reports:
    seen: list[tuple[UserID | None, SessionState, str | None]] = field(default_factory=list)

    async def report_session(self, network: str, owner: UserID | None, state: SessionState,
                             detail: str | None) -> None:
        self.seen.append((owner, state, detail))


class StandInLink:
    """What a session asks of its link; ``refusals``: what each connect raises (None: connects)."""

    def __init__(self, nick: str, account: AccountLogin | None, refusals: list[Exception | None]) -> None:
        self.nick, self.account, self.refusals = nick, account, refusals
        self.connected = False
        self.connects = 0
        self.closed_with: str | None = None

    async def connect(self) -> None:
        self.connects += 1
        refusal = self.refusals.pop(0) if self.refusals else None
        if refusal is not None:
            raise refusal
        self.connected = True

    async def close(self, reason: str = "", **_: Any) -> None:
        self.connected, self.closed_with = False, reason

    def take_unsent(self) -> list[Any]:
        return []

    def requeue(self, lines: list[Any]) -> None:
        pass


def puppets_with(*refusals: Exception | None) -> tuple[Puppets, list[StandInLink], Reports]:
    setup = session_setup()
    reports = Reports()
    ctx = BridgeContext(name="net", settings=setup.settings, matrix=cast(MatrixAPI, None),
                        bot_user_id=UserID("@bot:example.org"), server_name="example.org", ghost_prefix="_",
                        alias_prefix="_", log=logging.getLogger("test"), remote=cast(RemoteSink, reports))
    links: list[StandInLink] = []

    def new_link(nick: str, *, account: AccountLogin | None = None, **_: Any) -> IrcLink:
        links.append(StandInLink(nick, account, list(refusals)))
        return cast(IrcLink, links[-1])

    return Puppets(ctx, setup, new_link), links, reports


async def test_the_connection_is_their_account_with_their_own_nick() -> None:
    puppets, links, _ = puppets_with()
    session = await puppets.connect(ALICE, LOGIN)
    assert session.kind is SessionKind.PUPPET
    assert links[0].nick == "alice"  # no [m]
    assert links[0].account == AccountLogin("alice", "pw")
    assert puppets.of(session.link) is session


async def test_a_refused_login_is_one_attempt_and_the_servers_words() -> None:
    puppets, links, _ = puppets_with(AccountRefused("SASL: SASL authentication failed"))
    with pytest.raises(LoginFailed) as failed:
        await puppets.check(ALICE, {"account": "alice", "password": "wrong"})
    assert str(failed.value) == "SASL: SASL authentication failed"
    assert failed.value.bad_credentials
    assert [link.connects for link in links] == [1]
    assert links[0].closed_with is not None  # the checking connection does not stay


@pytest.mark.parametrize("answers", [{"account": "al ice", "password": "pw"}, {"account": "alice", "password": "a\nb"},
                                     {"account": "", "password": "pw"}])
async def test_an_account_or_password_that_would_break_a_line_is_refused_before_connecting(
    answers: dict[str, str],
) -> None:
    puppets, links, _ = puppets_with()
    with pytest.raises(LoginFailed):
        await puppets.check(ALICE, answers)
    assert links == []


async def test_a_drop_then_a_refused_account_stops_reconnecting() -> None:
    puppets, links, reports = puppets_with(None, AccountRefused("NickServ: Invalid password for alice."))
    session = await puppets.connect(ALICE, LOGIN)
    links[0].connected = False  # the server hung up
    await puppets.dropped(session)
    await eventually(lambda: any(state is SessionState.BAD_CREDENTIALS for _, state, _ in reports.seen))
    assert links[0].connects == 2  # the first connection and one try after the drop: no loop
    assert [state for _, state, _ in reports.seen] == [SessionState.TRANSIENT_DISCONNECT,
                                                       SessionState.BAD_CREDENTIALS]
