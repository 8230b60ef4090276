"""Who is signed in, what their role lets them reach, and the CSRF check of every form.

Every console route is a `ConsoleRoute`: a page asked for without a session redirects to the
sign-in page (anything else gets 401), a typed error becomes an HTML page with its status, and
every answer carries the console's security headers.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import PlainTextResponse, RedirectResponse
from fastapi.routing import APIRoute

from facegate.api.keys import Role
from facegate.errors import FacegateError, Forbidden
from facegate.web.sessions import Session
from facegate.web.users import ConsoleUser, UserStore

if TYPE_CHECKING:
    from facegate.web.console import Console

# No script, style, image or frame from anywhere but facegate itself.
SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; "
        "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}


class NotSignedIn(Exception):
    """No live session: pages redirect to /login, anything else is 401."""


@dataclass(frozen=True)
class Viewer:
    """The signed-in console user of a request."""

    user: ConsoleUser
    session: Session

    @property
    def actor(self) -> str:
        """Who the audit trail says did it."""
        return f"console:{self.user.name}"

    @property
    def role(self) -> Role:
        return self.user.role

    def can(self, *roles: Role) -> bool:
        return self.user.role in roles


def console_of(request: Request) -> Console:
    c: Console = request.app.state.console
    return c


async def current_viewer(request: Request) -> Viewer | None:
    """The request's viewer, if its cookie carries a live session of an active user."""
    if hasattr(request.state, "viewer"):
        v: Viewer | None = request.state.viewer
        return v
    c = console_of(request)
    gallery = request.app.state.gallery
    session = c.sessions.read(c.key(gallery), request.cookies.get(c.session_cookie))
    viewer = None
    if session is not None:
        user = await request.app.state.threads.run_to_completion(
            UserStore(gallery.store).get, session.user_id
        )
        if user is None or user.disabled_at is not None:
            c.sessions.end(session.token)
        else:
            viewer = Viewer(user, session)
    request.state.viewer = viewer
    return viewer


async def check_csrf(request: Request, expected: str) -> None:
    form = await request.form()  # parsed once; the route's own Form() fields read the same
    token = form.get("csrf")
    if not isinstance(token, str) or not hmac.compare_digest(token.encode(), expected.encode()):
        raise Forbidden("this form's security token is missing or out of date: reload the page and try again")


def signed_in(*roles: Role) -> Callable[[Request], Awaitable[Viewer]]:
    """A dependency: the viewer, if of one of `roles`; a state-changing request must also carry
    the session's CSRF token in its form."""

    async def check(request: Request) -> Viewer:
        viewer = await current_viewer(request)
        if viewer is None:
            raise NotSignedIn
        if viewer.role not in roles:
            raise Forbidden(f"a {viewer.role.value} may not open this page")
        if request.method not in ("GET", "HEAD"):
            await check_csrf(request, viewer.session.csrf)
        return viewer

    return check


AnyUser = Annotated[Viewer, Depends(signed_in(Role.ADMIN, Role.OPERATOR, Role.AUDITOR))]
AdminUser = Annotated[Viewer, Depends(signed_in(Role.ADMIN))]
# Events, snapshots, cameras: as the API's Watcher.
WatcherUser = Annotated[Viewer, Depends(signed_in(Role.ADMIN, Role.OPERATOR))]
# The audit trail, retention, evaluation reports.
AuditUser = Annotated[Viewer, Depends(signed_in(Role.ADMIN, Role.AUDITOR))]


class ConsoleRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def run(request: Request) -> Response:
            try:
                response = await handler(request)
            except NotSignedIn:
                if request.method == "GET" and "text/html" in request.headers.get("accept", ""):
                    target = quote(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
                    response = RedirectResponse(f"/login?next={target}", 303)
                else:
                    response = PlainTextResponse("sign in to the console first", 401)
            except FacegateError as exc:
                response = console_of(request).error(request, exc.http_status, exc.message)
            except RequestValidationError as exc:
                fields = ", ".join(str(e["loc"][-1]) for e in exc.errors())
                response = console_of(request).error(request, 422, f"missing or invalid: {fields}")
            for k, v in SECURITY_HEADERS.items():
                response.headers.setdefault(k, v)
            response.headers.setdefault("cache-control", "private, no-store")
            return response

        return run
