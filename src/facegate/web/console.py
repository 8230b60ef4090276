"""The console's state on the app: sessions, the sign-in limit, the templates and how pages render."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
from fastapi import Request, Response
from fastapi.templating import Jinja2Templates

from facegate.gallery.gallery import Gallery
from facegate.settings import WebSettings
from facegate.web.attempts import Attempts
from facegate.web.sessions import COOKIE, KNOWN_COOKIE, LOGIN_COOKIE, KnownBrowsers, Sessions, cookie_name
from facegate.web.views import consent_state, when

HERE = Path(__file__).resolve().parent
SESSION_KEY_PURPOSE = "console session v1"
LIVE_VIEW_AUDIT_S = 300.0


class Console:
    """What the console keeps while the app runs: sessions, the sign-in limit, the templates."""

    def __init__(self, settings: WebSettings) -> None:
        self.settings = settings
        self.sessions = Sessions(settings.session_hours, settings.session_idle_minutes)
        self.session_cookie = cookie_name(COOKIE, settings.secure_cookies)
        self.login_cookie = cookie_name(LOGIN_COOKIE, settings.secure_cookies)
        self.known_cookie = cookie_name(KNOWN_COOKIE, settings.secure_cookies)
        self.known = KnownBrowsers()
        # Failed sign-ins by name and address, and by name alone (far higher: a distributed
        # guesser is held). A browser the user signed in from before is held to the first, per
        # its token, instead of the second: strangers filling the name's limit lock out no one
        # who signed in there before.
        self.sign_in_limit = Attempts(settings.sign_in_rate_limit, "web.sign_in_rate_limit")
        self.sign_in_name_limit = Attempts(settings.sign_in_name_rate_limit, "web.sign_in_name_rate_limit")
        # Password checks at once (each ~0.4 s and 128 MiB of scrypt): sign-ins never take the
        # whole thread pool from the API.
        self.sign_in_slots = anyio.Semaphore(2)
        self.templates = Jinja2Templates(directory=HERE / "templates")  # autoescapes .html
        self.templates.env.filters["when"] = when
        self.templates.env.globals["consent_state"] = consent_state
        self._key: tuple[str, bytes] | None = None
        # What a form's result page shows once after its redirect (post/redirect/get), by session.
        self._flash: dict[str, dict[str, Any]] = {}
        # When each (session, camera) was last put on the audit trail as watched.
        self._watched: dict[tuple[str, str], float] = {}
        self._watched_lock = threading.Lock()

    def flash(self, token: str, message: dict[str, Any]) -> None:
        self._flash[token] = message

    def take_flash(self, token: str) -> dict[str, Any]:
        return self._flash.pop(token, {})

    def first_look(self, token: str, camera: str) -> bool:
        """Whether this session's look at `camera` is to be audited: its first, then one every
        `LIVE_VIEW_AUDIT_S` (a live view polls its frame several times a second)."""
        now = time.monotonic()
        with self._watched_lock:
            if len(self._watched) > 10_000:
                self._watched = {k: t for k, t in self._watched.items() if now - t < LIVE_VIEW_AUDIT_S}
            last = self._watched.get((token, camera))
            if last is not None and now - last < LIVE_VIEW_AUDIT_S:
                return False
            self._watched[(token, camera)] = now
            return True

    def key(self, gallery: Gallery) -> bytes:
        """The cookie-signing key, derived from the gallery's data key (a new data key ends
        every session)."""
        # By the key's check value, not id(): a new cipher may be allocated where an old one was.
        check = gallery.cipher.key_check
        if self._key is None or self._key[0] != check:
            self._key = (check, gallery.cipher.derive(SESSION_KEY_PURPOSE))
        return self._key[1]

    def page(self, request: Request, template: str, status: int = 200, **context: Any) -> Response:
        viewer = getattr(request.state, "viewer", None)
        return self.templates.TemplateResponse(
            request,
            template,
            {
                "viewer": viewer,
                "csrf": viewer.session.csrf if viewer else "",
                "now": datetime.now(UTC),
                "soon_days": self.settings.consent_soon_days,
                **context,
            },
            status_code=status,
        )

    def error(self, request: Request, status: int, message: str) -> Response:
        return self.page(request, "error.html", status, code=status, message=message)
