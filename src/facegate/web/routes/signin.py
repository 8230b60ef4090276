"""Sign in and out, and the home page (each role lands where its work is)."""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import RedirectResponse

from facegate.api.keys import Role
from facegate.errors import Forbidden, RateLimited
from facegate.web.attempts import Attempts, client_network
from facegate.web.auth import AnyUser, ConsoleRoute, console_of, current_viewer
from facegate.web.users import UserStore

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)

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
    _cookie(request, response, console_of(request).login_cookie, token, max_age=3600)
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
    expected = request.cookies.get(c.login_cookie, "")
    if not expected or not hmac.compare_digest(csrf.encode(), expected.encode()):
        raise Forbidden("the sign-in form is out of date: reload the page and try again")
    gallery = request.app.state.gallery
    threads = request.app.state.threads
    address = request.client.host if request.client else "unknown"

    async def audit(
        action: str, subject: str | None, details: dict[str, object], actor: str = "console:?"
    ) -> None:
        await threads.run_to_completion(lambda: gallery.audit.record(actor, action, subject, details))

    def form(status: int, message: str) -> Response:
        return c.page(
            request, "login.html", status, login_csrf=expected, next=_safe_next(next), message=message
        )

    # Counted before the password is checked, so a parallel burst is counted attempt by attempt.
    # A browser `name` signed in from before is counted by its token instead of by the name
    # from anywhere: strangers filling the name's limit do not lock its user out.
    known = c.known.token(c.key(gallery), request.cookies.get(c.known_cookie), name)
    here = f"{client_network(address)} {name}"
    limits = [(c.sign_in_limit, here, "sign-in attempts for this name here")]
    if known is not None:
        limits.append((c.sign_in_limit, f"known browser {known}", "sign-in attempts from this browser"))
    else:
        limits.append((c.sign_in_name_limit, name, "sign-in attempts for this name"))
    counted: list[tuple[Attempts, str, float]] = []
    try:
        for limit, identity, what in limits:
            counted.append((limit, identity, limit.hit(identity, what)))
    except RateLimited as exc:
        for limit, identity, stamp in counted:
            limit.give_back(identity, stamp)
        # Never the name typed (it may be a password typed in the wrong box).
        await audit("console_sign_in_refused", None, {"address": address, "why": "rate limit"})
        return form(429, exc.message)
    users = UserStore(gallery.store)
    async with c.sign_in_slots:
        user = await threads.run_to_completion(users.authenticate, name, password)
    if user is None:
        await audit("console_sign_in_failed", None, {"address": address})
        return form(401, "Wrong name or password.")
    for limit, identity, stamp in counted:  # only failures hold the limit
        limit.give_back(identity, stamp)
    key = c.key(gallery)
    old = c.sessions.verify(key, request.cookies.get(c.session_cookie))
    if old is not None:  # whoever was signed in on this browser is signed out first
        c.sessions.end(old)
    _session, cookie = c.sessions.start(key, user.id)
    await audit(
        "console_sign_in",
        user.id,
        {"role": user.role.value, "address": address},
        actor=f"console:{user.name}",
    )
    response = RedirectResponse(_safe_next(next) or HOME.get(user.role, "/events"), 303)
    # A session cookie (gone when the browser closes); the server ends the session itself.
    _cookie(request, response, c.session_cookie, cookie, max_age=None)
    _cookie(request, response, c.known_cookie, c.known.issue(key, user.name), max_age=int(c.known.seconds))
    _delete_cookie(request, response, c.login_cookie)
    return response


def _delete_cookie(request: Request, response: Response, name: str) -> None:
    # With the same attributes as set: a browser ignores a __Host- cookie's deletion without Secure.
    response.delete_cookie(
        name, path="/", secure=console_of(request).settings.secure_cookies, httponly=True, samesite="strict"
    )


@router.post("/logout")
async def logout(request: Request, viewer: AnyUser) -> Response:
    c = console_of(request)
    c.sessions.end(viewer.session.token)
    gallery = request.app.state.gallery
    await request.app.state.threads.run_to_completion(
        lambda: gallery.audit.record(viewer.actor, "console_sign_out", viewer.user.id, {})
    )
    response = RedirectResponse("/login", 303)
    _delete_cookie(request, response, c.session_cookie)
    return response
