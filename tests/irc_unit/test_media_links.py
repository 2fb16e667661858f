"""Signed, expiring media links: minted for a file a message carries, refused when forged."""

from __future__ import annotations

import pytest

from bridgekit import SigningKey
from bridges.irc.media_links import MediaLinks

KEY = SigningKey(b"k" * 32)
MXC = "mxc://example.org/AbCdEf0123_-xyz"


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def links(clock: Clock) -> MediaLinks:
    return MediaLinks(KEY, "libera", lifetime_seconds=7 * 86_400, clock=clock)


def parts(minted: str | None) -> tuple[str, str, str]:
    assert minted is not None
    server, media_id, token = minted.split("/")
    return server, media_id, token


def test_a_minted_link_is_short_and_checks(links: MediaLinks) -> None:
    server, media_id, token = parts(links.mint(MXC))
    assert (server, media_id) == ("example.org", "AbCdEf0123_-xyz")
    assert len(token) <= 24  # base36 expiry, a dot, 96 bits of HMAC in base64url
    assert links.check(server, media_id, token)


def test_it_expires(links: MediaLinks, clock: Clock) -> None:
    server, media_id, token = parts(links.mint(MXC))
    clock.now += 7 * 86_400
    assert links.check(server, media_id, token)
    clock.now += 1
    assert not links.check(server, media_id, token)


def test_nothing_forged_checks(links: MediaLinks) -> None:
    server, media_id, token = parts(links.mint(MXC))
    expiry, tag = token.split(".")
    forged = [
        (server, media_id, ""),  # unsigned
        (server, media_id, expiry),
        (server, media_id, f"{expiry}."),
        (server, media_id, f"{expiry}.{'A' if tag[0] != 'A' else 'B'}{tag[1:]}"),  # another tag
        (server, media_id, f"{expiry}0.{tag}"),  # a later expiry
        (server, media_id, f"{expiry}.{tag[:-4]}"),  # a shorter tag
        (server, media_id, f"{expiry}.{tag}!!"),  # not base64url
        (server, "OtherFile", token),  # another file with this signature
        ("other.org", media_id, token),
        (server, media_id + "\0", token),
        (server, media_id, f"zzzzzzzzzzzzzzzz.{tag}"),
    ]
    assert [f for f in forged if links.check(*f)] == []


def test_a_link_is_for_one_network_and_one_key(links: MediaLinks, clock: Clock) -> None:
    server, media_id, token = parts(links.mint(MXC))
    assert not MediaLinks(KEY, "oftc", lifetime_seconds=60, clock=clock).check(server, media_id, token)
    assert not MediaLinks(SigningKey(b"o" * 32), "libera", lifetime_seconds=60, clock=clock).check(
        server, media_id, token)
    rotated = SigningKey(b"n" * 32, previous=(KEY.current,))  # the credentials key was rotated
    assert MediaLinks(rotated, "libera", lifetime_seconds=60, clock=clock).check(server, media_id, token)


@pytest.mark.parametrize("uri", [
    "https://example.org/a", "mxc://example.org", "mxc://example.org/", "mxc://ex ample.org/a",
    "mxc://example.org/a/b", "mxc://example.org/a%2f", "mxc:///abc",
])
def test_only_mxc_uris_of_the_spec_grammar_get_a_link(links: MediaLinks, uri: str) -> None:
    assert links.mint(uri) is None
