"""A connection made with an account identifies before ``connect`` returns: SASL PLAIN on a server
that offers it, NickServ IDENTIFY on one that does not (Atheme on both); a wrong password is
refused with the server's own words."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from bridgekit.demo.irc_client import Line
from bridges.irc.account_login import AccountLogin, LoginMethod
from bridges.irc.link import AccountRefused, IrcLink
from tests.irc_fixtures import MakeIrcClient, unique_nick
from tests.servers.atheme import ServicesIRCd
from tests.services_fixtures import MakeAccount, Services

pytestmark = pytest.mark.integration

MakeLink = Callable[..., IrcLink]


@pytest.fixture
async def make_link() -> AsyncIterator[MakeLink]:
    links: list[IrcLink] = []

    def make(server: ServicesIRCd, nick: str, login: AccountLogin) -> IrcLink:
        link = IrcLink(host=server.host, port=server.port, tls=False, nick=nick, ident="puppet", realname="test",
                       on_event=lambda _link, _event: None, account=login)
        links.append(link)
        return link

    try:
        yield make
    finally:
        for link in links:
            await link.close()


def whois_account(nick: str) -> Callable[[Line], bool]:
    """330 RPL_WHOISACCOUNT: ``<me> <nick> <account> :is logged in as``."""
    return lambda line: line.command == "330" and len(line.params) > 2 and line.params[1] == nick


@pytest.mark.parametrize(("where", "method"), [("hub", "auto"), ("no_sasl", "auto"), ("hub", "nickserv")])
async def test_the_connection_is_identified_when_connect_returns(
    services: Services, make_account: MakeAccount, make_link: MakeLink, make_irc_client: MakeIrcClient,
    where: str, method: LoginMethod,
) -> None:
    server: ServicesIRCd = getattr(services, where)
    account = await make_account("ident")
    link = make_link(server, account.name, AccountLogin(account.name, account.password, method))
    await link.connect()
    assert link.nick == account.name
    observer = await make_irc_client("observer", server=server)
    observer.send_raw(f"WHOIS {link.nick}")
    said = await observer.wait_for(whois_account(link.nick))
    assert said.params[2].lower() == account.name.lower()


@pytest.mark.parametrize(("where", "reason"), [
    ("hub", "SASL: SASL authentication failed"),
    ("no_sasl", "NickServ: Invalid password for"),
])
async def test_a_wrong_password_is_refused_with_the_servers_reason_after_one_connection(
    services: Services, make_account: MakeAccount, make_link: MakeLink, where: str, reason: str,
) -> None:
    server: ServicesIRCd = getattr(services, where)
    account = await make_account("wrong")
    link = make_link(server, unique_nick("wrong"), AccountLogin(account.name, "not the password"))
    with pytest.raises(AccountRefused) as refused:
        await link.connect()
    assert str(refused.value).startswith(reason)
    assert not link.connected
