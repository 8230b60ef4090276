"""The REST service (FastAPI): versioned routes under /v1, API keys with roles, problem+json.

Identification runs off the event loop in a thread pool sized to the cores; every error is
an RFC 9457 problem document with a stable code, and bad input is a 4xx, never a 500.

`create_app` only assembles: the state on `app.state`, the middleware, the error handlers and
one router per resource (`api/routes/`). Dependencies are in `deps.py`, request bodies in
`schemas.py`, errors in `problems.py`.
"""

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import anyio
from fastapi import Depends, FastAPI

from facegate.api.deps import Threads, reject_nul
from facegate.api.gate import Gate
from facegate.api.keys import KeyStore
from facegate.api.metrics import Metrics, measure
from facegate.api.problems import BodyLimit, install_handlers
from facegate.api.rate import RateLimit
from facegate.api.routes import audit, consent, events, health, people, privacy, search
from facegate.events.history import EventHistory
from facegate.events.sse import SseHub
from facegate.events.store import EventStore
from facegate.gallery.gallery import Gallery
from facegate.settings import Settings, load_settings
from facegate.vision.onnx_runtime import available_cores

log = logging.getLogger(__name__)


def create_app(
    settings: Settings | None = None, gallery: Gallery | None = None, *, background: bool = False
) -> FastAPI:
    """The REST app; with `background` (`facegate serve`), the configured cameras and the
    retention purge run beside it."""
    settings = settings or load_settings()
    api = settings.api
    app = FastAPI(
        title="facegate",
        version="0.1.0",
        lifespan=_lifespan(gallery, background=background),
        docs_url="/docs" if api.public_docs else None,
        redoc_url="/redoc" if api.public_docs else None,
        openapi_url="/openapi.json" if api.public_docs else None,
        dependencies=[Depends(reject_nul)],
    )
    # Outermost last: the metrics see everything, the body limit applies before the gate
    # reads nothing but headers, and no route parses a body before the gate let it through.
    app.add_middleware(
        Gate,
        anonymous=RateLimit(api.anonymous_rate_limit, "api.anonymous_rate_limit"),
        max_pending=api.max_pending,
    )
    app.add_middleware(BodyLimit, limit=api.max_request_bytes)
    app.middleware("http")(measure)
    if api.trusted_proxies:
        # Outermost: the gate's per-address limits, the sign-in lockout and the audit trail all
        # see the client the proxy names, and only a listed proxy may name one.
        from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=api.trusted_proxies)
    install_handlers(app)
    app.state.settings = settings
    app.state.hub = SseHub()
    app.state.metrics = Metrics()
    app.state.rate_limit = RateLimit(api.rate_limit)
    app.state.threads = Threads(available_cores(), settings.api.request_timeout)
    app.state.live = None
    for resource in (health, people, consent, privacy, search, events, audit):
        app.include_router(resource.router)
    if settings.web.enabled:
        from facegate.web.app import install

        install(app, settings.web)
    return app


def _lifespan(
    gallery: Gallery | None, *, background: bool
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """Open the gallery (unless given one, which stays the caller's to close) and the stores
    over it; under `facegate serve`, run the retention purge and the cameras meanwhile."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        settings: Settings = app.state.settings
        # Not `gallery or ...`: an empty gallery has len 0, hence is falsy.
        pooled = None
        if gallery is None and background:  # `facegate serve`: photos go to the vision workers
            from facegate.vision.pool import pooled_engine

            pooled = await anyio.to_thread.run_sync(pooled_engine, settings)
        g = gallery if gallery is not None else Gallery.open(settings, engine=pooled)
        app.state.gallery, app.state.keys, app.state.events = g, KeyStore(g.store), EventStore(g.store)
        app.state.history = EventHistory(g, app.state.events)
        live = None
        purger = None
        if background:
            from facegate.privacy.erasure import finish_owed
            from facegate.privacy.retention import PurgeScheduler

            try:  # before the first request: an erasure a crash interrupted is finished first
                await anyio.to_thread.run_sync(finish_owed, g)
            except Exception:
                log.exception("could not finish interrupted erasures now; the retention purge retries")
            purger = PurgeScheduler(g, settings.privacy)
            purger.start()
        if background and settings.cameras:
            from facegate.video.service import LiveService

            live = LiveService(g, registry=app.state.metrics.registry, sse=app.state.hub)
            await anyio.to_thread.run_sync(live.start)
        app.state.live = live
        try:
            yield
        finally:
            if live is not None:
                await anyio.to_thread.run_sync(live.stop)
            if purger is not None:
                await anyio.to_thread.run_sync(purger.stop)
            if gallery is None:
                g.close()
            if pooled is not None:
                await anyio.to_thread.run_sync(pooled.close)

    return lifespan
