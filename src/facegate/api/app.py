"""The REST service (FastAPI): versioned routes under /v1, API keys with roles, problem+json.

Identification runs off the event loop in a thread pool sized to the cores; every error is
an RFC 9457 problem document with a stable code, and bad input is a 4xx, never a 500.
"""

import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any

import anyio
from fastapi import Depends, FastAPI, File, Path, Query, Request, UploadFile
from fastapi.responses import Response, StreamingResponse
from limits import parse as parse_limit
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from prometheus_client import CONTENT_TYPE_LATEST

from facegate.api.keys import ApiKey, KeyStore, Role
from facegate.api.metrics import Metrics, measure
from facegate.api.problems import BodyLimit, install_handlers
from facegate.api.schemas import (
    ConsentIn,
    EventIn,
    ImageIn,
    PersonIn,
    PersonUpdate,
    VerifyIn,
    When,
    decode_base64,
)
from facegate.errors import (
    BadImage,
    ConfigError,
    Forbidden,
    RateLimited,
    RequestTimeout,
    Unauthorized,
)
from facegate.events.history import EventHistory
from facegate.events.sse import SseHub
from facegate.events.store import EventStore
from facegate.gallery.gallery import Gallery
from facegate.settings import Settings, load_settings
from facegate.vision.onnx_runtime import available_cores


