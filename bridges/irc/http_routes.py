"""The HTTP routes of one IRC network (``/irc/<network>/...``): long messages and Matrix files,
served to IRC users by link, since IRC carries neither. The links are minted here, as a Matrix
message is bridged (``media_links.py`` signs them), and the routes serve only what they name."""

from __future__ import annotations

import contextlib
import logging
import secrets
from collections.abc import AsyncIterator

from fastapi import APIRouter, HTTPException, Response
from fastapi.responses import PlainTextResponse, StreamingResponse
from starlette.background import BackgroundTask

from bridgekit import BridgeContext, MediaBusy, MediaTooLarge, MediaUnavailable
from bridges.irc.media_links import MediaLinks
from bridges.irc.records import IrcRecords
from bridges.irc.settings import IrcSettings

log = logging.getLogger(__name__)


class IrcRoutes:
    """``links`` is made from the connector's signing key at start (:meth:`start`), or given."""

    def __init__(self, ctx: BridgeContext, records: IrcRecords, *, links: MediaLinks | None = None) -> None:
        self._ctx = ctx
        self._settings: IrcSettings = ctx.settings
        self._records = records
        self._links = links

    async def start(self) -> None:
        ctx = self._ctx
        self._links = MediaLinks(await ctx.signing_key("media-links"), ctx.name,
                                 lifetime_seconds=self._settings.media_link_days * 86_400)

    def router(self) -> APIRouter:
        router = APIRouter(prefix=f"/irc/{self._ctx.name}")
        router.add_api_route("/text/{text_id}", self.serve_text, methods=["GET"])
        router.add_api_route("/media/{server}/{media_id}/{token}/{filename}", self.serve_media, methods=["GET"])
        return router

    # ---- links, as messages are bridged ------------------------------------------------------

    async def publish_text(self, text: str) -> str | None:
        """A link to ``text`` in full (a message too long for IRC), kept ``long_text_days``."""
        ctx = self._ctx
        if not ctx.public_url:
            return None
        text_id = secrets.token_urlsafe(12)
        await self._records.keep_text(text_id, text, days=self._settings.long_text_days)
        return f"{ctx.public_url.rstrip('/')}/irc/{ctx.name}/text/{text_id}"

    def media_link(self, mxc: str, filename: str) -> str | None:
        """A signed link to a file a Matrix message carries into a portal: minted only here, as
        the message is bridged (see ``media_links.py``)."""
        ctx = self._ctx
        signed = self._links.mint(mxc) if self._links is not None and ctx.public_url else None
        if signed is None or not ctx.public_url:
            return None
        return f"{ctx.public_url.rstrip('/')}/irc/{ctx.name}/media/{signed}/{safe_filename(filename)}"

    # ---- the routes --------------------------------------------------------------------------

    async def serve_text(self, text_id: str) -> PlainTextResponse:
        text = await self._records.text(text_id)
        if text is None:
            raise HTTPException(404, "no such message")
        return PlainTextResponse(text)

    async def serve_media(self, server: str, media_id: str, token: str, filename: str) -> Response:
        """A file behind a link :meth:`media_link` minted, streamed (at most ``media_max_mib``).
        An unsigned, altered or expired link is no link: 404, nothing fetched."""
        ctx, links = self._ctx, self._links
        if links is None or not links.check(server, media_id, token):
            raise HTTPException(404, "no such file")
        cap = int(self._settings.media_max_mib * 1024 * 1024)
        opened = contextlib.AsyncExitStack()
        try:
            download = await opened.enter_async_context(ctx.open_media(f"mxc://{server}/{media_id}", max_bytes=cap))
        except MediaBusy as error:
            raise HTTPException(503, "too many downloads at once; try again shortly",
                                headers={"Retry-After": "5"}) from error
        except MediaTooLarge as error:
            raise HTTPException(502, f"the file is larger than this bridge serves ({cap // 1048576} MiB)") from error
        except MediaUnavailable as error:
            log.info("%s: serving a media link failed: %s", ctx.name, error)
            raise HTTPException(404, "no such file") from error

        async def body() -> AsyncIterator[bytes]:
            try:
                async for chunk in download.chunks:
                    yield chunk  # past the cap this raises: the answer breaks off, short
            finally:
                await opened.aclose()

        headers = {
            # Served as a download: a bridge must not become a host of active content on its domain.
            "Content-Disposition": f'attachment; filename="{safe_filename(filename)}"',
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "sandbox",
        }
        if download.content_length is not None:
            headers["Content-Length"] = str(download.content_length)
        return StreamingResponse(body(), media_type=download.content_type, headers=headers,
                                 background=BackgroundTask(opened.aclose))


def safe_filename(filename: str) -> str:
    """A name for a link and a Content-Disposition header: nothing that needs quoting there."""
    return "".join(c if c.isascii() and (c.isalnum() or c in "._-") else "_" for c in filename)[:80] or "file"


__all__ = ["IrcRoutes", "safe_filename"]
