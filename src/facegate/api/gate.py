"""The gate every request passes before any body is read: a rate limit by client address for
requests without a valid key, the API key itself and its rate limit, and admission of the heavy
routes. A stranger's 60 MB upload is refused on its headers, not after it has been parsed.

The console's forms are let through only with a live console session (FastAPI parses a form
before any dependency runs), except the sign-in form, which is small and counted by address.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio
from starlette.requests import cookie_parser
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from facegate.api.keys import ApiKey, KeyStore
from facegate.api.problems import BodyLimit, problem_for
from facegate.api.rate import RateLimit
from facegate.errors import FacegateError, ServiceBusy, Unauthorized
from facegate.web.paths import is_console_path

if TYPE_CHECKING:
    from facegate.gallery.gallery import Gallery
    from facegate.web.console import Console

HEALTH_PATHS = frozenset({"/healthz", "/readyz"})  # probes: never limited
PUBLIC_PATHS = frozenset({"/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json", "/v1/privacy/policy"})
# Identification and analysis: a model run each, and an upload of up to `max_request_bytes`.
HEAVY_PATHS = frozenset({"/v1/identify", "/v1/identify/base64", "/v1/verify", "/v1/detect"})
ANONYMOUS = "requests without a valid key from this address"
SIGN_IN_PATH = "/login"
SIGN_IN_MAX_BYTES = 16 * 1024  # a name, a password, two tokens and where to go next
READS = frozenset({"GET", "HEAD"})


def bearer_token(headers: dict[bytes, bytes]) -> str | None:
    header = headers.get(b"authorization", b"").decode("latin-1")
    token = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else ""
    return token or headers.get(b"x-api-key", b"").decode("latin-1").strip() or None


async def authenticate(keys: KeyStore, per_key: RateLimit, headers: dict[bytes, bytes]) -> ApiKey:
    """The request's key, known, active and within its rate limit."""
    token = bearer_token(headers)
    if not token:
        raise Unauthorized("an API key is needed: Authorization: Bearer <key>")
    key = await anyio.to_thread.run_sync(keys.authenticate, token)
    if key is None:
        raise Unauthorized("unknown or revoked API key")
    per_key.hit(key.id, "this key")
    return key


class Gate:
    def __init__(self, app: ASGIApp, *, anonymous: RateLimit, max_pending: int) -> None:
        self.app = app
        self.anonymous = anonymous
        self.max_pending = max_pending
        self.pending = 0  # heavy requests admitted and not yet answered (one event loop: no lock)

    async def _console(self, scope: Scope, receive: Receive, send: Send, address: str) -> None:
        """A console form: the sign-in form small and counted by address, any other only with a
        live session (refused on its headers, the body never read)."""
        state = scope["app"].state
        console = getattr(state, "console", None)
        try:
            if scope["path"] == SIGN_IN_PATH:
                self.anonymous.hit(address, ANONYMOUS)
                await BodyLimit(self.app, SIGN_IN_MAX_BYTES)(scope, receive, send)
                return
            if console is None or not _has_session(console, state.gallery, scope):
                self.anonymous.hit(address, ANONYMOUS)
                await PlainTextResponse("sign in to the console first", 401)(scope, receive, send)
                return
        except FacegateError as exc:
            await problem_for(exc)(scope, receive, send)
            return
        await self.app(scope, receive, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in HEALTH_PATHS:
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        address = client[0] if client else "unknown"
        # The console's pages sign people in themselves (sessions, not API keys).
        if is_console_path(scope["path"]):
            if scope["method"] in READS:
                await self.app(scope, receive, send)
            else:
                await self._console(scope, receive, send, address)
            return
        state = scope["app"].state
        heavy = scope["path"] in HEAVY_PATHS
        try:
            self.anonymous.check(address, ANONYMOUS)
            if scope["path"] in PUBLIC_PATHS:
                self.anonymous.hit(address, ANONYMOUS)
            else:
                try:
                    key = await authenticate(state.keys, state.rate_limit, dict(scope["headers"]))
                except Unauthorized:
                    self.anonymous.hit(address, ANONYMOUS)
                    raise
                scope.setdefault("state", {})["api_key"] = key
            if heavy and self.pending >= self.max_pending:
                raise ServiceBusy(
                    f"{self.pending} identifications are already waiting; try again shortly", retry_after=1
                )
        except FacegateError as exc:
            await problem_for(exc)(scope, receive, send)
            return
        if not heavy:
            await self.app(scope, receive, send)
            return
        self.pending += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.pending -= 1


def _has_session(console: Console, gallery: Gallery, scope: Scope) -> bool:
    """Whether the request's cookie carries a session the console's store accepts."""
    raw = dict(scope["headers"]).get(b"cookie", b"").decode("latin-1")
    cookie = cookie_parser(raw).get(console.session_cookie)
    return cookie is not None and console.sessions.read(console.key(gallery), cookie) is not None