def create_app(
    settings: Settings | None = None, gallery: Gallery | None = None, *, background: bool = False
) -> FastAPI:
    """The REST app; with `background` (`facegate serve`), the configured cameras and the
    retention purge run beside it."""
    settings = settings or load_settings()
    hub = SseHub()
    limiter = anyio.CapacityLimiter(available_cores())
    read_limiter = anyio.CapacityLimiter(available_cores() * 4)  # waiting room; `running` is the real cap
    running = threading.BoundedSemaphore(available_cores())
    state: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # Not `gallery or ...`: an empty gallery has len 0, hence is falsy.
        g = gallery if gallery is not None else Gallery.open(settings)
        state["gallery"], state["keys"], state["events"] = g, KeyStore(g.store), EventStore(g.store)
        state["history"] = EventHistory(g, state["events"], settings.snapshots_dir)
        live = None
        purger = None
        if background:
            from facegate.privacy.retention import PurgeScheduler

            purger = PurgeScheduler(g, settings.privacy)
            purger.start()
        if background and settings.cameras:
            from facegate.video.service import LiveService

            live = LiveService(g, registry=metrics.registry, sse=hub)
            await anyio.to_thread.run_sync(live.start)
        state["live"] = live
        try:
            yield
        finally:
            if live is not None:
                await anyio.to_thread.run_sync(live.stop)
            if purger is not None:
                await anyio.to_thread.run_sync(purger.stop)
            if gallery is None:
                g.close()

    async def no_nul(request: Request) -> None:
        values = [*request.path_params.values(), *request.query_params.values()]
        if any("\x00" in str(v) for v in values):
            raise BadImage("path and query values must not contain NUL characters")

    app = FastAPI(
        title="facegate", version="0.1.0", lifespan=lifespan, docs_url="/docs", dependencies=[Depends(no_nul)]
    )
    app.add_middleware(BodyLimit, limit=settings.api.max_request_bytes)
    metrics = Metrics()
    try:
        rate = parse_limit(settings.api.rate_limit)
    except ValueError as exc:
        raise ConfigError(f"api.rate_limit {settings.api.rate_limit!r}: {exc}") from exc
    limiter_store = MovingWindowRateLimiter(MemoryStorage())

    app.state.metrics = metrics
    app.middleware("http")(measure)
    install_handlers(app)

    def auth(*roles: Role) -> Callable[[Request], Awaitable[ApiKey]]:
        async def check(request: Request) -> ApiKey:
            header = request.headers.get("authorization", "")
            token = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else None
            token = token or request.headers.get("x-api-key")
            if not token:
                raise Unauthorized("an API key is needed: Authorization: Bearer <key>")
            keys: KeyStore = state["keys"]
            key = await anyio.to_thread.run_sync(keys.authenticate, token)
            if key is None:
                raise Unauthorized("unknown or revoked API key")
            if not limiter_store.hit(rate, key.id):
                reset = limiter_store.get_window_stats(rate, key.id).reset_time
                raise RateLimited(
                    f"rate limit of {settings.api.rate_limit} reached for this key",
                    retry_after=max(1, int(reset - time.time()) + 1),
                )
            if key.role not in roles:
                raise Forbidden(
                    f"role {key.role.value} may not do this (needs {', '.join(r.value for r in roles)})"
                )
            return key

        return check

    def g() -> Gallery:
        gallery_: Gallery = state["gallery"]
        return gallery_

    async def work(fn: Callable[..., Any], *args: Any) -> Any:
        """Blocking work (writes included) off the event loop; runs to completion."""
        return await anyio.to_thread.run_sync(lambda: fn(*args), limiter=limiter)

    async def read(fn: Callable[..., Any], *args: Any) -> Any:
        """A search or analysis that answers 504 after `api.request_timeout`.

        Its thread is abandoned, not killed: the semaphore, taken inside the thread, keeps the
        number of threads actually computing at one per core even then.
        """

        def bounded() -> Any:
            with running:
                return fn(*args)

        try:
            with anyio.fail_after(settings.api.request_timeout):
                return await anyio.to_thread.run_sync(bounded, limiter=read_limiter, abandon_on_cancel=True)
        except TimeoutError as exc:
            raise RequestTimeout(f"no answer within {settings.api.request_timeout:g} s") from exc

    Admin = Annotated[ApiKey, Depends(auth(Role.ADMIN))]
    Operator = Annotated[ApiKey, Depends(auth(Role.OPERATOR, Role.DEVICE))]
    Verifier = Annotated[ApiKey, Depends(auth(Role.OPERATOR))]
    Auditor = Annotated[ApiKey, Depends(auth(Role.AUDITOR))]

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"])
    async def readyz() -> dict[str, Any]:
        g()  # the gallery is open and its index rebuilt (the lifespan did both)
        return {"status": "ready"}

    @app.get("/v1/people", tags=["people"])
    async def list_people(key: Admin) -> dict[str, Any]:
        return {"people": [p.to_dict() for p in await work(g().people)]}

    @app.get("/v1/people/{person_id}", tags=["people"])
    async def show_person(person_id: str, key: Admin) -> dict[str, Any]:
        person = await work(g().person, person_id)
        return dict(person.to_dict())

    @app.patch("/v1/people/{person_id}", tags=["people"])
    async def update_person(person_id: str, body: PersonUpdate, key: Admin) -> dict[str, Any]:
        p = await work(
            lambda: g().update_person(
                person_id, name=body.name, external_id=body.external_id, actor=f"key:{key.id}"
            )
        )
        return dict(p.to_dict())

    @app.get("/v1/people/{person_id}/consents", tags=["consent"])
    async def list_consents(person_id: str, key: Admin) -> dict[str, Any]:
        await work(g().person, person_id)
        records = await work(g().store.consents, person_id)
        return {"consents": [{"id": c.id, **c.to_dict()} for c in records]}

    @app.post("/v1/people/{person_id}/consents", status_code=201, tags=["consent"])
    async def add_consent(person_id: str, body: ConsentIn, key: Admin) -> dict[str, Any]:
        consent = body.to_consent()
        p = await work(lambda: g().add_consent(person_id, consent, actor=f"key:{key.id}"))
        return dict(p.to_dict())

    @app.post("/v1/people", status_code=201, tags=["people"])
    async def create_person(body: PersonIn, key: Admin) -> dict[str, Any]:
        consent = body.consent.to_consent()
        images = [decode_base64(i) for i in body.images_base64]
        result = await work(
            lambda: g().enroll(
                body.name, images, consent, external_id=body.external_id, actor=f"key:{key.id}"
            )
        )
        return dict(result.to_dict())

    @app.post("/v1/people/{person_id}/faces", status_code=201, tags=["people"])
    async def add_faces(
        person_id: str, key: Admin, files: Annotated[list[UploadFile], File()]
    ) -> dict[str, Any]:
        images = [await f.read() for f in files]
        person = await work(g().person, person_id)
        result = await work(
            lambda: g().enroll(person.name, images, None, person_id=person_id, actor=f"key:{key.id}")
        )
        return dict(result.to_dict())

    @app.post("/v1/people/{person_id}/consents/{consent_id}/withdraw", tags=["consent"])
    async def withdraw_consent(
        person_id: str, consent_id: Annotated[int, Path(ge=1, le=2**31 - 1)], key: Admin
    ) -> dict[str, Any]:
        """The person stops matching at once; the purge destroys their templates after the grace period."""
        withdrawn = await work(lambda: g().withdraw_consent(person_id, consent_id, actor=f"key:{key.id}"))
        return {"withdrawn": withdrawn, "person": (await work(g().person, person_id)).to_dict()}

    @app.delete("/v1/people/{person_id}", tags=["people"])
    async def delete_person(person_id: str, key: Admin) -> dict[str, Any]:
        """Erase the person and everything derived from them; answers with the erasure receipt."""
        from facegate.privacy.erasure import erase

        receipt = await work(lambda: erase(g(), person_id, actor=f"key:{key.id}"))
        return {"deleted": person_id, **receipt.removed, "receipt": receipt.to_dict()}

    @app.get("/v1/people/{person_id}/export", tags=["people"], response_class=Response)
    async def export_person(person_id: str, key: Admin) -> Response:
        """Subject access: a zip of everything held about the person, with a README."""
        import tempfile
        from pathlib import Path as FsPath

        from facegate.privacy.export import export_subject

        def build() -> bytes:
            with tempfile.TemporaryDirectory() as d:
                out = FsPath(d) / "export.zip"
                export_subject(g(), person_id, out, actor=f"key:{key.id}")
                return out.read_bytes()

        data = await work(build)
        return Response(
            data,
            media_type="application/zip",
            headers={
                "content-disposition": f'attachment; filename="facegate-{person_id}.zip"',
                "cache-control": "private, no-store",
            },
        )

    @app.get("/v1/privacy/policy", tags=["privacy"])
    async def privacy_policy() -> dict[str, Any]:
        """The retention schedule in force (public: it is what the operator publishes)."""
        from facegate.privacy.retention import schedule

        return {"retention": [r.to_dict() for r in schedule(settings.privacy)]}

    @app.post("/v1/privacy/purge", tags=["privacy"])
    async def privacy_purge(key: Admin, dry_run: bool = True) -> dict[str, Any]:
        """Apply the retention policy now (or, by default, only count what it would remove)."""
        from facegate.privacy.retention import purge

        report = await work(lambda: purge(g(), settings.privacy, dry_run=dry_run, actor=f"key:{key.id}"))
        return dict(report.to_dict())

    async def _identify(data: bytes, key: ApiKey) -> dict[str, Any]:
        faces = await read(lambda: g().identify(data, actor=f"key:{key.id}"))
        metrics.faces.labels("identify").inc(len(faces))
        threshold = g().threshold
        out = []
        for f in faces:
            d = f.to_dict()
            # Who an unknown face most resembles is not the caller's business: it would let a
            # device list enrolled people and tune a probe against their scores.
            d["candidates"] = [c for c in d["candidates"] if c["score"] >= threshold]
            out.append(d)
        return {"faces": out, "threshold": threshold}

    @app.post("/v1/identify", tags=["search"])
    async def identify(key: Operator, file: Annotated[UploadFile, File()]) -> dict[str, Any]:
        return await _identify(await file.read(), key)

    @app.post("/v1/identify/base64", tags=["search"])
    async def identify_b64(body: ImageIn, key: Operator) -> dict[str, Any]:
        return await _identify(decode_base64(body.image_base64), key)

    @app.post("/v1/verify", tags=["search"])
    async def verify(body: VerifyIn, key: Verifier) -> dict[str, Any]:
        image = decode_base64(body.image_base64)
        if (body.other_base64 is None) == (body.person_id is None):
            raise BadImage("give either other_base64 or person_id")
        if body.person_id is not None:
            pid = body.person_id
            result = await read(lambda: g().verify_person(image, pid, actor=f"key:{key.id}"))
        else:
            other = decode_base64(body.other_base64 or "")
            result = await read(lambda: g().verify_photos(image, other, actor=f"key:{key.id}"))
        return dict(result.to_dict())

    @app.get("/v1/events", tags=["events"])
    async def list_events(
        key: Annotated[ApiKey, Depends(auth(Role.ADMIN, Role.OPERATOR))],
        camera: Annotated[str | None, Query(max_length=100)] = None,
        kind: Annotated[str | None, Query(max_length=32)] = None,
        person_id: Annotated[str | None, Query(max_length=64)] = None,
        since: When | None = None,
        until: When | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> dict[str, Any]:
        history: EventHistory = state["history"]
        found = await work(
            lambda: history.list(
                actor=f"key:{key.id}",
                camera=camera,
                kind=kind,
                person_id=person_id,
                since=since,
                until=until,
                limit=limit,
            )
        )
        return {"events": [e.to_dict() for e in found]}

    @app.post("/v1/events", status_code=201, tags=["events"])
    async def add_event(
        body: EventIn, key: Annotated[ApiKey, Depends(auth(Role.ADMIN, Role.DEVICE))]
    ) -> dict[str, Any]:
        if not key.may_speak_for(body.camera):
            raise Forbidden(f"this key may not submit events for camera {body.camera!r}")
        store: EventStore = state["events"]
        event = await work(lambda: store.add(body.camera, body.kind, body.person_id, body.details))
        hub.deliver(event)
        return dict(event.to_dict())

    @app.get("/v1/events/stream", tags=["events"], response_class=StreamingResponse)
    async def event_stream(
        key: Annotated[ApiKey, Depends(auth(Role.ADMIN, Role.OPERATOR))],
        camera: Annotated[str | None, Query(max_length=100)] = None,
        kind: Annotated[str | None, Query(max_length=32)] = None,
        limit: Annotated[
            int | None, Query(ge=1, le=100_000, description="Close after this many events")
        ] = None,
    ) -> StreamingResponse:
        """Server-sent events: each new event as `event: <kind>` with its JSON, as it happens."""
        history: EventHistory = state["history"]
        await work(lambda: history.follow(actor=f"key:{key.id}", camera=camera))
        queue = hub.subscribe()
        return StreamingResponse(
            hub.frames(queue, camera=camera, kind=kind, limit=limit),
            media_type="text/event-stream",
            headers={"cache-control": "no-cache"},
        )

    @app.get("/v1/events/{event_id}/snapshot", tags=["events"], response_class=Response)
    async def event_snapshot(
        event_id: Annotated[int, Path(ge=1, le=2**63 - 1)],
        key: Annotated[ApiKey, Depends(auth(Role.ADMIN, Role.OPERATOR))],
    ) -> Response:
        """The (redacted) snapshot of a decision moment, as JPEG, while retention keeps it."""
        history: EventHistory = state["history"]
        data = await work(lambda: history.snapshot(event_id, actor=f"key:{key.id}"))
        return Response(data, media_type="image/jpeg", headers={"cache-control": "private, no-store"})

    @app.get("/v1/cameras", tags=["events"])
    async def list_cameras(
        key: Annotated[ApiKey, Depends(auth(Role.ADMIN, Role.OPERATOR))],
    ) -> dict[str, Any]:
        live = state.get("live")
        return {"cameras": live.status() if live is not None else []}

    @app.get("/v1/audit", tags=["audit"])
    async def audit(key: Auditor, limit: int = 100, action: str | None = None) -> dict[str, Any]:
        limit = max(1, min(limit, 1000))
        entries = await work(lambda: g().audit.entries(limit, action))
        return {"entries": [e.to_dict() for e in entries]}

    @app.get("/v1/audit/verify", tags=["audit"])
    async def audit_verify(key: Auditor) -> dict[str, Any]:
        c = await work(g().audit.verify)
        return {
            "ok": c.ok,
            "entries": c.entries,
            "head": c.head,
            "first_bad": c.first_bad,
            "reason": c.reason,
        }

    @app.post("/v1/detect", tags=["search"])
    async def detect(key: Operator, file: Annotated[UploadFile, File()]) -> dict[str, Any]:
        data = await file.read()
        result = await read(g().engine.detect, data)
        metrics.faces.labels("detect").inc(len(result.faces))
        return {"width": result.width, "height": result.height, "faces": [f.to_dict() for f in result.faces]}

    @app.get("/metrics", tags=["health"], response_class=Response)
    async def prometheus(
        key: Annotated[ApiKey, Depends(auth(Role.ADMIN, Role.OPERATOR, Role.AUDITOR))],
    ) -> Response:
        gallery_ = g()
        metrics.templates.set(len(gallery_))
        metrics.model_load.set(gallery_.engine.load_seconds)
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    return app
