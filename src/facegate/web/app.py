"""`install`: the console added to the REST service's FastAPI app, at `/`."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from facegate.settings import WebSettings
from facegate.web.console import HERE, Console
from facegate.web.routes import audit, cameras, events, people, signin

# The console's pages, in the order they are added.
PAGES = (signin, people, events, audit, cameras)


def install(app: FastAPI, settings: WebSettings) -> None:
    """Serve the console at / on `app` (none of its routes is in the OpenAPI document)."""
    app.state.console = Console(settings)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="console-static")
    for pages in PAGES:
        app.include_router(pages.router)
