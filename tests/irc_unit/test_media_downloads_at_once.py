"""A media link posted in a busy channel: only so many downloads run at once (each holds a
connection of the bot's Matrix client, which every Matrix send shares); the rest get 503 with
Retry-After, and a finished or failed download frees its place."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from types import SimpleNamespace

import pytest
from fastapi import HTTPException
from starlette.responses import StreamingResponse

from bridgekit import MediaDownload, MediaUnavailable, SigningKey
from bridges.irc.connector import MEDIA_DOWNLOADS_AT_ONCE, IrcConnector
from bridges.irc.media_links import MediaLinks
from bridges.irc.settings import IrcSettings

MXC = "mxc://example.org/AbCdEf0123"


class Homeserver:
    def __init__(self) -> None:
        self.open = 0
        self.missing = False

    @contextlib.asynccontextmanager
    async def open_media(self, mxc: str, *, max_bytes: int) -> AsyncIterator[MediaDownload]:
        if self.missing:
            raise MediaUnavailable("gone")
        self.open += 1

        async def chunks() -> AsyncIterator[bytes]:
            yield b"data"

        try:
            yield MediaDownload("image/png", 4, chunks())
        finally:
            self.open -= 1


def network(homeserver: Homeserver) -> tuple[IrcConnector, list[str]]:
    connector = IrcConnector()
    connector.settings = IrcSettings(server="irc.test")
    connector._ctx = SimpleNamespace(open_media=homeserver.open_media)  # type: ignore[assignment]
    links = MediaLinks(SigningKey(b"k" * 32), "net", lifetime_seconds=3600)
    connector._media_links = links
    minted = links.mint(MXC)
    assert minted is not None
    return connector, minted.split("/")


async def test_past_the_limit_a_download_waits_its_turn_and_a_finished_one_frees_its_place() -> None:
    homeserver = Homeserver()
    connector, (server, media_id, token) = network(homeserver)
    serving = [await connector._serve_media(server, media_id, token, "a.png") for _ in range(MEDIA_DOWNLOADS_AT_ONCE)]
    with pytest.raises(HTTPException) as refused:
        await connector._serve_media(server, media_id, token, "a.png")
    assert (refused.value.status_code, refused.value.headers) == (503, {"Retry-After": "5"})

    first = serving[0]
    assert isinstance(first, StreamingResponse)
    assert [chunk async for chunk in first.body_iterator] == [b"data"]  # one download finishes
    assert first.background is not None
    await first.background()
    assert homeserver.open == MEDIA_DOWNLOADS_AT_ONCE - 1
    again = await connector._serve_media(server, media_id, token, "a.png")
    assert isinstance(again, StreamingResponse)


async def test_a_download_that_fails_to_open_frees_its_place() -> None:
    homeserver = Homeserver()
    homeserver.missing = True
    connector, (server, media_id, token) = network(homeserver)
    for _ in range(MEDIA_DOWNLOADS_AT_ONCE + 1):
        with pytest.raises(HTTPException) as missing:
            await connector._serve_media(server, media_id, token, "a.png")
        assert missing.value.status_code == 404
    homeserver.missing = False
    assert isinstance(await connector._serve_media(server, media_id, token, "a.png"), StreamingResponse)
