"""Sign in and out, and the home page (each role lands where its work is)."""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import RedirectResponse

from facegate.api.keys import Role
from facegate.errors import Forbidden, RateLimited
from facegate.web.auth import AnyUser, ConsoleRoute, console_of, current_viewer
from facegate.web.sessions import COOKIE
from facegate.web.users import UserStore

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)

LOGIN_COOKIE = "facegate_login"  # the sign-in form's own CSRF token (no session yet)
HOME = {Role.ADMIN: "/people", Role.OPERATOR: "/events", Role.AUDITOR: "/audit"}


def _safe_next(target: str | None) -> str | None:
    # Only a path of this site: never "//evil.example" or "https://...".
    if target and target.startswith("/") and not target.startswith(("//", "/\\")):
        return target
    return None


@router.get("/")
async def home(request: Request, viewer: AnyUser) -> Response:
    return RedirectResponse(HOME.get(viewer.role, "/events"), 303)


@router.get("/login")
async def login_page(request: Request, next: str | None = None) -> Response:
    viewer = await current_viewer(request)
    if viewer is not None:
        return RedirectResponse(_safe_next(next) or HOME.get(viewer.role, "/events"), 303)
    token = secrets.token_urlsafe(32)
    response = console_of(request).page(request, "login.html", login_csrf=token, next=_safe_next(next))
    _cookie(request, response, LOGIN_COOKIE, token, max_age=3600)
    return response


def _cookie(request: Request, response: Response, name: str, value: str, max_age: int | None) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        secure=console_of(request).settings.secure_cookies,
        httponly=True,
        samesite="strict",
    )


@router.post("/login")
async def login(
    request: Request,
    name: Annotated[str, Form(max_length=100)],
    password: Annotated[str, Form(max_length=1000)],
    csrf: Annotated[str, Form(max_length=100)],
    next: Annotated[str | None, Form(max_length=2000)] = None,
) -> Response:
    c = console_of(request)
    expected = request.cookies.get(LOGIN_COOKIE, "")
    if not expected or not hmac.compare_digest(csrf.encode(), expected.encode()):
        raise Forbidden("the sign-in form is out of date: reload the page and try again")
    gallery = request.app.state.gallery
    threads = request.app.state.threads
    address = request.client.host if request.client else "unknown"
    try:
        c.sign_in_limit.check(f"address:{address}", "sign-in attempts from this address")
        c.sign_in_limit.check(f"name:{name}", "sign-in attempts for this name")
    except RateLimited as exc:
        # Not audited: the failures that reached the limit are, and a flood must not fill the trail.
        return c.page(
            request, "login.html", 429, login_csrf=expected, next=_safe_next(next), message=exc.message
        )
    users = UserStore(gallery.store)
    user = await threads.run_to_completion(users.authenticate, name, password)
    if user is None:
        c.sign_in_limit.hit(f"address:{address}", "sign-in attempts from this address")
        c.sign_in_limit.hit(f"name:{name}", "sign-in attempts for this name")
        # Never the name typed (it may be a password typed in the wrong box).
        await threads.run_to_completion(
            lambda: gallery.audit.record("console:?", "console_sign_in_failed", None, {"address": address})
        )
        return c.page(
            request,
            "login.html",
            401,
            login_csrf=expected,
            next=_safe_next(next),
            message="Wrong name or password.",
        )
    _session, cookie = c.sessions.start(c.key(gallery), user.id)
    await threads.run_to_completion(
        lambda: gallery.audit.record(
            f"console:{user.name}", "console_sign_in", user.id, {"role": user.role.value, "address": address}
        )
    )
    response = RedirectResponse(_safe_next(next) or HOME.get(user.role, "/events"), 303)
    _cookie(request, response, COOKIE, cookie, max_age=int(c.sessions.seconds))
    response.delete_cookie(LOGIN_COOKIE, path="/")
    return response


@router.post("/logout")
async def logout(request: Request, viewer: AnyUser) -> Response:
    c = console_of(request)
    c.sessions.end(viewer.session.token)
    gallery = request.app.state.gallery
    await request.app.state.threads.run_to_completion(
        lambda: gallery.audit.record(viewer.actor, "console_sign_out", viewer.user.id, {})
    )
    response = RedirectResponse("/login", 303)
    response.delete_cookie(
        COOKIE, path="/", secure=c.settings.secure_cookies, httponly=True, samesite="strict"
    )
    return response
