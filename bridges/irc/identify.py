"""A puppeted connection proves whose account it is: SASL PLAIN during registration when the server
offers it, else NickServ IDENTIFY after the welcome.

Pure: :class:`Identification` hears the connection's events and answers with the lines to write
(built in ``lines.py``); ``connection_state.py`` asks it, ``link.py`` does the writing. It runs
wherever the connection lives (the bridge process or a connection keeper), with the
:class:`~bridges.irc.account_login.AccountLogin` the link was made with.

SASL (IRCv3 ``sasl`` 3.1/3.2): ``CAP LS 302`` goes out before NICK/USER, so the server holds
registration; when ``sasl`` is offered (with PLAIN among its mechanisms, if it lists them):
``CAP REQ :sasl``, ``AUTHENTICATE PLAIN``, the base64 payload in 400-byte chunks, then
``CAP END`` after 903. A failure (904, 905, 906, 902) hangs up with the server's reason: a
wrong password is never retried and never falls back to an unidentified connection.

NickServ: the identify line is the network's template (``IDENTIFY {account} {password}``) sent to
its NickServ nick; the answer is read from NickServ's notices (Atheme's and Anope's wording) or the
900 numeric (``RPL_LOGGEDIN``) that servers linked to services send.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from enum import Enum

import irc.client

from bridges.irc import lines
from bridges.irc.account_login import AccountLogin
from bridges.irc.formatting import strip_formatting
from bridges.irc.lines import Line

CHUNK = 400
"""AUTHENTICATE carries at most 400 bytes of base64 per line."""
SASL_FAILED = frozenset({"saslfail", "sasltoolong", "saslaborted", "nicklocked"})
"""904, 905, 906, 902: the server's reason is their last argument."""

NICKSERV_ACCEPTED = re.compile(r"you are now (identified|logged in)|password accepted", re.IGNORECASE)
NICKSERV_REFUSED = re.compile(
    r"invalid password|incorrect password|password incorrect|is not (a )?registered|not registered"
    r"|authentication failed|failed to identify|you have failed|frozen|suspended",
    re.IGNORECASE,
)


class Phase(Enum):
    CAPS = "waiting for CAP LS"
    SASL = "authenticating (SASL)"
    WELCOME = "waiting for the welcome (NickServ after it)"
    NICKSERV = "waiting for NickServ"
    DONE = "identified"
    FAILED = "refused"


@dataclass(frozen=True)
class NickServ:
    nick: str = "NickServ"
    identify: str = "IDENTIFY {account} {password}"


@dataclass(frozen=True)
class Step:
    """What the connection does about one event the identification took."""

    send: tuple[Line, ...] = ()
    hang_up: bool = False


def plain_chunks(account: str, password: str) -> list[str]:
    """The SASL PLAIN payload (authzid, authcid, password), base64, in AUTHENTICATE chunks: a
    payload whose last chunk is exactly 400 bytes (or that is empty) ends with ``+``."""
    encoded = base64.b64encode(f"{account}\0{account}\0{password}".encode()).decode("ascii")
    chunks = [encoded[i : i + CHUNK] for i in range(0, len(encoded), CHUNK)]
    if not chunks or len(chunks[-1]) == CHUNK:
        chunks.append("+")
    return chunks


