"""How a logged-in Matrix user's own IRC connection proves who it is (puppeted mode).

The seam between the accounts work (SASL, NickServ) and the connection keeper: a link is given an
:class:`AccountLogin` when it is made, and whoever runs the link (the bridge process, or a keeper
process holding the socket) identifies with it. It carries a password, so it never travels or is
stored in plaintext: the bridge keeps it sealed with the framework's ``CredentialCipher`` and a
keeper receives it sealed the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

LoginMethod = Literal["auto", "sasl", "nickserv"]
"""``auto``: SASL PLAIN when the server offers it, else NickServ IDENTIFY after registration."""


@dataclass(frozen=True)
class AccountLogin:
    account: str
    password: str
    method: LoginMethod = "auto"

    def __repr__(self) -> str:  # never a password in a log line or a traceback
        return f"AccountLogin(account={self.account!r}, method={self.method!r})"


__all__ = ["AccountLogin", "LoginMethod"]
