"""The HTTP side: ``POST``/``PUT /webhook/{hook}`` on the bridge's own app.

Thin: read the body within the size limit, hand it to :class:`~bridges.webhook.intake.Intake`,
turn its answer into JSON. The path segment holds the hook's secret for token hooks; bridgekit's
access log redacts the segment after ``/webhook/``, and nothing here logs it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.types import Message

from bridges.webhook.intake import Answer, Intake, error, too_large
from bridges.webhook.intake import Request as IntakeRequest
from bridges.webhook.translate import PayloadError


async def read_limited(request: Request, limit: int) -> bytes | None:
    """The body, or None as soon as it is known to be larger than ``limit``."""
    declared = request.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


async def parse_multipart(request: Request, body: bytes) -> dict[str, Any]:
    """A multipart form's text fields (python-multipart reads it from the body already read)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    try:
        form = await Request(request.scope, replay).form()
    except Exception as problem:
        raise PayloadError("bad_form", f"the multipart form cannot be read: {problem}") from None
    return {key: value for key, value in form.items() if isinstance(value, str)}


def _json(answer: Answer) -> JSONResponse:
    return JSONResponse(answer.body, status_code=answer.status, headers=answer.headers)


def outcome(answer: Answer) -> str:
    """The answer in one word, for the requests metric: the error's code (a fixed set), or what
    became of the payload (posted, queued, duplicate, pong)."""
    body = answer.body
    if not body.get("ok"):
        return str(body.get("error", "error"))
    if body.get("queued"):
        return "queued"
    if body.get("duplicate"):
        return "duplicate"
    return "posted" if body.get("event_id") else "pong"


def build_router(intake: Callable[[], Intake | None], limit: int, counted: Callable[[str], None]) -> APIRouter:
    """The router; ``intake`` gives the connector's intake once it has started (None before);
    ``counted`` is told each request's :func:`outcome`."""
    router = APIRouter()

    async def receive(hook: str, request: Request) -> JSONResponse:
        answer = await _answer(hook, request)
        counted(outcome(answer))
        return _json(answer)

    async def _answer(hook: str, request: Request) -> Answer:
        current = intake()
        if current is None:
            return error(503, "starting", "the webhook bridge is starting; retry shortly", {"Retry-After": "5"})
        body = await read_limited(request, limit)
        if body is None:
            return too_large(limit)
        fields = None
        if request.headers.get("Content-Type", "").lower().startswith("multipart/form-data"):
            try:
                fields = await parse_multipart(request, body)
            except PayloadError as problem:
                return error(problem.status, problem.code, str(problem))
        return await current.handle(IntakeRequest(hook, request.headers, body, fields))

    router.add_api_route("/webhook/{hook}", receive, methods=["POST", "PUT"], include_in_schema=False)
    return router


__all__ = ["build_router", "outcome", "read_limited"]