class Identification:
    def __init__(self, login: AccountLogin, nickserv: NickServ | None = None) -> None:
        self.login = login
        self.nickserv = nickserv or NickServ()
        self.phase = Phase.CAPS
        self.failure: str | None = None
        """Why the server refused the account (shown to the user as it is)."""
        self.account: str | None = None
        """The account the server says we are logged in as (900), once it says so."""
        self._offered: dict[str, str] = {}

    @property
    def settled(self) -> bool:
        return self.phase in (Phase.DONE, Phase.FAILED)

    @property
    def identified(self) -> bool:
        return self.phase is Phase.DONE

    def opening(self) -> tuple[Line, ...]:
        """Written before PASS/NICK/USER."""
        self.phase, self.failure, self.account, self._offered = Phase.CAPS, None, None, {}
        return (lines.cap_ls(),)

    def hear(self, event: irc.client.Event) -> Step | None:
        """None: not an event of the identification (the connection handles it as usual)."""
        kind, arguments = event.type, [str(a) for a in event.arguments]
        if kind == "loggedin":  # 900 :You are now logged in as <account>
            self.account = arguments[1] if len(arguments) > 1 else self.login.account
            if self.phase is Phase.NICKSERV:
                self.phase = Phase.DONE
            return Step()
        if self.settled:
            return None
        if kind == "cap" and arguments:
            return self._cap(arguments)
        if kind == "authenticate" and self.phase is Phase.SASL and str(event.target) == "+":
            return Step(tuple(lines.authenticate(chunk) for chunk in plain_chunks(self.login.account,
                                                                                 self.login.password)))
        if kind == "saslsuccess" and self.phase is Phase.SASL:
            self.phase = Phase.DONE
            return Step((lines.cap_end(),))
        if kind in SASL_FAILED and self.phase is Phase.SASL:
            return self._refused(f"SASL: {arguments[-1] if arguments else kind}")
        if kind == "saslmechs":
            return Step()  # 908 lists the mechanisms; 904 follows
        if kind == "privnotice" and self.phase is Phase.NICKSERV and _from(event, self.nickserv.nick):
            return self._nickserv_said(strip_formatting(arguments[0] if arguments else ""))
        return None

    def after_welcome(self) -> tuple[Line, ...]:
        """NickServ IDENTIFY, when SASL was not offered (or the server never answered CAP LS: a
        server without IRCv3 registers without it)."""
        if self.phase is Phase.CAPS:
            self._without_sasl("the server does not offer SASL PLAIN")
        if self.phase is not Phase.WELCOME:
            return ()
        self.phase = Phase.NICKSERV
        text = self.nickserv.identify.format(account=self.login.account, password=self.login.password)
        return (lines.privmsg(self.nickserv.nick, text),)

    # ---- steps ------------------------------------------------------------------------------

    def _cap(self, arguments: list[str]) -> Step | None:
        sub = arguments[0].upper()
        if sub == "LS" and self.phase is Phase.CAPS:
            for item in arguments[-1].split():
                name, _, value = item.partition("=")
                self._offered[name] = value
            if len(arguments) > 2 and arguments[1] == "*":
                return Step()  # more CAP LS lines follow (302)
            return self._offers_known()
        if self.phase is not Phase.SASL or "sasl" not in arguments[-1].split():
            return None
        if sub == "ACK":
            return Step((lines.authenticate("PLAIN"),))
        if sub == "NAK":
            return self._without_sasl("the server refused the sasl capability")
        return None

    def _offers_known(self) -> Step:
        mechanisms = self._offered.get("sasl")
        plain = mechanisms is not None and (not mechanisms or "PLAIN" in mechanisms.upper().split(","))
        if plain and self.login.method != "nickserv":
            self.phase = Phase.SASL
            return Step((lines.cap_request(["sasl"]),))
        return self._without_sasl("the server does not offer SASL PLAIN")

    def _without_sasl(self, why: str) -> Step:
        if self.login.method == "sasl":
            return self._refused(why)
        self.phase = Phase.WELCOME
        return Step((lines.cap_end(),))

    def _nickserv_said(self, text: str) -> Step:
        if NICKSERV_REFUSED.search(text):
            return self._refused(f"{self.nickserv.nick}: {text}")
        if NICKSERV_ACCEPTED.search(text):
            self.phase = Phase.DONE
            return Step()
        return Step()  # "This nickname is registered...": not the answer, and no news to the user

    def _refused(self, why: str) -> Step:
        self.phase, self.failure = Phase.FAILED, why
        return Step(hang_up=True)


def _from(event: irc.client.Event, nick: str) -> bool:
    source = getattr(event.source, "nick", None) or str(event.source)
    return str(source).lower() == nick.lower()


__all__ = ["CHUNK", "Identification", "NickServ", "Phase", "Step", "plain_chunks"]
