"""Commands on photos: enroll, enroll-dir, identify, verify, detect."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from facegate.cli.common import (
    IMAGE_SUFFIXES,
    ConsentBy,
    ConsentEvidence,
    ConsentExpires,
    ConsentGiven,
    ConsentPurpose,
    JsonOpt,
    actor,
    bulk_gallery,
    emit,
    err,
    handled,
    make_consent,
    open_gallery,
    out,
    progress,
    settings,
)
from facegate.errors import ConfigError, ExitCode, FacegateError, GalleryNotFound, NoFaceFound
from facegate.gallery.gallery import Gallery
from facegate.settings import Settings
from facegate.vision.annotate import MATCH, NEUTRAL, UNKNOWN, annotate, save_annotated
from facegate.vision.engine import FaceEngine

LivenessOpt = Annotated[
    bool,
    typer.Option("--liveness", help="Refuse photos judged presentation attacks (a printed photo, a screen)."),
]


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
    liveness: LivenessOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Enrol a person from photos: every photo must show one good face, or nothing is written."""
    with handled(as_json):
        consent = make_consent(
            consent_purpose, consent_expires, consent_given_at, consent_by, consent_evidence
        )
        with open_gallery(create=True) as gallery:
            result = gallery.enroll(
                name,
                list(images),
                consent,
                person_id=person_id,
                external_id=external_id,
                actor=actor(),
                liveness=liveness,
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
        who = actor()
        photos_in = sum(len(p) for _, p in folders)
        with bulk_gallery(photos_in, create=True) as (gallery, at_once), progress() as bar:
            task = bar.add_task("enrolling", total=photos_in)

            def one(folder: tuple[str, list[Path]]) -> dict[str, Any]:
                name, photos = folder
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
                        actor=who,
                    )
                    return {"name": name, **result.to_dict()}
                except FacegateError as exc:
                    return {"name": name, "person": None, "templates_added": 0, "error": exc.to_dict()}

            # One person per worker at a time; the summary keeps the folders' order.
            with ThreadPoolExecutor(at_once) as threads:
                summary = list(threads.map(one, folders))
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


def identify(
    images: Annotated[list[Path], typer.Argument(help="Photos to search the gallery for.")],
    annotate_to: Annotated[
        Path | None, typer.Option("--annotate", help="Write an annotated copy (a folder for several photos).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Who is in these photos? Exit 0 if every face was recognised, 4 no face, 5 someone unknown."""
    with handled(as_json):
        with bulk_gallery(len(images)) as (gallery, at_once):
            threshold = gallery.threshold

            def one(image: Path) -> tuple[dict[str, Any], ExitCode]:
                target = annotate_to
                if annotate_to is not None and len(images) > 1:
                    target = annotate_to / f"{image.stem}.annotated.jpg"
                return _identify_one(gallery, image, target)

            with ThreadPoolExecutor(at_once) as threads:  # results in the photos' order
                done = list(threads.map(one, images))
        results = [r for r, _ in done]
        codes = [c for _, c in done]

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


def verify(
    first: Annotated[Path, typer.Argument(help="A photo (e.g. a selfie).")],
    second: Annotated[Path | None, typer.Argument(help="Another photo (e.g. an ID photo).")] = None,
    person: Annotated[
        str | None, typer.Option("--person", help="Verify FIRST against an enrolled person.")
    ] = None,
    liveness: Annotated[
        bool,
        typer.Option("--liveness", help="Refuse a FIRST photo (the selfie) judged a presentation attack."),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Is it the same person? Exit 0 if yes, 5 if not (6 if --liveness refuses the photo)."""
    with handled(as_json):
        if (second is None) == (person is None):
            raise ConfigError("give either a second photo or --person ID")
        if person is not None:
            with open_gallery() as gallery:
                result = gallery.verify_person(first, person, actor=actor(), liveness=liveness)
        else:
            assert second is not None
            with open_gallery() as gallery:
                result = gallery.verify_photos(first, second, actor=actor(), liveness=liveness)

        def human() -> None:
            verdict = "[green]same person[/green]" if result.same_person else "[red]not the same person[/red]"
            out.print(
                f"{verdict}: score {result.score:.3f}, threshold {result.threshold:.3f} "
                f"(false-match rate {result.target_fmr:g})",
                highlight=False,
            )

        emit(as_json, result.to_dict(), human)
        raise typer.Exit(int(ExitCode.OK if result.same_person else ExitCode.UNKNOWN))


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
    with handled(as_json):
        config = settings()
        engine = FaceEngine(config)
        analysed = engine.detect(image)
        faces = analysed.faces
        labels: list[str | None] = [f"{f.score:.2f}" for f in faces]
        colours = [NEUTRAL] * len(faces)
        idents: list[dict[str, Any]] = []
        gallery = _existing(config, engine) if names and faces else None
        if gallery is not None:
            with gallery:
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


def _existing(config: Settings, engine: FaceEngine) -> Gallery | None:
    """The gallery, if there is one: drawing names needs none."""
    try:
        return Gallery.open(config, engine=engine, create=False)
    except GalleryNotFound:
        return None
