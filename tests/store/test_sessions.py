"""LoginStore: puppet logins (credentials as the caller encrypted them), on SQLite and PostgreSQL."""

from __future__ import annotations

from bridgekit.store import Database
from bridgekit.store.sessions import LoginStore


async def test_a_login_is_stored_replaced_listed_and_removed(database: Database) -> None:
    logins = LoginStore(database)
    await logins.save("memonet", "@alice:hs", "alice_m", "Alice", "v1:key:sealed", "connecting")
    await logins.save("irc", "@alice:hs", "alice", "alice", None, "connecting")
    await logins.save("memonet", "@bob:hs", "bob_m", "Bob", "v1:key:other", "connecting")

    # Logging in again replaces the login (new account, new credentials), never adds a second.
    await logins.save("memonet", "@alice:hs", "alice2", "Alice Two", "v1:key:new", "connecting")
    await logins.set_state("memonet", "@alice:hs", "bad-credentials", "password changed")
    alice = await logins.logins("@alice:hs")
    assert [(s.network, s.remote_user_id, s.credentials, s.state, s.state_error) for s in alice] == [
        ("irc", "alice", None, "connecting", None),
        ("memonet", "alice2", "v1:key:new", "bad-credentials", "password changed"),
    ]
    assert len(await logins.logins()) == 3

    assert await logins.remove("memonet", "@alice:hs") is True
    assert await logins.remove("memonet", "@alice:hs") is False
    assert [s.network for s in await logins.logins("@alice:hs")] == ["irc"]
