"""Token checks, log redaction and the last-resort error answer (pure)."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from bridgekit.appservice.access_log import redact_path, redact_query
from bridgekit.appservice.auth import check_hs_token
from bridgekit.appservice.errors import MatrixHTTPError, UnexpectedErrorMiddleware, install_error_handlers

TOKEN = b"the-right-hs-token"


@pytest.mark.parametrize(
    ("header", "query", "status"),
    [
        (None, None, 401),
        ("Basic abc", None, 401),
        ("Bearer ", None, 401),
        ("Bearer wrong", None, 403),
        (None, "wrong", 403),
        ("Bearer the-right-hs-token", "wrong", 403),
        ("Bearer wrong", "the-right-hs-token", 403),
    ],
)
def test_bad_credentials_are_refused(header: str | None, query: str | None, status: int) -> None:
    with pytest.raises(MatrixHTTPError) as caught:
        check_hs_token(TOKEN, header, query)
    assert caught.value.status == status
    assert caught.value.errcode == ("M_UNAUTHORIZED" if status == 401 else "M_FORBIDDEN")


@pytest.mark.parametrize(
    ("header", "query"),
    [("Bearer the-right-hs-token", None), ("bearer the-right-hs-token", None), (None, "the-right-hs-token"),
     ("Bearer the-right-hs-token", "the-right-hs-token")],
)
def test_right_credentials_pass(header: str | None, query: str | None) -> None:
    check_hs_token(TOKEN, header, query)


def test_webhook_secrets_in_paths_are_redacted() -> None:
    assert redact_path("/webhook/abc123") == "/webhook/<redacted>"
    assert redact_path("/webhook/abc123/slack") == "/webhook/<redacted>/slack"
    assert redact_path("/_matrix/app/v1/transactions/5") == "/_matrix/app/v1/transactions/5"


def test_token_query_parameters_are_redacted_and_others_kept() -> None:
    assert redact_query("access_token=s3cret&user_id=%40a%3Ahs") == "access_token=<redacted>&user_id=%40a%3Ahs"
    assert "s3cret" not in redact_query("ACCESS_TOKEN=s3cret")
    assert redact_query("") == ""


async def test_an_unexpected_error_is_503_with_retry_after_and_never_reaches_the_server() -> None:
    """The server closes a keep-alive connection when the app raises; a handler on ``Exception``
    (Starlette's last resort) answers and then raises again. The middleware answers instead."""
    app = FastAPI()
    install_error_handlers(app)
    app.add_middleware(UnexpectedErrorMiddleware)

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("a bug")

    # raise_app_exceptions (the default): an exception leaving the app would fail the request.
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://as") as http:
        response = await http.get("/boom")
    assert response.status_code == 503
    assert response.json()["errcode"] == "M_UNKNOWN"
    assert "a bug" not in response.text  # the reason goes to the log only
    assert response.headers["retry-after"] == "5"
