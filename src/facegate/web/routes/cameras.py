"""Cameras and doors (admins and operators): each camera's state, each door's recent decisions,
and a manual unlock for admins (audited by the door's actuator)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from facegate.access.policy import grants_without_liveness
from facegate.errors import BadRequest, SnapshotNotFound
from facegate.web.auth import AdminUser, ConsoleRoute, Viewer, WatcherUser, console_of

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)


@router.get("/cameras")
async def cameras(request: Request, viewer: WatcherUser) -> Response:
    live = request.app.state.live
    settings = request.app.state.settings
    history = request.app.state.history
    recent = await request.app.state.threads.run_to_completion(
        lambda: history.list(actor=viewer.actor, limit=200)
    )
    doors = [
        {
            "name": d.name,
            "cameras": d.cameras,
            "recent": [e for e in recent if e.details.get("door") == d.name][:10],
            "can_unlock": live is not None and d.name in getattr(live, "actuators", {}),
            "without_liveness": bool(grants_without_liveness([d])),
        }
        for d in settings.doors
    ]
    if live is not None:  # looking at the cameras is looking at people: on the trail, once a visit
        gallery = request.app.state.gallery
        await request.app.state.threads.run_to_completion(
            lambda: gallery.audit.record(viewer.actor, "live_view", None, {"cameras": len(live.status())})
        )
    return console_of(request).page(
        request,
        "cameras.html",
        cameras=live.status() if live is not None else [],
        configured=[c.name for c in settings.cameras],
        running=live is not None,
        doors=doors,
        this_replica=settings.replica.id if getattr(live, "replica", None) is not None else None,
        unlocked=request.query_params.get("unlocked", "")[:100],
    )


async def _audit_look(request: Request, viewer: Viewer, camera: str) -> None:
    """A live frame or its labels fetched: on the trail once per session and camera every few
    minutes, however it was asked for (the /cameras page, or the URL polled directly)."""
    if console_of(request).first_look(viewer.session.token, camera):
        gallery = request.app.state.gallery
        await request.app.state.threads.run_to_completion(
            lambda: gallery.audit.record(viewer.actor, "live_view", None, {"camera": camera[:100]})
        )


@router.get("/cameras/{camera}/live.jpg")
async def live_frame(request: Request, viewer: WatcherUser, camera: str) -> Response:
    """The camera's newest processed frame, with boxes, track ids, names and decisions drawn."""
    live = request.app.state.live
    preview = getattr(live, "preview", None)
    data = await request.app.state.threads.run_to_completion(preview.jpeg, camera) if preview else None
    if data is None:
        raise SnapshotNotFound(f"no frame from camera {camera!r} yet")
    await _audit_look(request, viewer, camera)
    return Response(data, media_type="image/jpeg")


@router.get("/cameras/{camera}/live.json")
async def live_labels(request: Request, viewer: WatcherUser, camera: str) -> dict[str, list[str]]:
    """What the live frame shows, as text: each face's track id, name, score and decision."""
    preview = getattr(request.app.state.live, "preview", None)
    faces = preview.describe(camera) if preview is not None else None
    if faces is None:
        raise SnapshotNotFound(f"no frame from camera {camera!r} yet")
    await _audit_look(request, viewer, camera)
    return {"faces": faces}


@router.post("/doors/{door}/unlock")
async def unlock(request: Request, viewer: AdminUser, door: str) -> Response:
    live = request.app.state.live
    actuator = getattr(live, "actuators", {}).get(door) if live is not None else None
    if actuator is None:
        raise BadRequest(
            f"door {door!r} has no actuator running here (is `facegate serve` running its cameras?)"
        )
    try:
        await request.app.state.threads.run_to_completion(lambda: actuator.unlock(viewer.actor))
    except RuntimeError as exc:  # the door's webhook or broker did not answer; the unlock is audited
        return console_of(request).error(request, 502, str(exc))
    return RedirectResponse("/cameras?unlocked=" + door, 303)
