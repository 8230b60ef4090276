"""The `facegate` command line: enrol, identify, verify, manage people, draw detections.

Every command takes `--json`; exit codes are those of `facegate.errors.ExitCode`.
"""

from __future__ import annotations

import getpass
import json
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from facegate.errors import ConfigError, ExitCode, FacegateError, NoFaceFound
from facegate.gallery.gallery import Gallery
from facegate.gallery.people import Consent
from facegate.settings import load_settings

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".pgm", ".ppm"}

app = typer.Typer(
    name="facegate",
    help="Consent-based face recognition: enrol people, identify and verify faces.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
people_app = typer.Typer(help="List, show and delete enrolled people.", no_args_is_help=True)
app.add_typer(people_app, name="people")
models_app = typer.Typer(
    help="Model files: check them, convert dlib's networks, quantize.", no_args_is_help=True
)
app.add_typer(models_app, name="models")
eval_app = typer.Typer(
    help="Evaluate on labelled data: how often facegate is wrong, and for whom.", no_args_is_help=True
)
app.add_typer(eval_app, name="eval")

out = Console()
err = Console(stderr=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable JSON on stdout.")]
T = TypeVar("T")


def emit(as_json: bool, payload: Any, human: Callable[[], None]) -> None:
    if as_json:
        sys.stdout.write(json.dumps(payload, indent=2, default=str) + "\n")
    else:
        human()


@contextmanager
def handled(as_json: bool) -> Iterator[None]:
    """Turn facegate's typed errors into a message and their exit code."""
    try:
        yield
    except FacegateError as exc:
        if as_json:
            sys.stdout.write(json.dumps(exc.to_dict(), default=str) + "\n")
        else:
            err.print(f"[red]error[/red] ({exc.code}): {exc.message}", highlight=False)
        raise typer.Exit(int(exc.exit_code)) from None


def open_gallery() -> Gallery:
    return Gallery.open(load_settings())


def actor() -> str:
    """Who the audit trail says did it, for commands run by hand."""
    return f"cli:{getpass.getuser()}"


_DURATION = re.compile(r"^\s*(\d+)\s*([dwmy])\s*$")


def parse_when(text: str, *, now: datetime | None = None) -> datetime:
    """An ISO date or datetime, or a duration from now: 30d, 12w, 6m, 2y."""
    now = now or datetime.now(UTC)
    m = _DURATION.match(text)
    if m:
        n, unit = int(m.group(1)), m.group(2)
        days = {"d": 1, "w": 7, "m": 30, "y": 365}[unit] * n
        return now + timedelta(days=days)
    try:
        if len(text) == 10:
            d = date.fromisoformat(text)
            return datetime(d.year, d.month, d.day, tzinfo=UTC)
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ConfigError(f"cannot read {text!r} as a date, a datetime or a duration like 365d") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def make_consent(
    purpose: str | None,
    expires: str | None,
    given_at: str | None,
    recorded_by: str | None,
    evidence: str | None,
) -> Consent | None:
    if purpose is None and expires is None:
        return None
    if not purpose or not expires:
        raise ConfigError("consent needs both --consent-purpose and --consent-expires")
    return Consent(
        purpose=purpose,
        expires_at=parse_when(expires),
        given_at=parse_when(given_at) if given_at else datetime.now(UTC),
        recorded_by=recorded_by or getpass.getuser(),
        evidence_ref=evidence,
    )


ConsentPurpose = Annotated[
    str | None, typer.Option("--consent-purpose", help="What the person consented to, e.g. 'door access'.")
]
ConsentExpires = Annotated[
    str | None, typer.Option("--consent-expires", help="When consent ends: a date (2027-12-31) or 365d, 2y.")
]
ConsentGiven = Annotated[
    str | None, typer.Option("--consent-given-at", help="When it was given (default: now).")
]
ConsentBy = Annotated[
    str | None, typer.Option("--consent-by", help="Who recorded it (default: your user name).")
]
ConsentEvidence = Annotated[
    str | None, typer.Option("--consent-evidence", help="Reference to the signed form or record.")
]


def _progress() -> Progress:
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=False,
    )


@app.command()
def enroll(
    name: Annotated[str, typer.Argument(help="The person's name.")],
    images: Annotated[list[Path], typer.Argument(help="Photos showing only this person.")],
    consent_purpose: ConsentPurpose = None,
    consent_expires: ConsentExpires = None,
    consent_given_at: ConsentGiven = None,
    consent_by: ConsentBy = None,
    consent_evidence: ConsentEvidence = None,
    external_id: Annotated[str | None, typer.Option(help="Your own id for this person.")] = None,
    person_id: Annotated[str | None, typer.Option("--person-id", help="Add photos to this person.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Enrol a person from photos: every photo must show one good face, or nothing is written."""
    with handled(as_json):
        consent = make_consent(
            consent_purpose, consent_expires, consent_given_at, consent_by, consent_evidence
        )
        with open_gallery() as gallery:
            result = gallery.enroll(
                name, list(images), consent, person_id=person_id, external_id=external_id, actor=actor()
            )

        def human() -> None:
            p = result.person
            out.print(
                f"enrolled [bold]{p.name}[/bold] ({p.id}): {len(result.template_ids)} template(s) added"
            )
            for d in result.duplicates:
                out.print(f"  skipped {d}: already enrolled")

        emit(as_json, result.to_dict(), human)


def _person_dirs(root: Path) -> list[tuple[str, list[Path]]]:
    if not root.is_dir():
        raise ConfigError(f"{root} is not a directory")
    found = []
    for d in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        photos = sorted(p for p in d.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if photos:
            found.append((d.name.replace("_", " "), photos))
    if not found:
        raise NoFaceFound(f"{root} has no person folders with photos (expected DIR/<name>/<photo>)")
    return found


@app.command("enroll-dir")
def enroll_dir(
    directory: Annotated[Path, typer.Argument(help="One folder per person, named after them.")],
    consent_purpose: ConsentPurpose = None,
    consent_expires: ConsentExpires = None,
    consent_given_at: ConsentGiven = None,
    consent_by: ConsentBy = None,
    consent_evidence: ConsentEvidence = None,
    as_json: JsonOpt = False,
) -> None:
    """Enrol everyone in DIR/<name>/*.jpg; refused photos are listed with the reason.

    A folder whose name matches one enrolled person adds only the photos not enrolled yet,
    so running it again after adding photos is safe.
    """
    with handled(as_json):
        consent = make_consent(
            consent_purpose, consent_expires, consent_given_at, consent_by, consent_evidence
        )
        folders = _person_dirs(directory)
        summary: list[dict[str, Any]] = []
        with open_gallery() as gallery, _progress() as bar:
            task = bar.add_task("enrolling", total=sum(len(p) for _, p in folders))
            for name, photos in folders:
                existing = gallery.people(name)
                pid = existing[0].id if len(existing) == 1 else None
                try:
                    result = gallery.enroll(
                        name,
                        photos,
                        consent,
                        person_id=pid,
                        skip_bad=True,
                        progress=lambda _label: bar.advance(task),
                        actor=actor(),
                    )
                    summary.append({"name": name, **result.to_dict()})
                except FacegateError as exc:
                    summary.append(
                        {"name": name, "person": None, "templates_added": 0, "error": exc.to_dict()}
                    )
        refused = [(s["name"], r) for s in summary for r in s.get("refused", [])]
        failed = [s for s in summary if s.get("error")]

        def human() -> None:
            t = Table(title=f"enrolled from {directory}")
            for col in ("person", "added", "refused", "status"):
                t.add_column(col)
            for s in summary:
                status = s["error"]["message"] if s.get("error") else "ok"
                t.add_row(s["name"], str(s["templates_added"]), str(len(s.get("refused", []))), status)
            out.print(t)
            for name, r in refused:
                out.print(f"  refused {r['source']} ({name}): {r['message']}", highlight=False)

        emit(as_json, {"people": summary, "refused": len(refused), "failed": len(failed)}, human)
        if failed and len(failed) == len(summary):
            raise typer.Exit(int(ExitCode.REFUSED))


def _identify_one(gallery: Gallery, image: Path, annotate_to: Path | None) -> tuple[dict[str, Any], ExitCode]:
    from facegate.vision.annotate import MATCH, UNKNOWN, annotate, save_annotated

    try:
        faces = gallery.identify(image, actor=actor())
    except FacegateError as exc:
        return {"image": str(image), **exc.to_dict()}, exc.exit_code
    if annotate_to is not None:
        labels = [f"{f.name} {f.score:.2f}" if f.name else "unknown" for f in faces]
        colours = [MATCH if f.name else UNKNOWN for f in faces]
        pic = annotate(gallery.engine.load(image), [f.face for f in faces], labels, colours)
        save_annotated(pic, annotate_to)
    code = ExitCode.OK
    if not faces:
        code = ExitCode.NO_FACE
    elif any(f.result.decision == "unknown" for f in faces):
        code = ExitCode.UNKNOWN
    return {"image": str(image), "faces": [f.to_dict() for f in faces]}, code


def _worst(codes: list[ExitCode]) -> ExitCode:
    for c in (ExitCode.BAD_INPUT, ExitCode.SECURITY, ExitCode.NO_FACE, ExitCode.UNKNOWN):
        if c in codes:
            return c
    return max(codes, default=ExitCode.OK)


@app.command()
def identify(
    images: Annotated[list[Path], typer.Argument(help="Photos to search the gallery for.")],
    annotate_to: Annotated[
        Path | None, typer.Option("--annotate", help="Write an annotated copy (a folder for several photos).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Who is in these photos? Exit 0 if every face was recognised, 4 no face, 5 someone unknown."""
    with handled(as_json):
        results, codes = [], []
        with open_gallery() as gallery:
            threshold = gallery.threshold
            for image in images:
                target = annotate_to
                if annotate_to is not None and len(images) > 1:
                    target = annotate_to / f"{image.stem}.annotated.jpg"
                res, code = _identify_one(gallery, image, target)
                results.append(res)
                codes.append(code)

        def human() -> None:
            for res in results:
                if "error" in res:
                    err.print(f"{res['image']}: [red]{res['message']}[/red]", highlight=False)
                    continue
                if not res["faces"]:
                    out.print(f"{res['image']}: no face found")
                for i, f in enumerate(res["faces"]):
                    best = f["candidates"][0] if f["candidates"] else None
                    if f["decision"] == "match" and best is not None:
                        what = f"[green]{f['person']['name']}[/green] (score {best['score']:.2f})"
                    else:
                        hint = f", closest {best['name']} {best['score']:.2f}" if best else ""
                        what = f"[red]unknown[/red] ({f['reason'].replace('_', ' ')}{hint})"
                    out.print(f"{res['image']} face {i + 1}: {what}", highlight=False)
            out.print(f"[dim]threshold {threshold:.3f}[/dim]")

        emit(as_json, {"results": results, "threshold": threshold}, human)
        raise typer.Exit(int(_worst(codes)))


@app.command()
def verify(
    first: Annotated[Path, typer.Argument(help="A photo (e.g. a selfie).")],
    second: Annotated[Path | None, typer.Argument(help="Another photo (e.g. an ID photo).")] = None,
    person: Annotated[
        str | None, typer.Option("--person", help="Verify FIRST against an enrolled person.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Is it the same person? Exit 0 if yes, 5 if not."""
    with handled(as_json):
        if (second is None) == (person is None):
            raise ConfigError("give either a second photo or --person ID")
        if person is not None:
            with open_gallery() as gallery:
                result = gallery.verify_person(first, person, actor=actor())
        else:
            assert second is not None
            with open_gallery() as gallery:
                result = gallery.verify_photos(first, second, actor=actor())

        def human() -> None:
            verdict = "[green]same person[/green]" if result.same_person else "[red]not the same person[/red]"
            out.print(
                f"{verdict}: score {result.score:.3f}, threshold {result.threshold:.3f} "
                f"(false-match rate {result.target_fmr:g})",
                highlight=False,
            )

        emit(as_json, result.to_dict(), human)
        raise typer.Exit(int(ExitCode.OK if result.same_person else ExitCode.UNKNOWN))


@app.command()
def detect(
    image: Annotated[Path, typer.Argument(help="A photo.")],
    annotate_to: Annotated[
        Path | None, typer.Option("--annotate", help="Write an annotated copy here.")
    ] = None,
    names: Annotated[
        bool, typer.Option("--names/--no-names", help="Label faces with enrolled names.")
    ] = True,
    as_json: JsonOpt = False,
) -> None:
    """Find faces: boxes, landmarks, quality; with --annotate, draw them (and names)."""
    from facegate.vision.annotate import MATCH, NEUTRAL, UNKNOWN, annotate, save_annotated
    from facegate.vision.engine import FaceEngine

    with handled(as_json):
        settings = load_settings()
        engine = FaceEngine(settings)
        analysed = engine.detect(image)
        faces = analysed.faces
        labels: list[str | None] = [f"{f.score:.2f}" for f in faces]
        colours = [NEUTRAL] * len(faces)
        idents: list[dict[str, Any]] = []
        if names and faces and _gallery_exists(settings):
            with Gallery.open(settings, engine=engine) as gallery:
                if len(gallery):
                    found = gallery.identify_faces(faces, actor=actor())
                    labels = [f.name or "unknown" for f in found]
                    colours = [MATCH if f.name else UNKNOWN for f in found]
                    idents = [{"decision": f.result.decision, "name": f.name} for f in found]
        if annotate_to is not None:
            save_annotated(annotate(analysed.image, faces, labels, colours), annotate_to)
        payload = {
            "image": str(image),
            "width": analysed.width,
            "height": analysed.height,
            "faces": [{**f.to_dict(), **(idents[i] if idents else {})} for i, f in enumerate(faces)],
            "annotated": str(annotate_to) if annotate_to else None,
        }

        def human() -> None:
            out.print(f"{image}: {len(faces)} face(s)")
            for i, f in enumerate(faces):
                q = f.quality
                label = f" {labels[i]}" if idents else ""
                out.print(
                    f"  {i + 1}.{label} box {f.box.left},{f.box.top} {f.box.width}x{f.box.height} "
                    f"score {f.score:.2f}, sharpness {q.sharpness:.2f}, frontal {q.frontal:.2f}, "
                    f"brightness {q.brightness:.2f}",
                    highlight=False,
                )
            if annotate_to:
                out.print(f"annotated image: {annotate_to}")

        emit(as_json, payload, human)
        if not faces:
            raise typer.Exit(int(ExitCode.NO_FACE))


def _gallery_exists(settings: Any) -> bool:
    url = settings.resolved_database_url
    if url.startswith("sqlite:///"):
        return Path(url.removeprefix("sqlite:///")).exists()
    return True


@people_app.command("list")
def people_list(
    name: Annotated[str | None, typer.Option(help="Only people with this exact name.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Everyone enrolled, with template counts and consent status."""
    with handled(as_json), open_gallery() as gallery:
        people = gallery.people(name)

        def human() -> None:
            t = Table(title=f"{len(people)} people")
            for col in ("id", "name", "templates", "consent until", "consent"):
                t.add_column(col)
            for p in people:
                until = p.consent.expires_at.date().isoformat() if p.consent else "-"
                t.add_row(
                    p.id,
                    p.name,
                    str(p.templates),
                    until,
                    "valid" if p.consent_valid else "[red]not valid[/red]",
                )
            out.print(t)

        emit(as_json, {"people": [p.to_dict() for p in people]}, human)


@people_app.command("show")
def people_show(person_id: Annotated[str, typer.Argument()], as_json: JsonOpt = False) -> None:
    """One person: consent records and templates (never the templates' contents)."""
    with handled(as_json), open_gallery() as gallery:
        p = gallery.person(person_id)
        templates = gallery.templates(person_id)
        consents = gallery.store.consents(person_id)
        payload = {
            **p.to_dict(),
            "consent_records": [c.to_dict() for c in consents],
            "template_list": [
                {
                    "id": t.id,
                    "model": t.space,
                    "face_px": t.face_px,
                    "sharpness": round(t.sharpness, 3),
                    "frontal": round(t.frontal, 3),
                    "brightness": round(t.brightness, 3),
                    "created_at": t.created_at.isoformat(),
                }
                for t in templates
            ],
        }

        def human() -> None:
            out.print(f"[bold]{p.name}[/bold] ({p.id}), enrolled {p.created_at:%Y-%m-%d %H:%M} UTC")
            for c in consents:
                state = (
                    "withdrawn"
                    if c.withdrawn_at
                    else ("valid" if c.valid_at(datetime.now(UTC)) else "expired")
                )
                out.print(
                    f"  consent: {c.purpose!r}, {c.given_at:%Y-%m-%d} to {c.expires_at:%Y-%m-%d}, "
                    f"recorded by {c.recorded_by} [{state}]",
                    highlight=False,
                )
            for t in templates:
                out.print(
                    f"  template {t.id}: {t.face_px} px, sharpness {t.sharpness:.2f}, "
                    f"frontal {t.frontal:.2f}",
                    highlight=False,
                )

        emit(as_json, payload, human)


@people_app.command("delete")
def people_delete(
    person_id: Annotated[str, typer.Argument()],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Erase a person: templates, face images, consent records, events, snapshots; then check.

    Prints the erasure receipt (what was removed, what the checks found), which is also kept in
    the audit trail without personal data.
    """
    from facegate.privacy.erasure import erase

    with handled(as_json), open_gallery() as gallery:
        p = gallery.person(person_id)
        confirm(
            yes, f"Erase {p.name} ({p.id}), their {p.templates} template(s) and everything derived from them?"
        )
        receipt = erase(gallery, person_id, actor=actor())
        payload = {"deleted": person_id, **receipt.removed, "receipt": receipt.to_dict()}

        def human() -> None:
            removed = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in receipt.removed.items())
            out.print(f"erased {p.name} ({person_id}): {removed}", highlight=False)
            state = (
                "[green]no trace found[/green]"
                if receipt.clean
                else f"[red]traces left: {receipt.checks}[/red]"
            )
            out.print(f"checks: {state}; {receipt.reclaimed}")
            out.print(f"receipt {receipt.digest} (audit subject {receipt.subject})", highlight=False)

        emit(as_json, payload, human)
        if not receipt.clean:
            raise typer.Exit(int(ExitCode.ERROR))


@people_app.command("export")
def people_export(
    person_id: Annotated[str, typer.Argument()],
    out_file: Annotated[
        Path | None, typer.Option("--out", help="Zip to write (default: ./facegate-<id>.zip).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Subject access: a zip of everything held about the person, with a README."""
    from facegate.privacy.export import export_subject

    with handled(as_json), open_gallery() as gallery:
        target = out_file or Path(f"facegate-{person_id}.zip")
        counts = export_subject(gallery, person_id, target, actor=actor())
        emit(
            as_json,
            {"file": str(target), **counts},
            lambda: out.print(f"wrote {target}: " + ", ".join(f"{v} {k}" for k, v in counts.items())),
        )


def confirm(yes: bool, question: str) -> None:
    """Destructive commands ask, unless --yes; without a terminal they refuse rather than guess."""
    if yes:
        return
    if not sys.stdin.isatty():
        raise ConfigError("this needs confirmation: run it in a terminal or pass --yes")
    typer.confirm(question, abort=True)


consent_app = typer.Typer(help="Consent records: list, withdraw, renew.", no_args_is_help=True)
app.add_typer(consent_app, name="consent")


@consent_app.command("list")
def consent_list(
    person_id: Annotated[str | None, typer.Argument(help="One person (default: everyone).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Consent records and whether each is in force now."""
    with handled(as_json), open_gallery() as gallery:
        people = [gallery.person(person_id)] if person_id else gallery.people()
        now = datetime.now(UTC)
        rows = []
        for p in people:
            for c in gallery.consents(p.id):
                state = (
                    "withdrawn"
                    if c.withdrawn_at and c.withdrawn_at <= now
                    else ("in force" if c.valid_at(now) else "expired")
                )
                rows.append({"person_id": p.id, "name": p.name, "id": c.id, "state": state, **c.to_dict()})

        def human() -> None:
            t = Table("person", "record", "purpose", "scope", "given", "expires", "state")
            for r in rows:
                colour = {"in force": "green", "expired": "red", "withdrawn": "yellow"}[str(r["state"])]
                t.add_row(
                    f"{r['name']} ({r['person_id']})",
                    str(r["id"]),
                    str(r["purpose"]),
                    ", ".join(r["scope"]),  # type: ignore[arg-type]
                    str(r["given_at"])[:10],
                    str(r["expires_at"])[:10],
                    f"[{colour}]{r['state']}[/{colour}]",
                )
            out.print(t)

        emit(as_json, {"consents": rows}, human)


@consent_app.command("withdraw")
def consent_withdraw(
    person_id: Annotated[str, typer.Argument()],
    record: Annotated[
        int | None, typer.Option("--record", help="One consent record (default: all in force).")
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Withdraw consent: the person stops matching at once; templates go after the grace period."""
    with handled(as_json), open_gallery() as gallery:
        p = gallery.person(person_id)
        confirm(yes, f"Withdraw consent for {p.name} ({p.id})? They stop being recognised at once.")
        withdrawn = gallery.withdraw_consent(person_id, record, actor=actor())
        grace = gallery.settings.privacy.consent_grace_days
        emit(
            as_json,
            {"person_id": person_id, "withdrawn": withdrawn, "templates_destroyed_after_days": grace},
            lambda: out.print(
                f"withdrew {len(withdrawn)} consent record(s) of {p.name}; no longer recognised; "
                f"templates destroyed by the purge after {grace:g} days (or now: facegate people delete)"
            ),
        )


@consent_app.command("renew")
def consent_renew(
    person_id: Annotated[str, typer.Argument()],
    expires: Annotated[str, typer.Option("--expires", help="Date, datetime or duration (365d, 2y).")],
    purpose: Annotated[str | None, typer.Option("--purpose", help="Default: the latest record's.")] = None,
    scope: Annotated[
        list[str] | None,
        typer.Option("--scope", help="door:<name>, identify, verify (repeat); default: the latest record's."),
    ] = None,
    recorded_by: Annotated[str | None, typer.Option("--by", help="Who recorded it (default: you).")] = None,
    evidence: Annotated[str | None, typer.Option("--evidence", help="Reference of the signed form.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Record a renewed consent (a new record from now; the old ones stay as history)."""
    with handled(as_json), open_gallery() as gallery:
        p = gallery.person(person_id)
        last = p.consent
        if purpose is None and last is None:
            raise ConfigError("this person has no consent record to renew: give --purpose")
        consent = Consent(
            purpose=purpose or (last.purpose if last else ""),
            expires_at=parse_when(expires),
            recorded_by=recorded_by or getpass.getuser(),
            evidence_ref=evidence,
            scope=tuple(scope) if scope else (last.scope if last else ("*",)),
        )
        person = gallery.add_consent(person_id, consent, actor=actor())
        emit(
            as_json,
            person.to_dict(),
            lambda: out.print(f"renewed consent of {p.name} until {consent.expires_at:%Y-%m-%d}"),
        )


@app.command()
def purge(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only count what would be removed.")] = False,
    now: Annotated[bool, typer.Option("--now", help="Remove it now (asks unless --yes).")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Apply the retention policy: expired events, snapshots, audit entries, lapsed people."""
    from facegate.privacy.retention import purge as run_purge

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


privacy_app = typer.Typer(help="What facegate keeps and for how long.", no_args_is_help=True)
app.add_typer(privacy_app, name="privacy")


@privacy_app.command("policy")
def privacy_policy(as_json: JsonOpt = False) -> None:
    """The retention schedule in force, ready to publish."""
    from facegate.privacy.retention import schedule

    with handled(as_json):
        rules = schedule(load_settings().privacy)

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


@app.command()
def redact(
    source: Annotated[Path, typer.Argument(help="A photo or a video.")],
    out_file: Annotated[Path, typer.Option("--out", help="Where to write the redacted copy.")],
    keep: Annotated[
        str | None, typer.Option("--keep", help="Leave this enrolled person's face visible (person id).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Blur every face (or every face but one enrolled person's) in a photo or video."""
    from facegate.privacy.redaction import Keep, Redactor, keep_person

    with handled(as_json):
        settings = load_settings()
        video = source.suffix.lower() in {".mp4", ".mov", ".mkv", ".avi", ".webm", ".gif"}
        gallery = Gallery.open(settings) if keep else None
        try:
            keep_fn: Keep | None = None
            if gallery is not None and keep is not None:
                keep_fn = keep_person(gallery, keep, actor=actor(), source=source.name)

            from facegate.vision.engine import FaceEngine

            engine = gallery.engine if gallery is not None else FaceEngine(settings)
            r = Redactor(engine)
            if video:
                with _progress() as bar:
                    task = bar.add_task("redacting frames", total=None)
                    stats = r.video(source, out_file, keep_fn, progress=lambda n: bar.advance(task, n))
            else:
                from facegate.vision.annotate import save_annotated

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


@models_app.command("list")
def models_list(as_json: JsonOpt = False) -> None:
    """Every model file, where it is, and whether its SHA-256 is the pinned one."""
    from facegate.vision.models import (
        DLIB_LANDMARKS_5,
        DLIB_LANDMARKS_68,
        DLIB_MMOD,
        DLIB_RESNET,
        ONNX_MMOD,
        ONNX_RESNET,
        sha256_file,
    )
    from facegate.vision.quantize import int8_path

    with handled(as_json):
        settings = load_settings()
        rows: list[dict[str, Any]] = []
        for m in (DLIB_RESNET, DLIB_MMOD, DLIB_LANDMARKS_5, DLIB_LANDMARKS_68):
            path = m.locate()
            ok = path.is_file() and sha256_file(path) == m.sha256
            rows.append({"name": m.name, "path": str(path), "kind": "dlib", "status": "ok" if ok else "BAD"})
        for c in (ONNX_RESNET, ONNX_MMOD):
            path = c.path(settings.models_dir)
            status = (
                "not built yet" if not path.exists() else ("ok" if sha256_file(path) == c.sha256 else "BAD")
            )
            rows.append({"name": c.name, "path": str(path), "kind": "onnx (converted)", "status": status})
        q = int8_path(settings.models_dir)
        rows.append(
            {
                "name": q.name,
                "path": str(q),
                "kind": "onnx int8",
                "status": "present" if q.exists() else "absent",
            }
        )

        def human() -> None:
            t = Table(title="models")
            for col in ("name", "kind", "status", "path"):
                t.add_column(col)
            for r in rows:
                t.add_row(r["name"], r["kind"], r["status"], r["path"])
            out.print(t)

        emit(as_json, {"models": rows}, human)
        if any(r["status"] == "BAD" for r in rows):
            raise typer.Exit(int(ExitCode.SECURITY))


@models_app.command("convert")
def models_convert(as_json: JsonOpt = False) -> None:
    """Build the ONNX versions of dlib's networks now (otherwise done on first use)."""
    from facegate.vision.models import ONNX_MMOD, ONNX_RESNET, converted_path

    with handled(as_json):
        settings = load_settings()
        paths = [str(converted_path(m, settings.models_dir)) for m in (ONNX_RESNET, ONNX_MMOD)]

        def human() -> None:
            for p in paths:
                out.print(f"ready: {p}")

        emit(as_json, {"converted": paths}, human)


@models_app.command("quantize")
def models_quantize(
    faces: Annotated[Path, typer.Option("--faces", help="A folder of face photos to calibrate on.")],
    limit: Annotated[int, typer.Option(help="Use at most this many faces.")] = 512,
    as_json: JsonOpt = False,
) -> None:
    """Build the int8 embedder (`embedder.backend: onnx-int8`), calibrated on your faces."""
    from facegate.vision.engine import FaceEngine
    from facegate.vision.quantize import quantize_embedder

    with handled(as_json):
        settings = load_settings()
        photos = sorted(p for p in faces.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)[: limit * 2]
        if not photos:
            raise ConfigError(f"{faces} holds no photos")
        engine = FaceEngine(settings)
        chips = []
        with _progress() as bar:
            task = bar.add_task("finding faces", total=len(photos))
            for p in photos:
                with suppress(FacegateError):
                    chips += [f.chip for f in engine.detect(p).faces[:1]]
                bar.advance(task)
                if len(chips) >= limit:
                    break
        path = quantize_embedder(settings.models_dir, chips)
        emit(
            as_json,
            {"int8_model": str(path), "calibration_faces": len(chips)},
            lambda: out.print(f"int8 embedder written to {path} ({len(chips)} calibration faces)"),
        )


audit_app = typer.Typer(help="The hash-chained audit trail: check it, read it.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")


@audit_app.command("verify")
def audit_verify(as_json: JsonOpt = False) -> None:
    """Recompute the chain: exit 8 if any entry was edited or deleted."""
    with handled(as_json), open_gallery() as gallery:
        check = gallery.audit.verify()
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


keys_app = typer.Typer(
    help="API keys of the REST service (shown once, stored as hashes).", no_args_is_help=True
)
app.add_typer(keys_app, name="keys")


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Argument(help="Who or what uses the key, e.g. 'front-door'.")],
    role: Annotated[str, typer.Option(help="admin, operator, device or auditor.")] = "operator",
    camera: Annotated[
        list[str] | None, typer.Option("--camera", help="A camera a device key speaks for (repeat).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Create an API key; its secret is printed this once."""
    from facegate.api.keys import KeyStore

    with handled(as_json), open_gallery() as gallery:
        key, token = KeyStore(gallery.store).create(name, role, camera)
        gallery.audit.record(actor(), "key_create", key.id, {"role": key.role.value})
        emit(
            as_json,
            {**key.to_dict(), "key": token},
            lambda: out.print(f"{key.name} ({key.role.value}): {token}"),
        )


@keys_app.command("list")
def keys_list(as_json: JsonOpt = False) -> None:
    """Every API key (without secrets)."""
    from facegate.api.keys import KeyStore

    with handled(as_json), open_gallery() as gallery:
        keys = KeyStore(gallery.store).list()

        def human() -> None:
            t = Table(title="API keys")
            for col in ("id", "name", "role", "created", "revoked"):
                t.add_column(col)
            for k in keys:
                revoked = f"{k.revoked_at:%Y-%m-%d}" if k.revoked_at else ""
                t.add_row(k.id, k.name, k.role.value, f"{k.created_at:%Y-%m-%d}", revoked)
            out.print(t)

        emit(as_json, {"keys": [k.to_dict() for k in keys]}, human)


@keys_app.command("rotate-data-key")
def keys_rotate_data_key(
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Re-encrypt every template, face image and snapshot, and re-key the audit chain, under a
    new data key in one transaction. The old key stops working."""
    import base64
    import os
    import secrets

    from facegate.gallery.rotation import rotate_data_key

    with handled(as_json):
        settings = load_settings()
        from_env = settings.secret_key is not None
        with Gallery.open(settings) as gallery:
            confirm(yes, "Re-encrypt everything under a new data key? The old key will no longer work.")
            new_secret = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
            pending = settings.key_file.with_name(settings.key_file.name + ".new")
            if not from_env:
                # Written (and synced) before the data changes: a crash can lose the swap, not the key.
                pending.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                fd = os.open(pending, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "w") as fh:
                    fh.write(new_secret + "\n")
                    fh.flush()
                    os.fsync(fh.fileno())
            done = False

            def committed() -> None:
                # The data now opens only with the new key: put it in place before anything else.
                nonlocal done
                done = True
                if from_env:
                    err.print(f"[bold]new FACEGATE_SECRET_KEY (shown only now):[/bold] {new_secret}")
                else:
                    os.replace(pending, settings.key_file)

            try:
                result = rotate_data_key(gallery, new_secret, actor=actor(), committed=committed)
            except BaseException:
                if not done:
                    pending.unlink(missing_ok=True)
                raise
        payload = {
            **result.to_dict(),
            "key_file": None if from_env else str(settings.key_file),
            "new_secret_key": new_secret if from_env else None,
        }

        def human() -> None:
            out.print(
                f"re-encrypted {result.templates} template(s), {result.face_images} face image(s), "
                f"{result.snapshots} snapshot(s); re-keyed {result.audit_entries} audit entr(ies)"
            )
            if from_env:
                err.print(
                    "The key came from FACEGATE_SECRET_KEY: set it to the new key above before restarting."
                )
            else:
                out.print(f"new key in {settings.key_file}; the old key no longer opens this gallery")

        emit(as_json, payload, human)


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[str, typer.Argument()],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Revoke an API key at once."""
    from facegate.api.keys import KeyStore

    with handled(as_json), open_gallery() as gallery:
        confirm(yes, f"Revoke API key {key_id}?")
        key = KeyStore(gallery.store).revoke(key_id)
        gallery.audit.record(actor(), "key_revoke", key.id, {"role": key.role.value})
        emit(as_json, key.to_dict(), lambda: out.print(f"revoked {key.id} ({key.name})"))


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8080,
) -> None:
    """Run the REST service (OpenAPI at /docs). On first start, prints an admin key once."""
    import uvicorn

    from facegate.api.app import create_app
    from facegate.api.keys import KeyStore

    with handled(False):
        settings = load_settings()
        gallery = Gallery.open(settings)
        keys = KeyStore(gallery.store)
        if not keys.any_active():
            key, token = keys.create("initial admin", "admin")
            gallery.audit.record(actor(), "key_create", key.id, {"role": "admin", "initial": True})
            err.print(
                f"[bold]No API key existed: created an admin key. It is shown only now:[/bold]\n{token}"
            )
        uvicorn.run(create_app(settings, gallery, background=True), host=host, port=port, log_level="info")
        gallery.close()


@app.command()
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
    import threading

    from facegate.settings import CameraSettings
    from facegate.video.service import LiveService
    from facegate.video.writer import AnnotatedVideo

    with handled(as_json):
        settings = load_settings()
        camera = next((c for c in settings.cameras if c.name == source), None)
        if camera is None:
            camera = CameraSettings(name="watch", source=source)
        if fps is not None:
            camera = camera.model_copy(update={"fps": fps})
        with Gallery.open(settings) as gallery:
            # Only --door acts on a door; watching a configured camera alone never opens one.
            live = LiveService(gallery, cameras=[camera], doors=door is not None)
            if live.mqtt is not None:
                live.mqtt.start()
            writer = AnnotatedVideo(annotate, camera.fps) if annotate else None

            def show(d: Any) -> None:
                if as_json:
                    sys.stdout.write(
                        json.dumps(
                            {"kind": d.kind, "camera": d.camera, "person_id": d.person_id, **d.details()}
                        )
                        + "\n"
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

            pipeline = live.pipeline(
                camera, on_decision=show, on_frame=writer.write_result if writer else None, door=door
            )
            src = pipeline.source()
            if duration is not None:
                timer = threading.Timer(duration, src.stop)
                timer.daemon = True
                timer.start()
            try:
                stats = pipeline.run(src)
            except KeyboardInterrupt:
                src.stop()
                stats = None
            finally:
                if writer is not None:
                    writer.close()
                live.bus.close()
        if stats is None:
            raise typer.Exit(130)
        summary = {
            "source": camera.source,
            "frames_processed": stats.frames,
            "frames_decoded": stats.decoded,
            "frames_skipped": stats.skipped,
            "reconnects": stats.reconnects,
            "seconds": round(stats.seconds, 2),
            "fps": round(stats.fps, 1),
            "decisions": {
                k: sum(d.kind == k for d in stats.decisions) for k in ("granted", "denied", "unknown")
            },
            "annotated": str(annotate) if annotate else None,
        }
        if as_json:
            sys.stdout.write(json.dumps({"summary": summary}) + "\n")
        else:
            out.print(
                f"{stats.frames} frames in {stats.seconds:.1f}s ({stats.fps:.1f} fps); "
                + ", ".join(f"{v} {k}" for k, v in summary["decisions"].items())  # type: ignore[attr-defined]
                + (f"; annotated video: {annotate}" if annotate else ""),
                highlight=False,
            )


OutOpt = Annotated[Path | None, typer.Option("--out", help="Report folder (default: DATA_DIR/reports).")]


@contextmanager
def _eval_context(as_json: bool, out_dir: Path | None, total: int | None = None) -> Iterator[Any]:
    from facegate.vision.engine import FaceEngine

    with handled(as_json):
        settings = load_settings()
        engine = FaceEngine(settings)
        with _progress() as bar:
            task = bar.add_task("embedding photos", total=total)

            def advance(n: int) -> None:
                bar.advance(task, n)

            yield engine, out_dir or settings.data_dir / "reports", settings.data_dir / "eval-cache", advance


def _count_photos(root: Path) -> int:
    return sum(1 for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)


def _print_report(as_json: bool, result: dict[str, Any], lines: list[str]) -> None:
    def human() -> None:
        for line in lines:
            out.print(line, highlight=False)
        out.print(f"report: {result['html']}")

    emit(as_json, result, human)


@eval_app.command("verify")
def eval_verify(
    pairs: Annotated[
        Path, typer.Argument(help="CSV of img1,img2,same[,fold] (LFW's pairs.csv), or its folder.")
    ],
    images: Annotated[Path | None, typer.Option(help="Folder the image paths are relative to.")] = None,
    out_dir: OutOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """1:1 verification: ROC/DET, EER, TAR at FAR 1e-2..1e-6, k-fold accuracy, failure to enrol."""
    from facegate.eval.runs import run_verify

    csv_path = pairs / "pairs.csv" if pairs.is_dir() else pairs
    with _eval_context(as_json, out_dir) as (engine, out, cache, advance):
        result = run_verify(engine, csv_path, images, out, cache, advance)
    s = result["summary"]
    lines = [f"{k}: {v:.4f}" if isinstance(v, float) else f"{k}: {v}" for k, v in s.items()]
    lines += [
        f"TAR at FAR {r['far']:g}: {r['tar']:.4f} ({r['impostors']} impostor pairs)"
        for r in result["tar_at_far"]
    ]
    _print_report(as_json, result, lines)


@eval_app.command("identify")
def eval_identify(
    root: Annotated[Path, typer.Argument(help="DIR/<identity>/<photo> (e.g. LFW's images/).")],
    size: Annotated[list[int] | None, typer.Option("--size", help="Gallery sizes (repeat).")] = None,
    seed: Annotated[int, typer.Option(help="Seed for the gallery choice.")] = 0,
    out_dir: OutOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Open-set 1:N: FNIR at FPIR 1e-1..1e-3 and CMC rank-1/5 for several gallery sizes."""
    from facegate.eval.runs import run_identify

    with _eval_context(as_json, out_dir, _count_photos(root)) as (engine, out, cache, advance):
        result = run_identify(engine, root, out, cache, advance, size, seed)
    lines = [
        ", ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in r.items())
        for r in result["rows"]
    ]
    _print_report(as_json, result, lines)


@eval_app.command("calibrate")
def eval_calibrate(
    root: Annotated[
        Path, typer.Argument(help="DIR/<identity>/<photo>: every cross-identity pair is an impostor.")
    ],
    write_config: Annotated[
        bool,
        typer.Option(
            "--write-config/--no-write-config", help="Point config.yaml's match.calibration_file at it."
        ),
    ] = True,
    as_json: JsonOpt = False,
) -> None:
    """Score thresholds for target false-match rates, from all impostor pairs of a dataset."""
    import yaml

    from facegate.eval.runs import run_calibrate

    with _eval_context(as_json, None, _count_photos(root)) as (engine, _out, cache, advance):
        target = engine.settings.data_dir / "calibration.json"
        table = run_calibrate(engine, root, target, cache, advance)
        config_path = engine.settings.config or engine.settings.data_dir / "config.yaml"
        if write_config:
            import os

            config_path = Path(os.environ.get("FACEGATE_CONFIG") or config_path)
            data = yaml.safe_load(config_path.read_text()) if config_path.exists() else {}
            data = data or {}
            data.setdefault("match", {})["calibration_file"] = str(target)
            config_path.write_text(yaml.safe_dump(data, sort_keys=False))
    result = {"calibration_file": str(target), "config": str(config_path) if write_config else None, **table}

    def human() -> None:
        for p in table["points"]:
            lo, hi = p["fmr_ci95"]
            out.print(f"FMR {p['fmr']:>8g}: threshold {p['threshold']:.4f}  (95% {lo:.2g}..{hi:.2g})")
        out.print(f"written to {target}" + (f"; {config_path} now uses it" if write_config else ""))

    emit(as_json, result, human)


@eval_app.command("groups")
def eval_groups(
    root: Annotated[Path, typer.Argument(help="DIR/<identity>/<photo>.")],
    labels: Annotated[
        Path, typer.Option("--labels", help="CSV: image,<label column> (paths relative to DIR).")
    ],
    column: Annotated[str | None, typer.Option(help="The label column, if the CSV has several.")] = None,
    seed: Annotated[int, typer.Option(help="Seed for sampling large groups.")] = 0,
    out_dir: OutOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Error rates by group (from the dataset's own labels) at one shared threshold."""
    from facegate.eval.runs import run_groups

    with _eval_context(as_json, out_dir) as (engine, out, cache, advance):
        result = run_groups(engine, root, labels, column, out, cache, advance, seed)
    lines = [f"{k}: {v}" for k, v in result["summary"].items()]
    lines += [
        f"{r['group']}: FMR {r['FMR']:.3g} ({r['FMR / overall']:.2f}x), FNMR {r['FNMR']:.3g} "
        f"({r['FNMR / overall']:.2f}x)"
        for r in result["rows"]
    ]
    _print_report(as_json, result, lines)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
