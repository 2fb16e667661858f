"""The homeserver's Client-Server API as the application service sees it: one HTTP request loop.

:class:`MatrixClient` sends every request with the ``as_token`` in the ``Authorization`` header
(never in the query string, where proxies log it), masquerades as a user with ``?user_id=`` when
asked, maps error answers to :mod:`bridgekit.errors`, and retries what can succeed later
(:mod:`bridgekit.matrix.retry`). A retry resends the very same request, so a send keeps its
transaction ID. Per-user operations live on :class:`~bridgekit.matrix.intent.Intent`,
obtained with :meth:`MatrixClient.intent`.

Retrying a request the homeserver may already have carried out is harmless for sends (their
transaction ID makes them idempotent), joins, invites and state; ``createRoom`` and uploads have
no such key, so a network error after the homeserver acted can leave a duplicate behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence

import httpx

from bridgekit.errors import (
    MatrixConnectionError,
    MatrixError,
    MatrixRateLimited,
    MatrixServerError,
)
from bridgekit.events import JSONDict
from bridgekit.ids import UserID
from bridgekit.matrix.errormap import error_from_response, json_body
from bridgekit.matrix.intent import Intent
from bridgekit.matrix.memory import MatrixStateMemory
from bridgekit.matrix.paths import CLIENT_V1, endpoint_template, path
from bridgekit.matrix.retry import (
    RetryPolicy,
    backoff_delay,
    is_retryable_status,
    is_retryable_transport_error,
    rate_limit_delay,
)
from bridgekit.telemetry import BridgeMetrics

Sleep = Callable[[float], Awaitable[None]]
"""Waits the given seconds (``asyncio.sleep``; tests pass one that records and returns at once)."""

Clock = Callable[[], float]
"""Monotonic seconds (``time.monotonic``; tests pass a fake that their fake sleep advances)."""

Query = Sequence[tuple[str, str]]

logger = logging.getLogger(__name__)


class MatrixClient:
    """The appservice's connection to its homeserver.

    ``http`` is owned by the caller (who also closes it); its timeouts apply to each attempt.
    ``memory`` is what the intents consult and update (see :class:`MatrixStateMemory`).
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        homeserver_url: str,
        as_token: str,
        bot_user_id: UserID,
        memory: MatrixStateMemory,
        retry: RetryPolicy | None = None,
        sleep: Sleep = asyncio.sleep,
        clock: Clock = time.monotonic,
        jitter: Callable[[], float] = random.random,
        metrics: BridgeMetrics | None = None,
    ) -> None:
        self._http = http
        self._metrics = metrics
        """Each attempt counted by endpoint template and status (None: not counted)."""
        self._base_url = homeserver_url.rstrip("/")
        self._auth = {"Authorization": f"Bearer {as_token}"}
        self._bot_user_id = bot_user_id
        self._memory = memory
        self._retry = retry or RetryPolicy()
        self._sleep = sleep
        self._clock = clock
        self._jitter = jitter

    @property
    def bot_user_id(self) -> UserID:
        """The appservice's own user (``sender_localpart``)."""
        return self._bot_user_id

    @property
    def bot(self) -> Intent:
        """The intent of the appservice's own user."""
        return self.intent(self._bot_user_id)

    def intent(self, user_id: UserID) -> Intent:
        """The intent acting as ``user_id`` (the bot or a ghost in the appservice's namespace).

        Intents hold no state of their own, so creating one per use is cheap and two intents for
        one user agree on everything: the memory is what remembers.
        """
        return Intent(self, user_id, self._memory)

    async def request(
        self,
        method: str,
        request_path: str,
        *,
        user_id: UserID | None = None,
        query: Query = (),
        json: object = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        max_retries: int | None = None,
        follow_redirects: bool = False,
    ) -> httpx.Response:
        """Send one request (retrying as the policy says) and return the successful answer.

        ``request_path`` must already be encoded (:func:`bridgekit.matrix.paths.path` does that).
        Raises a :class:`~bridgekit.errors.MatrixRequestError` subclass for an error answer and
        :class:`~bridgekit.errors.MatrixConnectionError` when the homeserver cannot be reached.
        """
        url = self._base_url + request_path
        pairs = [*query, ("user_id", user_id)] if user_id is not None else list(query)
        params = httpx.QueryParams(tuple(pairs))
        all_headers = {**(headers or {}), **self._auth}
        retries_left = self._retry.max_retries if max_retries is None else max_retries
        retry_number = 0
        while True:
            started = time.perf_counter()
            try:
                response = await self._http.request(
                    method, url, params=params, json=json, content=content,
                    headers=all_headers, follow_redirects=follow_redirects,
                )
            except httpx.TransportError as error:
                self._count(method, request_path, "error", started)
                if retries_left <= 0 or not is_retryable_transport_error(error):
                    raise MatrixConnectionError(
                        f"{method} {request_path}: cannot reach the homeserver at "
                        f"{self._base_url} ({type(error).__name__}: {error}); "
                        "check that it is running and that the URL is right",
                    ) from error
                delay = backoff_delay(self._retry, retry_number, self._jitter)
                reason = type(error).__name__
            else:
                self._count(method, request_path, str(response.status_code), started)
                if response.status_code < 400:
                    return response
                if retries_left <= 0 or not is_retryable_status(response.status_code):
                    raise error_from_response(response, method=method, path=request_path)
                delay = self._delay_after(response, retry_number)
                reason = str(response.status_code)
            logger.warning(
                "%s %s failed (%s); retrying in %.2f s", method, request_path, reason, delay,
            )
            await self._sleep(delay)
            retries_left -= 1
            retry_number += 1

    def _count(self, method: str, request_path: str, status: str, started: float) -> None:
        if self._metrics is not None:
            self._metrics.observe_matrix_request(
                method, endpoint_template(request_path), status, time.perf_counter() - started)

    @contextlib.asynccontextmanager
    async def stream(
        self, method: str, request_path: str, *, user_id: UserID | None = None,
    ) -> AsyncIterator[httpx.Response]:
        """One request whose answer's body is read in chunks (``aiter_bytes``), closed when the
        block ends: for media, never held in memory whole. Sent once, never retried, and
        redirects are not followed (the caller decides where a 3xx may lead: our token must not
        go along). An error answer raises as :meth:`request` does."""
        url = self._base_url + request_path
        params = httpx.QueryParams((("user_id", user_id),) if user_id is not None else ())
        request = self._http.build_request(method, url, params=params, headers=self._auth)
        try:
            response = await self._http.send(request, stream=True, follow_redirects=False)
        except httpx.TransportError as error:
            raise MatrixConnectionError(
                f"{method} {request_path}: cannot reach the homeserver at {self._base_url} "
                f"({type(error).__name__}: {error})",
            ) from error
        try:
            if response.status_code >= 400:
                await response.aread()
                raise error_from_response(response, method=method, path=request_path)
            yield response
        finally:
            await response.aclose()

    async def request_json(
        self,
        method: str,
        request_path: str,
        *,
        user_id: UserID | None = None,
        query: Query = (),
        json: object = None,
        max_retries: int | None = None,
    ) -> JSONDict:
        """:meth:`request`, returning the answer's JSON object."""
        response = await self.request(
            method, request_path, user_id=user_id, query=query, json=json,
            max_retries=max_retries,
        )
        body = json_body(response)
        if body is None:
            raise MatrixError(
                f"{method} {request_path}: the homeserver answered {response.status_code} "
                "without a JSON object",
            )
        return dict(body)

    async def ping(self, appservice_id: str, transaction_id: str | None = None) -> int:
        """Ask the homeserver to ping this appservice; returns the round trip in milliseconds.

        A successful ping also tells Synapse the appservice is up again, so it redelivers the
        transactions it held back. Sent once, without retries (see :meth:`ping_until_ready`).
        Errors keep the homeserver's errcode: 400 ``M_URL_NOT_SET`` (the registration has no
        url), 403 ``M_FORBIDDEN`` (wrong token or ID), 502 ``M_BAD_STATUS`` /
        ``M_CONNECTION_FAILED`` and 504 ``M_CONNECTION_TIMEOUT`` (the homeserver could not reach
        us: check the registration's ``url`` and that our listener is up).
        """
        body: JSONDict = {} if transaction_id is None else {"transaction_id": transaction_id}
        request_path = path(CLIENT_V1, "appservice", appservice_id, "ping")
        answer = await self.request_json("POST", request_path, json=body, max_retries=0)
        duration = answer.get("duration_ms")
        if not isinstance(duration, int) or isinstance(duration, bool):
            raise MatrixError(f"POST {request_path}: answer has no integer 'duration_ms'")
        return duration

    async def ping_until_ready(
        self, appservice_id: str, deadline_seconds: float, *, transaction_id: str | None = None,
    ) -> int:
        """:meth:`ping` until it succeeds or ``deadline_seconds`` have passed.

        At start-up the homeserver may not be up yet, or may not reach our listener yet: network
        errors, 5xx (including the ping's own 502/504) and 429 are retried with backoff. Errors
        that waiting cannot fix (a wrong token, no url in the registration) are raised at once,
        as is the last error when the deadline passes.
        """
        deadline = self._clock() + deadline_seconds
        attempt = 0
        while True:
            try:
                return await self.ping(appservice_id, transaction_id)
            except (MatrixConnectionError, MatrixServerError, MatrixRateLimited):
                remaining = deadline - self._clock()
                if remaining <= 0:
                    raise
                delay = backoff_delay(self._retry, attempt, self._jitter)
                await self._sleep(min(delay, remaining))
                attempt += 1

    def _delay_after(self, response: httpx.Response, retry_number: int) -> float:
        if response.status_code == 429:
            asked = rate_limit_delay(self._retry, response, json_body(response))
            if asked is not None:
                return asked
        return backoff_delay(self._retry, retry_number, self._jitter)


__all__ = ["Clock", "MatrixClient", "Query", "Sleep"]
