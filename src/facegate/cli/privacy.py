"""Privacy commands: purge, `privacy policy`, redact, and `audit ...` (the audit trail)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from facegate.cli.common import (
    JsonOpt,
    YesOpt,
    actor,
    confirm,
    emit,
    handled,
    open_gallery,
    out,
    progress,
    settings,
)
from facegate.errors import ConfigError, ExitCode
from facegate.gallery.gallery import Gallery
from facegate.privacy.redaction import Keep, Redactor, keep_person
from facegate.privacy.retention import purge as run_purge
from facegate.privacy.retention import schedule
from facegate.vision.annotate import save_annotated
from facegate.vision.engine import FaceEngine

VIDEO_SUFFIXES = {".mp4", ".mov", ".mkv", ".avi", ".webm", ".gif"}

privacy_app = typer.Typer(help="What facegate keeps and for how long.", no_args_is_help=True)
audit_app = typer.Typer(help="The hash-chained audit trail: check it, read it.", no_args_is_help=True)


def purge(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only count what would be removed.")] = False,
    now: Annotated[bool, typer.Option("--now", help="Remove it now (asks unless --yes).")] = False,
    yes: YesOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Apply the retention policy: expired events, snapshots, audit entries, lapsed people."""
    with handled(as_json), open_gallery() as gallery:
        if dry_run == now:
            raise ConfigError("say --dry-run (count only) or --now (remove)")
        if now:
            preview = run_purge(gallery, gallery.settings.privacy, dry_run=True)
            if preview.total:
                confirm(yes, f"Remove {preview.total} item(s) past their retention period?")
        report = run_purge(gallery, gallery.settings.privacy, dry_run=dry_run, actor=actor())
        verb = "would remove" if dry_run else "removed"
        emit(
            as_json,
            report.to_dict(),
            lambda: out.print(
                f"{verb}: {report.events} event(s), {report.snapshots} snapshot(s), "
                f"{report.unknown_snapshots} unknown-visitor snapshot(s), "
                f"{report.audit_entries} audit entr(ies), "
                f"{report.people} person(s) whose consent lapsed or who were inactive too long, "
                f"{report.orphan_files} orphaned file(s)"
            ),
        )


@privacy_app.command("policy")
def privacy_policy(as_json: JsonOpt = False) -> None:
    """The retention schedule in force, ready to publish."""
    with handled(as_json):
        rules = schedule(settings().privacy)

        def human() -> None:
            out.print("[bold]facegate retention schedule[/bold]")
            for r in rules:
                out.print(
                    f"\n[bold]{r.data}[/bold]\n  where: {r.where}\n  kept: {r.kept}\n  why: {r.why}",
                    highlight=False,
                )
            out.print(
                "\nNever kept: templates of people who did not enrol, movement histories, inferred "
                "attributes (race, ethnicity, religion, emotion)."
            )

        emit(as_json, {"retention": [r.to_dict() for r in rules]}, human)


def redact(
    source: Annotated[Path, typer.Argument(help="A photo or a video.")],
    out_file: Annotated[Path, typer.Option("--out", help="Where to write the redacted copy.")],
    keep: Annotated[
        str | None, typer.Option("--keep", help="Leave this enrolled person's face visible (person id).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Blur every face (or every face but one enrolled person's) in a photo or video."""
    with handled(as_json):
        config = settings()
        gallery = Gallery.open(config) if keep else None
        try:
            keep_fn: Keep | None = None
            if gallery is not None and keep is not None:
                keep_fn = keep_person(gallery, keep, actor=actor(), source=source.name)
            engine = gallery.engine if gallery is not None else FaceEngine(config)
            r = Redactor(engine)
            if source.suffix.lower() in VIDEO_SUFFIXES:
                with progress() as bar:
                    task = bar.add_task("redacting frames", total=None)
                    stats = r.video(source, out_file, keep_fn, progress=lambda n: bar.advance(task, n))
            else:
                result = r.image(engine.load(source), keep_fn)
                save_annotated(result.image, out_file)
                stats = {"frames": 1, "faces_blurred": result.blurred, "faces_kept": result.kept}
        finally:
            if gallery is not None:
                gallery.close()
        emit(
            as_json,
            {"file": str(out_file), **stats},
            lambda: out.print(
                f"wrote {out_file}: {stats['faces_blurred']} face(s) blurred, {stats['faces_kept']} kept"
            ),
        )


@audit_app.command("verify")
def audit_verify(
    expect: Annotated[
        str | None,
        typer.Option("--expect", help="A head hash printed earlier: the trail must still reach it."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Recompute the chain: exit 8 if any entry was edited or deleted, or the newest cut off."""
    with handled(as_json), open_gallery() as gallery:
        check = gallery.audit.verify(expect=expect)
        payload = {
            "ok": check.ok,
            "entries": check.entries,
            "head": check.head,
            "first_bad": check.first_bad,
            "reason": check.reason,
        }

        def human() -> None:
            if check.ok:
                out.print(f"[green]audit trail intact[/green]: {check.entries} entries, head {check.head}")
            else:
                out.print(f"[red]audit trail broken[/red]: {check.reason}")

        emit(as_json, payload, human)
        if not check.ok:
            raise typer.Exit(int(ExitCode.SECURITY))


@audit_app.command("list")
def audit_list(
    limit: Annotated[int, typer.Option(help="How many entries, newest first.")] = 50,
    action: Annotated[str | None, typer.Option(help="Only this action (enrol, identify, ...).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """The newest audit entries."""
    with handled(as_json), open_gallery() as gallery:
        entries = gallery.audit.entries(limit, action)

        def human() -> None:
            t = Table(title="audit trail")
            for col in ("id", "at (UTC)", "actor", "action", "target", "results"):
                t.add_column(col)
            for e in entries:
                t.add_row(
                    str(e.id), f"{e.at:%Y-%m-%d %H:%M:%S}", e.actor, e.action, e.target or "", str(e.results)
                )
            out.print(t)

        emit(as_json, {"entries": [e.to_dict() for e in entries]}, human)
