"""The secrets of a connection (server password, account login) on their way to a keeper: sealed
with the framework's :class:`~bridgekit.CredentialCipher`, bound to the connection's ID, so Redis
(and anyone who can read it) only ever holds ciphertext.

Both sides take the key the bridge already uses for stored logins: ``BRIDGEKIT_CREDENTIALS_KEY``
or the file ``BRIDGEKIT_CREDENTIALS_KEY_FILE`` names (the keeper also reads
``secrets.credentials_key`` from the config file it is given)."""

from __future__ import annotations

import os
from collections.abc import Mapping

from bridgekit import ConfigError, CredentialCipher, load_key
from bridges.irc.account_login import AccountLogin, LoginMethod


def cipher_from(configured: str | None = None, environ: Mapping[str, str] = os.environ) -> CredentialCipher | None:
    """The cipher, or None when no key is set anywhere."""
    try:
        return CredentialCipher(load_key(configured=configured, environ=environ))
    except ConfigError as error:
        if "no credentials key" in str(error):
            return None
        raise


def seal(cipher: CredentialCipher | None, conn: str, *, password: str | None,
         account: AccountLogin | None) -> str | None:
    if password is None and account is None:
        return None
    if cipher is None:
        raise ConfigError(
            f"{conn}: a server password or account login must reach the IRC keeper sealed, and no "
            "credentials key is set: set BRIDGEKIT_CREDENTIALS_KEY (or BRIDGEKIT_CREDENTIALS_KEY_FILE) "
            "for both the bridge and the keeper (make one with 'bridgekit generate-key')"
        )
    data: dict[str, str] = {}
    if password is not None:
        data["password"] = password
    if account is not None:
        data.update(account=account.account, account_password=account.password, method=account.method)
    return cipher.encrypt(data, context=f"irc-keeper:{conn}")


def unseal(cipher: CredentialCipher | None, conn: str, sealed: str | None) -> tuple[str | None, AccountLogin | None]:
    if sealed is None:
        return None, None
    if cipher is None:
        raise ConfigError(f"{conn}: the bridge sent sealed credentials and this keeper has no credentials key")
    data = cipher.decrypt(sealed, context=f"irc-keeper:{conn}")
    account = None
    if "account" in data:
        method: LoginMethod = data.get("method", "auto")
        account = AccountLogin(str(data["account"]), str(data["account_password"]), method)
    password = data.get("password")
    return (None if password is None else str(password)), account


__all__ = ["cipher_from", "seal", "unseal"]
