"""Events: list and submit them, follow them live, open a decision's snapshot; camera status."""

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response
from fastapi.responses import StreamingResponse

from facegate.api.deps import CamerasDep, EventsDep, EventSource, HistoryDep, HubDep, ThreadsDep, Watcher
from facegate.api.schemas import EventIn, When
from facegate.errors import Forbidden
from facegate.events.submitted import check_submission

router = APIRouter(tags=["events"])


@router.get("/v1/events")
async def list_events(
    key: Watcher,
    history: HistoryDep,
    threads: ThreadsDep,
    camera: Annotated[str | None, Query(max_length=100)] = None,
    kind: Annotated[str | None, Query(max_length=32)] = None,
    person_id: Annotated[str | None, Query(max_length=64)] = None,
    since: When | None = None,
    until: When | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    found = await threads.run_to_completion(
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


@router.post("/v1/events", status_code=201)
async def add_event(
    body: EventIn, key: EventSource, events: EventsDep, hub: HubDep, threads: ThreadsDep
) -> dict[str, Any]:
    check_submission(body.camera, body.kind, body.details)
    if not key.may_speak_for(body.camera):
        raise Forbidden(f"this key may not submit events for camera {body.camera!r}")
    event = await threads.run_to_completion(lambda: events.add(body.camera, body.kind, None, body.details))
    hub.deliver(event)
    return dict(event.to_dict())


@router.get("/v1/events/stream", response_class=StreamingResponse)
async def event_stream(
    key: Watcher,
    history: HistoryDep,
    hub: HubDep,
    threads: ThreadsDep,
    camera: Annotated[str | None, Query(max_length=100)] = None,
    kind: Annotated[str | None, Query(max_length=32)] = None,
    limit: Annotated[int | None, Query(ge=1, le=100_000, description="Close after this many events")] = None,
) -> StreamingResponse:
    """Server-sent events: each new event as `event: <kind>` with its JSON, as it happens."""
    await threads.run_to_completion(lambda: history.follow(actor=f"key:{key.id}", camera=camera))
    queue = hub.subscribe()
    return StreamingResponse(
        hub.frames(queue, camera=camera, kind=kind, limit=limit),
        media_type="text/event-stream",
        headers={"cache-control": "no-cache"},
    )


@router.get("/v1/events/{event_id}/snapshot", response_class=Response)
async def event_snapshot(
    event_id: Annotated[int, Path(ge=1, le=2**63 - 1)],
    key: Watcher,
    history: HistoryDep,
    threads: ThreadsDep,
) -> Response:
    """The (redacted) snapshot of a decision moment, as JPEG, while retention keeps it."""
    data = await threads.run_to_completion(lambda: history.snapshot(event_id, actor=f"key:{key.id}"))
    return Response(data, media_type="image/jpeg", headers={"cache-control": "private, no-store"})


@router.get("/v1/cameras")
async def list_cameras(key: Watcher, live: CamerasDep) -> dict[str, Any]:
    return {"cameras": live.status() if live is not None else []}
