"""Live commands: serve (the REST service and the cameras) and watch (one source, in the foreground)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from facegate.access.decisions import DoorDecision
from facegate.access.policy import grants_without_liveness
from facegate.api.keys import KeyStore
from facegate.cli.access_log import uvicorn_log_config
from facegate.cli.common import JsonOpt, actor, announced, err, handled, out, settings
from facegate.gallery.gallery import Gallery
from facegate.settings import Settings


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8080,
    init_admin_key: Annotated[
        bool,
        typer.Option(
            "--init-admin-key", help="Create an admin key and print it once (e.g. after revoking all)."
        ),
    ] = False,
) -> None:
    """Run the REST service (OpenAPI at /docs). On the first start of an empty store, prints an
    admin key once."""
    from facegate.vision.pool import pooled_engine

    with handled(False):
        config = settings()
        # Photos of /v1 requests are analysed by worker processes, one per core
        # (`workers.processes`); they stop with the service.
        engine = pooled_engine(config)
        try:
            gallery = announced(Gallery.open(config, engine=engine, create=True))
            _serve(gallery, config, host, port, init_admin_key)
        finally:
            if engine is not None:
                engine.close()


def _serve(gallery: Gallery, config: Settings, host: str, port: int, init_admin_key: bool) -> None:
    # Imported here: the web stack takes a noticeable part of a second to load.
    import uvicorn

    from facegate.api.app import create_app

    try:
        keys = KeyStore(gallery.store)
        # A key printed to stderr lands in the service's journal: only when asked, or when the
        # store was never initialised, never because every key happens to be revoked.
        if init_admin_key or not keys.any_ever():
            key, token = keys.create("initial admin", "admin")
            gallery.audit.record(actor(), "key_create", key.id, {"role": "admin", "initial": True})
            err.print(f"[bold]Created an admin API key. It is shown only now:[/bold]\n{token}")
        elif not keys.any_active():
            err.print(
                "[yellow]No active API key: every request will be refused. Create one with "
                "`facegate keys create NAME --role admin`, or start with --init-admin-key.[/yellow]"
            )
        _warn_without_liveness(grants_without_liveness(config.doors))
        if config.web.enabled:
            from facegate.web.users import UserStore

            hint = "" if UserStore(gallery.store).list() else " (no user yet: `facegate users create NAME`)"
            err.print(f"web console at http://{host}:{port}/{hint}", highlight=False)
        uvicorn.run(
            create_app(config, gallery, background=True),
            host=host,
            port=port,
            log_level="info",
            log_config=uvicorn_log_config(),
            # uvicorn would trust X-Forwarded-For from 127.0.0.1 by default: any local process
            # could then pick its own address. Only `api.trusted_proxies` are trusted (create_app).
            proxy_headers=False,
        )
    finally:
        gallery.close()


def _warn_without_liveness(doors: list[str]) -> None:
    if doors:
        err.print(
            f"[yellow]Warning: door(s) {', '.join(doors)} grant without checking for a live face: a "
            'photo of an enrolled person opens them. Their `granted` events carry liveness: "off". '
            "Set `liveness: required` on the door (docs/liveness.md).[/yellow]",
            highlight=False,
        )


def _show(as_json: bool, d: DoorDecision) -> None:
    """One decision, as it happens."""
    if as_json:
        sys.stdout.write(
            json.dumps({"kind": d.kind, "camera": d.camera, "person_id": d.person_id, **d.details()}) + "\n"
        )
        sys.stdout.flush()
    else:
        colour = {"granted": "green", "denied": "yellow", "unknown": "red"}[d.kind]
        who = d.name or "unknown visitor"
        score = f"{d.score:.3f}" if d.score is not None else "-"
        door_name = "none" if d.door.startswith("_") else d.door
        out.print(
            f"{d.at:%H:%M:%S} [{colour}]{d.kind:8}[/{colour}] {who}  door={door_name} "
            f"track={d.track_id} score={score} ({d.reason}) after {d.latency_s:.2f}s",
            highlight=False,
        )


def watch(
    source: Annotated[
        str, typer.Argument(help="A configured camera's name, a video file, a URL or a webcam index.")
    ],
    door: Annotated[
        str | None, typer.Option(help="Decide for this configured door (its rules and actions).")
    ] = None,
    annotate: Annotated[Path | None, typer.Option(help="Write an annotated video (MP4) here.")] = None,
    fps: Annotated[
        float | None, typer.Option(help="Frames processed per second (default: camera's, else 5).")
    ] = None,
    duration: Annotated[float | None, typer.Option(help="Stop after this many seconds.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Recognise faces in one source and print door decisions as they happen.

    Without --door, every enrolled person with valid consent counts as granted and no door
    is opened. Events go to the database and the configured sinks, as under `serve`.
    """
    # Imported here: video decoding, MQTT and metrics are only needed by this command.
    from facegate.video.watch import summary, watch_source, watched_camera

    with handled(as_json):
        config = settings()
        camera = watched_camera(config, source, fps)
        chosen = [d for d in config.doors if d.name == door]
        # Without a door every enrolled person counts as granted, and no live face is asked for.
        _warn_without_liveness(
            grants_without_liveness(chosen) if door is not None else ["(none: --door not given)"]
        )
        with Gallery.open(config, create=False) as gallery:
            stats = watch_source(
                gallery,
                camera,
                door=door,
                annotate=annotate,
                duration=duration,
                on_decision=lambda d: _show(as_json, d),
            )
        if stats is None:
            raise typer.Exit(130)
        result = summary(stats, camera, annotate)
        if as_json:
            sys.stdout.write(json.dumps({"summary": result}) + "\n")
        else:
            out.print(
                f"{stats.frames} frames in {stats.seconds:.1f}s ({stats.fps:.1f} fps); "
                + ", ".join(f"{v} {k}" for k, v in result["decisions"].items())
                + (f"; annotated video: {annotate}" if annotate else ""),
                highlight=False,
            )
