"""Events (admins and operators): the timeline with filters, live over server-sent events, one
decision explained ("why not recognised"), its redacted snapshot, and enrolling an unknown
visitor from it (admins, only with a consent record)."""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request, Response
from fastapi.responses import RedirectResponse, StreamingResponse

from facegate.api.keys import Role
from facegate.errors import BadRequest, SnapshotNotFound
from facegate.events.history import EventHistory
from facegate.events.sse import SseHub
from facegate.events.store import Event
from facegate.gallery.gallery import Gallery
from facegate.web.auth import AdminUser, ConsoleRoute, Viewer, WatcherUser, console_of
from facegate.web.routes.people import consent_from_form
from facegate.web.users import UserStore

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)

KINDS = ("granted", "denied", "unknown")
USER_CHECK_S = 15.0  # how often an open live stream asks whether its user was disabled
Filter = Annotated[str, Query(max_length=100)]


def _history(request: Request) -> EventHistory:
    h: EventHistory = request.app.state.history
    return h


def _time(value: str, what: str) -> datetime | None:
    if not value.strip():
        return None
    try:
        t = datetime.fromisoformat(value.strip())
    except ValueError as exc:
        raise BadRequest(f"{what} must be a date and time (YYYY-MM-DDTHH:MM)") from exc
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def explain(event: Event) -> dict[str, Any]:
    """Why a decision went as it did, in the words an operator needs."""
    d = event.details
    score, threshold = d.get("score"), d.get("threshold")
    reason = str(d.get("reason") or "")
    if event.kind == "granted":
        summary = "Recognised and allowed by the door's rules."
    elif event.kind == "denied":
        summary = f"Recognised, but the door's rules refused: {reason or 'no rule allows this person now'}."
    elif isinstance(score, (int, float)) and isinstance(threshold, (int, float)) and score >= threshold:
        summary = (
            "The best match scored above the threshold but was not accepted: "
            f"{reason or 'too close to a second candidate, or consent not in force'}."
        )
    elif isinstance(score, (int, float)):
        summary = "Not recognised: the best match scored below the threshold."
    else:
        summary = "Not recognised: nobody enrolled came close (or nobody is enrolled)."
    return {
        "summary": summary,
        "score": score,
        "threshold": threshold,
        "margin": round(score - threshold, 4)
        if isinstance(score, (int, float)) and isinstance(threshold, (int, float))
        else None,
        "target_fmr": d.get("target_fmr"),
        "reason": reason,
        "evidence": d.get("evidence"),
        "latency_ms": d.get("latency_ms"),
        "quality": d.get("quality"),
    }


@router.get("/events")
async def timeline(
    request: Request,
    viewer: WatcherUser,
    camera: Filter = "",
    door: Filter = "",
    kind: Filter = "",
    since: Filter = "",
    until: Filter = "",
) -> Response:
    start = _time(since, "since")
    end = _time(until, "until")
    history = _history(request)
    found: list[Event] = await request.app.state.threads.run_to_completion(
        lambda: history.list(
            actor=viewer.actor,
            camera=camera.strip() or None,
            kind=kind.strip() or None,
            since=start,
            until=end,
            limit=500,
        )
    )
    if door.strip():
        found = [e for e in found if e.details.get("door") == door.strip()]
    settings = request.app.state.settings
    return console_of(request).page(
        request,
        "events.html",
        events=found[:200],
        kinds=KINDS,
        cameras=[c.name for c in settings.cameras],
        doors=[d.name for d in settings.doors],
        filters={"camera": camera, "door": door, "kind": kind, "since": since, "until": until},
    )


@router.get("/events/live")
async def live(
    request: Request, viewer: WatcherUser, camera: Filter = "", kind: Filter = ""
) -> StreamingResponse:
    """The events as they happen (server-sent events, the API's hub)."""
    history = _history(request)
    await request.app.state.threads.run_to_completion(
        lambda: history.follow(actor=viewer.actor, camera=camera or None)
    )
    hub: SseHub = request.app.state.hub
    queue = hub.subscribe()
    return StreamingResponse(
        while_signed_in(request, viewer, hub.frames(queue, camera=camera or None, kind=kind or None)),
        media_type="text/event-stream",
        headers={"cache-control": "no-cache"},
    )


async def while_signed_in(request: Request, viewer: Viewer, frames: AsyncIterator[str]) -> AsyncIterator[str]:
    """`frames` for as long as the viewer's session lasts: it is checked before each frame
    (keep-alives come at least every 15 s), whether the user was disabled at most every
    `USER_CHECK_S`. Sign-out, expiry, idleness or a disabled user ends the stream."""
    c = console_of(request)
    users = UserStore(request.app.state.gallery.store)
    checked = time.monotonic()
    try:
        async for frame in frames:
            if not c.sessions.alive(viewer.session.token):
                return
            if time.monotonic() - checked >= USER_CHECK_S:
                user = await request.app.state.threads.run_to_completion(users.get, viewer.user.id)
                checked = time.monotonic()
                if user is None or user.disabled_at is not None:
                    c.sessions.end(viewer.session.token)
                    return
            yield frame
    finally:
        if isinstance(frames, AsyncGenerator):
            await frames.aclose()  # unsubscribes from the hub


async def _event(request: Request, viewer_actor: str, event_id: int) -> Event:
    history = _history(request)
    event: Event | None = await request.app.state.threads.run_to_completion(
        lambda: history.get(event_id, actor=viewer_actor)
    )
    if event is None:
        raise SnapshotNotFound(f"event {event_id} is not kept (retention may have removed it)")
    return event


@router.get("/events/{event_id}")
async def event_page(request: Request, viewer: WatcherUser, event_id: int) -> Response:
    event = await _event(request, viewer.actor, event_id)
    return console_of(request).page(
        request,
        "event.html",
        event=event,
        why=explain(event),
        can_enrol=viewer.can(Role.ADMIN) and event.kind == "unknown" and event.snapshot is not None,
    )


@router.get("/events/{event_id}/snapshot.jpg")
async def snapshot(request: Request, viewer: WatcherUser, event_id: int) -> Response:
    history = _history(request)
    data = await request.app.state.threads.run_to_completion(
        lambda: history.snapshot(event_id, actor=viewer.actor)
    )
    return Response(data, media_type="image/jpeg")


@router.post("/events/{event_id}/enrol")
async def enrol_visitor(
    request: Request,
    viewer: AdminUser,
    event_id: int,
    name: Annotated[str, Form(max_length=200)],
    purpose: Annotated[str, Form(max_length=2000)],
    expires: Annotated[str, Form(max_length=20)],
    recorded_by: Annotated[str, Form(max_length=200)],
    evidence_ref: Annotated[str, Form(max_length=2000)] = "",
    scope: Annotated[str, Form(max_length=2000)] = "*",
) -> Response:
    """Enrol the face of an unknown visitor's snapshot: never without a consent record."""
    consent = consent_from_form(purpose, expires, recorded_by, evidence_ref, scope, None)
    event = await _event(request, viewer.actor, event_id)
    if event.kind != "unknown":
        raise BadRequest("only an unknown visitor's snapshot can start an enrolment")
    history = _history(request)
    gallery: Gallery = request.app.state.gallery

    def run() -> str:
        photo = history.snapshot(event_id, actor=viewer.actor)
        return gallery.enroll(name, [photo], consent, actor=viewer.actor).person.id

    person_id = await request.app.state.threads.run_to_completion(run)
    return RedirectResponse(f"/people/{person_id}", 303)
