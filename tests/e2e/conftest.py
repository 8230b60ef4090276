"""The console in a real browser: Playwright driving the Chromium that Debian packages (its own
browser download cannot be reached from here), against `create_app` served by uvicorn on
loopback in a thread of the test process. Screenshots go to tmp/artefacts/ (FACEGATE_ARTEFACTS)."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from facegate import Gallery
from facegate.web.users import UserStore

from tests.conftest import ROOT, need
from tests.web.console import PASSWORD, ROLES

ARTEFACTS = Path(os.environ.get("FACEGATE_ARTEFACTS", ROOT / "tmp" / "artefacts"))


def chromium_path() -> str | None:
    for candidate in (os.environ.get("FACEGATE_CHROMIUM"), shutil.which("chromium"), "/usr/bin/chromium"):
        if candidate and Path(candidate).exists():
            return candidate
    return None


class Site:
    """`create_app` on a free loopback port, with one console user per role."""

    def __init__(self, settings: Any, gallery: Gallery, *, background: bool = False) -> None:
        import uvicorn

        from facegate.api.app import create_app

        self.gallery = gallery
        # background: the configured cameras run, as under `facegate serve`.
        self.app = create_app(settings, gallery, background=background)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        # localhost, not 127.0.0.1: browsers treat it as a secure origin, so the Secure session
        # cookie is kept over plain HTTP here, as on a real install behind TLS.
        self.url = f"http://localhost:{self.port}"
        self.server = uvicorn.Server(
            uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Site:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        need("playwright is not installed (pip install playwright)")
    path = chromium_path()
    need(None if path else "no Chromium found (apt-get install chromium, or set FACEGATE_CHROMIUM)")
    with sync_playwright() as p:
        # A fake webcam (a test pattern, no face) for the webcam snapshot journey.
        fake_camera = ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]
        b = p.chromium.launch(executable_path=path, args=["--no-sandbox", *fake_camera])
        yield b
        b.close()


@pytest.fixture
def site(settings, engine, tmp_path: Path) -> Iterator[Site]:  # type: ignore[no-untyped-def]
    gallery = Gallery.open(settings, engine=engine, database_url=f"sqlite:///{tmp_path / 'g.db'}")
    users = UserStore(gallery.store)
    for role in ROLES:
        users.create(role, role, PASSWORD)
    with Site(settings, gallery) as s:
        yield s
    gallery.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    p = context.new_page()
    p.set_default_timeout(15_000)
    yield p
    context.close()


def shot(page: Any, name: str) -> Path:
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTEFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def sign_in(page: Any, site: Site, role: str, start: str = "/") -> None:
    page.goto(site.url + start)
    page.get_by_label("Name").fill(role)
    page.get_by_label("Password").fill(PASSWORD)
    shot(page, "sign-in")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()
    assert "/login" not in page.url, page.content()
