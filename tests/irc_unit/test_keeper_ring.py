"""Several keepers sharing a network's connections: the ring that places a connection, and what
each keeper decides alone from the owners and leases in Redis (``bridges/irc/keeper/ring.py``)."""

from __future__ import annotations

from collections import Counter

from bridges.irc.keeper.ring import HashRing, Unfinished, live_members, to_take
from bridges.irc.keeper.sharing import from_start

CONNS = [f"libera/@user{n}:example.org" for n in range(6000)]


def shares(ring: HashRing) -> Counter[str | None]:
    return Counter(ring.owner(conn) for conn in CONNS)


def test_each_keeper_gets_about_its_share() -> None:
    for members in (["k1", "k2"], ["k1", "k2", "k3"], [f"k{n}" for n in range(1, 9)]):
        counted = shares(HashRing(members))
        fair = len(CONNS) / len(members)
        assert set(counted) == set(members)
        assert all(abs(count - fair) / fair < 0.15 for count in counted.values()), counted


def test_a_keeper_added_takes_only_what_becomes_its_own() -> None:
    before, after = HashRing(["k1", "k2", "k3"]), HashRing(["k1", "k2", "k3", "k4"])
    moved = [conn for conn in CONNS if before.owner(conn) != after.owner(conn)]
    assert all(after.owner(conn) == "k4" for conn in moved)
    assert abs(len(moved) - len(CONNS) / 4) / (len(CONNS) / 4) < 0.15  # about its share, no more


def test_a_keeper_removed_gives_up_only_its_own() -> None:
    before, after = HashRing(["k1", "k2", "k3"]), HashRing(["k1", "k3"])
    moved = [conn for conn in CONNS if before.owner(conn) != after.owner(conn)]
    assert moved
    assert all(before.owner(conn) == "k2" for conn in moved)
    assert len(moved) == sum(1 for conn in CONNS if before.owner(conn) == "k2")


def test_the_same_members_in_any_order_place_alike() -> None:
    assert [HashRing(["a", "b", "c"]).owner(c) for c in CONNS[:200]] == \
        [HashRing(["c", "a", "b"]).owner(c) for c in CONNS[:200]]
    assert HashRing([]).owner("libera/~bot") is None


def test_only_leases_not_expired_are_alive() -> None:
    assert live_members({"k1": 100.0, "k2": 99.0, "k3": 101.0}, 100.0) == {"k3"}


def test_survivors_take_a_dead_keepers_connections_between_them_once_each() -> None:
    ring = HashRing(["k1", "k2", "k3"])
    owners = {conn: str(ring.owner(conn)) for conn in CONNS}
    taken = {me: to_take(owners, {"k1", "k3"}, me) for me in ("k1", "k3")}
    dead_ones = sorted(conn for conn, owner in owners.items() if owner == "k2")
    assert sorted(taken["k1"] + taken["k3"]) == dead_ones  # all of them, none twice
    assert taken["k1"]
    assert taken["k3"]
    assert to_take(owners, {"k1", "k2", "k3"}, "k1") == []  # nobody dead: nothing moves


def test_a_keeper_that_comes_back_takes_nothing_back() -> None:
    """k2 died, k1 and k3 took its connections; k2 is alive again: the owners say k1 and k3, whose
    leases are live, so nobody takes anything (new connections only go to k2 by the ring)."""
    ring = HashRing(["k1", "k2", "k3"])
    owners = {conn: str(ring.owner(conn)) for conn in CONNS}
    for me in ("k1", "k3"):
        for conn in to_take(owners, {"k1", "k3"}, me):
            owners[conn] = me
    assert "k2" not in owners.values()
    assert all(to_take(owners, {"k1", "k2", "k3"}, me) == [] for me in ("k1", "k2", "k3"))


def test_a_keeper_whose_own_lease_lapsed_takes_nothing() -> None:
    assert to_take({"libera/~bot": "k2"}, {"k3"}, "k1") == []


def test_the_resume_point_stays_at_the_oldest_unfinished_command() -> None:
    unfinished = Unfinished()
    for entry in ("5-0", "6-0", "7-0"):
        unfinished.started("c", entry)
    unfinished.started("other", "6-1")
    assert unfinished.finished("c", "6-0") == "5-0"  # a "now" line done before the paced one ahead
    assert unfinished.finished("c", "5-0") == "7-0"
    assert unfinished.finished("c", "7-0") == "(7-0"  # all done: after the last one
    assert unfinished.finished("c", "7-0") is None  # (answered twice: nothing to record)
    assert unfinished.finished("other", "6-1") == "(6-1"


def test_a_new_owner_starts_where_the_resume_point_says() -> None:
    assert from_start("7-0", "(6-5")  # after the last one finished
    assert not from_start("6-5", "(6-5")
    assert from_start("6-5", "6-5")  # the oldest unfinished itself
    assert not from_start("6-4", "6-5")
    assert from_start("1-0", "-")  # nothing finished yet: from the first
