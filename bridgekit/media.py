"""Matrix media handed on to people outside Matrix: streamed with a size cap, redirects guarded.

Homeserver media needs a token since spec v1.11, so a bridge whose network has no file transfer
serves files itself (the IRC bridge's links). :meth:`MatrixMedia.open` downloads as the bridge's
bot and gives the body in chunks, never whole in memory, refusing it past ``max_bytes``. The
authenticated endpoint may answer with a redirect (to S3, say): it is followed only through the
SSRF guard (:class:`~bridgekit.guarded_http.GuardedHTTP`), at most :data:`MAX_REDIRECTS` times,
and without the token, so a homeserver or storage answer cannot point the bridge at its own
network, at an endless chain, or take the token elsewhere.

Errors::

    BridgekitError
    ├── MediaUnavailable    no such file, refused, an unsafe or endless redirect, a network error
    ├── MediaTooLarge       over the cap (before anything was read when the size was announced)
    └── MediaBusy           :data:`MAX_OPEN` downloads are open already: try again shortly
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from urllib.parse import urljoin

import httpx

from bridgekit.errors import BridgekitError
from bridgekit.guarded_http import GuardedHTTP
from bridgekit.ssrf import UnsafeURL

MAX_REDIRECTS = 3
MAX_OPEN = 8
"""Downloads open at once, over all connectors. Each holds a connection of the bot's Matrix client
(shared with every Matrix send) for as long as its reader takes: a few slow readers of a link
posted somewhere public must not starve the bridge."""
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})

FirstRequest = Callable[[str], contextlib.AbstractAsyncContextManager[httpx.Response]]
"""``mxc://...`` -> the homeserver's streamed answer (``Intent.open_media``), not following redirects."""


class MediaUnavailable(BridgekitError):
    """The file cannot be had: the message says why (never a token)."""


class MediaTooLarge(BridgekitError):
    """The file is larger than the cap the caller set."""


class MediaBusy(BridgekitError):
    """As many downloads as allowed are open already; nothing was fetched (answer 503, retry later)."""


@dataclass(frozen=True)
class MediaDownload:
    """An open download: ``chunks`` yields the body and raises MediaTooLarge past the cap."""

    content_type: str
    content_length: int | None
    chunks: AsyncIterator[bytes]


class MatrixMedia:
    """Opens Matrix media as the bot: the first request to the homeserver, redirects guarded."""

    def __init__(
        self, first_request: FirstRequest, guarded: GuardedHTTP, *, max_redirects: int = MAX_REDIRECTS,
        max_open: int = MAX_OPEN,
    ) -> None:
        self._first_request = first_request
        self._guarded = guarded
        self._max_redirects = max_redirects
        self._max_open = max_open
        self._open = 0

    @contextlib.asynccontextmanager
    async def open(self, mxc: str, *, max_bytes: int) -> AsyncIterator[MediaDownload]:
        """The download of ``mxc``; closed when the block ends. Raises MediaUnavailable,
        MediaTooLarge (at once when the announced size is over ``max_bytes``) or MediaBusy."""
        if self._open >= self._max_open:
            raise MediaBusy(f"{self._max_open} downloads are open already")
        self._open += 1
        try:
            async with contextlib.AsyncExitStack() as stack:
                yield await self._opened(stack, mxc, max_bytes)
        finally:
            self._open -= 1

    async def _opened(self, stack: contextlib.AsyncExitStack, mxc: str, max_bytes: int) -> MediaDownload:
        response = await self._follow(stack, mxc)
        length = _content_length(response)
        if length is not None and length > max_bytes:
            raise MediaTooLarge(f"the file has {length} bytes, more than the {max_bytes} served")
        content_type = response.headers.get("Content-Type", "application/octet-stream")
        return MediaDownload(content_type, length, _capped(response, max_bytes))

    async def _follow(self, stack: contextlib.AsyncExitStack, mxc: str) -> httpx.Response:
        try:
            response = await stack.enter_async_context(self._first_request(mxc))
            url = str(response.url)
            for _hop in range(self._max_redirects):
                if response.status_code not in REDIRECT_STATUSES:
                    break
                url = urljoin(url, response.headers.get("Location", ""))
                response = await stack.enter_async_context(self._guarded.stream("GET", url, time_limit=30.0))
        except (BridgekitError, UnsafeURL, httpx.HTTPError, ValueError) as error:
            raise MediaUnavailable(f"{mxc} cannot be fetched: {error}") from error
        if response.status_code in REDIRECT_STATUSES:
            raise MediaUnavailable(f"{mxc} cannot be fetched: more than {self._max_redirects} redirects")
        if response.status_code != 200:
            raise MediaUnavailable(f"{mxc} cannot be fetched: the answer was {response.status_code}")
        return response


async def _capped(response: httpx.Response, max_bytes: int) -> AsyncIterator[bytes]:
    received = 0
    try:
        async for chunk in response.aiter_bytes():
            received += len(chunk)
            if received > max_bytes:
                raise MediaTooLarge(f"the file is larger than the {max_bytes} bytes served")
            yield chunk
    except httpx.HTTPError as error:
        raise MediaUnavailable(f"the download broke off: {error}") from error


def _content_length(response: httpx.Response) -> int | None:
    value = response.headers.get("Content-Length", "")
    return int(value) if value.isdigit() else None


__all__ = [
    "MAX_OPEN", "MAX_REDIRECTS", "FirstRequest", "MatrixMedia", "MediaBusy", "MediaDownload", "MediaTooLarge",
    "MediaUnavailable",
]
