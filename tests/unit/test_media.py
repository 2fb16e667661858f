"""Matrix media streamed out (``bridgekit/media.py``): capped, redirects only through the SSRF guard.

The homeserver and the storage it redirects to are one MockTransport; names resolve through a
fixed table, so "a private address" is decided by the guard exactly as in production.
"""

from __future__ import annotations

import contextlib
import ipaddress
from collections.abc import AsyncIterator

import httpx
import pytest

from bridgekit.guarded_http import GuardedHTTP
from bridgekit.ids import ContentURI, UserID
from bridgekit.matrix import MatrixClient
from bridgekit.media import MAX_OPEN, MatrixMedia, MediaBusy, MediaDownload, MediaTooLarge, MediaUnavailable
from bridgekit.ssrf import IPAddress
from tests.support.memory import InMemoryState

HS = "http://hs.test"
BOT = UserID("@bridgebot:hs.test")
MXC = "mxc://hs.test/file1"
ADDRESSES = {"cdn.example.com": "93.184.215.14", "internal.example.com": "10.0.0.7"}


class Network:
    """The homeserver (``hs.test``) and whatever it redirects to, by URL path."""

    def __init__(self) -> None:
        self.answers: dict[str, httpx.Response] = {}
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.answers.get(request.url.path, httpx.Response(404, json={"errcode": "M_NOT_FOUND"}))


async def resolve(host: str, _port: int) -> list[IPAddress]:
    return [ipaddress.ip_address(ADDRESSES[host])]


@pytest.fixture
async def network() -> Network:
    return Network()


@pytest.fixture
async def media(network: Network) -> AsyncIterator[MatrixMedia]:
    async with httpx.AsyncClient(transport=httpx.MockTransport(network)) as http:
        matrix = MatrixClient(http, homeserver_url=HS, as_token="as-token-secret", bot_user_id=BOT,
                              memory=InMemoryState())
        yield MatrixMedia(lambda mxc: matrix.bot.open_media(ContentURI(mxc)), GuardedHTTP(http, (), resolver=resolve))


DOWNLOAD = "/_matrix/client/v1/media/download/hs.test/file1"


async def read(download: MediaDownload) -> bytes:
    return b"".join([chunk async for chunk in download.chunks])


async def test_a_file_is_streamed_as_the_bot(media: MatrixMedia, network: Network) -> None:
    network.answers[DOWNLOAD] = httpx.Response(200, content=b"hello", headers={"Content-Type": "text/plain"})
    async with media.open(MXC, max_bytes=100) as download:
        assert download.content_type == "text/plain"
        assert await read(download) == b"hello"
    assert network.requests[0].headers["Authorization"] == "Bearer as-token-secret"
    assert network.requests[0].url.params["user_id"] == BOT


async def test_an_announced_size_over_the_cap_is_refused_before_reading(media: MatrixMedia, network: Network) -> None:
    network.answers[DOWNLOAD] = httpx.Response(200, content=b"x" * 101)
    with pytest.raises(MediaTooLarge):
        async with media.open(MXC, max_bytes=100):
            pytest.fail("opened a file over the cap")


async def test_an_unannounced_size_stops_at_the_cap(media: MatrixMedia, network: Network) -> None:
    async def endless() -> AsyncIterator[bytes]:
        for _ in range(1000):
            yield b"x" * 64

    network.answers[DOWNLOAD] = httpx.Response(200, content=endless())  # chunked: no Content-Length
    received: list[bytes] = []

    async def take_all() -> None:
        async with media.open(MXC, max_bytes=1000) as download:
            received.extend([chunk async for chunk in download.chunks])

    with pytest.raises(MediaTooLarge):
        await take_all()
    assert len(b"".join(received)) <= 1000


async def test_a_missing_file_is_unavailable(media: MatrixMedia) -> None:
    with pytest.raises(MediaUnavailable):
        async with media.open(MXC, max_bytes=100):
            pytest.fail("opened a missing file")


async def test_a_redirect_to_public_storage_is_followed_without_the_token(media: MatrixMedia, network: Network) -> None:
    network.answers[DOWNLOAD] = httpx.Response(307, headers={"Location": "https://cdn.example.com/blob/1"})
    network.answers["/blob/1"] = httpx.Response(200, content=b"from storage")
    async with media.open(MXC, max_bytes=100) as download:
        assert await read(download) == b"from storage"
    storage = network.requests[-1]
    assert storage.url.host == "93.184.215.14"  # the address the guard checked
    assert storage.headers["Host"] == "cdn.example.com"
    assert "Authorization" not in storage.headers


@pytest.mark.parametrize("location", [
    "https://internal.example.com/blob",  # a name resolving to a private address
    "http://127.0.0.1:8008/_matrix/admin",
    "http://169.254.169.254/latest/meta-data",
    "file:///etc/passwd",
])
async def test_a_redirect_into_private_networks_is_refused(media: MatrixMedia, network: Network, location: str) -> None:
    network.answers[DOWNLOAD] = httpx.Response(302, headers={"Location": location})
    with pytest.raises(MediaUnavailable):
        async with media.open(MXC, max_bytes=100):
            pytest.fail("followed a redirect into a private network")
    assert len(network.requests) == 1


async def test_three_redirects_are_followed_and_a_fourth_is_refused(media: MatrixMedia, network: Network) -> None:
    network.answers[DOWNLOAD] = httpx.Response(302, headers={"Location": "https://cdn.example.com/r1"})
    network.answers["/r1"] = httpx.Response(302, headers={"Location": "/r2"})  # relative to the CDN
    network.answers["/r2"] = httpx.Response(302, headers={"Location": "https://cdn.example.com/blob"})
    network.answers["/blob"] = httpx.Response(200, content=b"third hop")
    async with media.open(MXC, max_bytes=100) as download:
        assert await read(download) == b"third hop"
    assert network.requests[2].headers["Host"] == "cdn.example.com"

    network.answers["/blob"] = httpx.Response(302, headers={"Location": "https://cdn.example.com/blob"})
    with pytest.raises(MediaUnavailable, match="more than 3 redirects"):
        async with media.open(MXC, max_bytes=100):
            pytest.fail("followed a fourth redirect")


async def test_past_the_limit_a_download_waits_its_turn_and_a_finished_one_frees_its_place(
    media: MatrixMedia, network: Network
) -> None:
    # Each open download holds a connection of the bot's client, which every Matrix send shares.
    network.answers[DOWNLOAD] = httpx.Response(200, content=b"data")
    async with contextlib.AsyncExitStack() as held:
        first = contextlib.AsyncExitStack()
        await first.enter_async_context(media.open(MXC, max_bytes=100))
        for _ in range(MAX_OPEN - 1):
            await held.enter_async_context(media.open(MXC, max_bytes=100))
        with pytest.raises(MediaBusy):
            async with media.open(MXC, max_bytes=100):
                pytest.fail("opened more downloads than allowed")
        await first.aclose()  # one download finishes
        async with media.open(MXC, max_bytes=100) as download:
            assert await read(download) == b"data"


async def test_a_download_that_fails_to_open_frees_its_place(media: MatrixMedia, network: Network) -> None:
    for _ in range(MAX_OPEN + 1):
        with pytest.raises(MediaUnavailable):  # no such file: 404 from the homeserver
            async with media.open(MXC, max_bytes=100):
                pytest.fail("opened a missing file")
    network.answers[DOWNLOAD] = httpx.Response(200, content=b"data")
    async with media.open(MXC, max_bytes=100) as download:
        assert await read(download) == b"data"
