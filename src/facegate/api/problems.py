"""Errors as RFC 9457 problem documents: one builder, the exception handlers, the body limit.

Every error the API answers is `application/problem+json` with a stable `code`; bad input is
a 4xx, never a 500.
"""

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from facegate.errors import FacegateError

PROBLEM = "application/problem+json"


def problem(status: int, code: str, detail: str, **extra: Any) -> JSONResponse:
    """A problem+json response; `extra` members go beside the standard ones."""
    body = {
        "type": f"https://facegate.dev/problems/{code}",
        "title": code.replace("_", " "),
        "status": status,
        "code": code,
        "detail": detail,
        **extra,
    }
    return JSONResponse(body, status_code=status, media_type=PROBLEM)


def problem_for(exc: FacegateError) -> JSONResponse:
    """Our error as a problem document. Errors that say when to come back (429, 503) carry
    it as `Retry-After`; the others show their details beside the standard members."""
    if exc.http_status in (429, 503):
        response = problem(exc.http_status, exc.code, exc.message)
        response.headers["Retry-After"] = str(exc.details.get("retry_after", 1))
        return response
    extra = {k: v for k, v in exc.details.items() if isinstance(v, (str, int, float, bool, list))}
    return problem(exc.http_status, exc.code, exc.message, **extra)


async def facegate_error(_: Request, exc: FacegateError) -> JSONResponse:
    return problem_for(exc)


async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
    codes = {404: "not_found", 405: "method_not_allowed", 413: "request_too_large"}
    return problem(exc.status_code, codes.get(exc.status_code, "http_error"), str(exc.detail))


async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
    return problem(
        422,
        "invalid_request",
        "the request does not match the schema",
        errors=[{"loc": list(e["loc"]), "msg": e["msg"]} for e in exc.errors()],
    )


async def internal_error(_: Request, exc: Exception) -> JSONResponse:
    # Starlette logs the traceback after this answer; the client learns nothing of it.
    return problem(500, "internal_error", "an internal error; it was logged")


def install_handlers(app: FastAPI) -> None:
    """Answer our errors, FastAPI's and Starlette's as problem documents, and anything else as a
    problem document too: never a bare `Internal Server Error`."""
    app.exception_handler(Exception)(internal_error)
    app.exception_handler(FacegateError)(facegate_error)
    app.exception_handler(StarletteHTTPException)(http_error)
    app.exception_handler(RequestValidationError)(invalid_request)


class BodyLimit:
    """Refuse request bodies over `limit` bytes, declared or streamed, with 413."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await problem(413, "request_too_large", f"request body over {self.limit} bytes")(
                scope, receive, send
            )
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            msg = await receive()
            seen += len(msg.get("body", b""))
            if seen > self.limit:
                # An HTTPException passes through FastAPI's body parsing (other errors are
                # rewritten there as a 400).
                raise StarletteHTTPException(413, f"request body over {self.limit} bytes")
            return msg

        await self.app(scope, counted, send)
