"""A media link posted in a busy channel: when the bridge has as many downloads open as it allows
(``bridgekit.media.MAX_OPEN``, counted by the framework), the next reader gets 503 with
Retry-After, not an error page or a hung request."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import pytest
from fastapi import HTTPException
from starlette.responses import StreamingResponse

from bridgekit import MediaBusy, MediaDownload, SigningKey
from bridges.irc.http_routes import IrcRoutes
from bridges.irc.media_links import MediaLinks
from bridges.irc.records import IrcRecords
from bridges.irc.settings import IrcSettings
from tests.support.contexts import hand_built_context

MXC = "mxc://example.org/AbCdEf0123"


class Homeserver:
    def __init__(self) -> None:
        self.busy = False

    @contextlib.asynccontextmanager
    async def open(self, mxc: str, *, max_bytes: int) -> AsyncIterator[MediaDownload]:
        if self.busy:
            raise MediaBusy("8 downloads are open already")

        async def chunks() -> AsyncIterator[bytes]:
            yield b"data"

        yield MediaDownload("image/png", 4, chunks())


def network(homeserver: Homeserver) -> tuple[IrcRoutes, list[str]]:
    links = MediaLinks(SigningKey(b"k" * 32), "net", lifetime_seconds=3600)
    ctx = hand_built_context("net", IrcSettings(server="irc.test"), media=homeserver)
    routes = IrcRoutes(ctx, IrcRecords(None, "net"), links=links)
    minted = links.mint(MXC)
    assert minted is not None
    return routes, minted.split("/")


async def test_a_busy_bridge_answers_503_with_retry_after_and_serves_once_a_place_is_free() -> None:
    homeserver = Homeserver()
    routes, (server, media_id, token) = network(homeserver)
    homeserver.busy = True
    with pytest.raises(HTTPException) as refused:
        await routes.serve_media(server, media_id, token, "a.png")
    assert (refused.value.status_code, refused.value.headers) == (503, {"Retry-After": "5"})
    homeserver.busy = False
    served = await routes.serve_media(server, media_id, token, "a.png")
    assert isinstance(served, StreamingResponse)
    assert [chunk async for chunk in served.body_iterator] == [b"data"]
