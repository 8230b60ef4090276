"""`facegate people ...` and `facegate consent ...`: who is enrolled, and on what consent."""

from __future__ import annotations

import getpass
from datetime import UTC, datetime
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
    parse_when,
    progress,
)
from facegate.errors import ConfigError, ExitCode, PersonNotFound
from facegate.gallery.people import Consent, Person
from facegate.gallery.reembed import Reembedding, reembed
from facegate.privacy.erasure import erase
from facegate.privacy.export import export_subject

people_app = typer.Typer(help="List, show and delete enrolled people.", no_args_is_help=True)
consent_app = typer.Typer(help="Consent records: list, withdraw, renew.", no_args_is_help=True)


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
    yes: YesOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Erase a person: templates, face images, consent records, events, snapshots; then check.

    Prints the erasure receipt (what was removed, what the checks found), which is also kept in
    the audit trail without personal data.
    """
    with handled(as_json), open_gallery() as gallery:
        try:
            p: Person | None = gallery.person(person_id)
        except PersonNotFound:
            p = None  # already deleted: `erase` finishes an erasure left unfinished, or shows its receipt
        if p is not None:
            confirm(
                yes,
                f"Erase {p.name} ({p.id}), their {p.templates} template(s) and everything derived from them?",
            )
        receipt = erase(gallery, person_id, actor=actor())
        payload = {"deleted": person_id, **receipt.removed, "receipt": receipt.to_dict()}

        def human() -> None:
            removed = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in receipt.removed.items())
            who = f"{p.name} ({person_id})" if p is not None else person_id
            out.print(f"erased {who}: {removed}", highlight=False)
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


@people_app.command("reembed")
def people_reembed(
    drop_unconvertible: Annotated[
        bool,
        typer.Option(
            "--drop-unconvertible",
            help="Delete templates that cannot be converted (no kept chip, or one that will not open): "
            "nothing can match them any more; their people enrol again.",
        ),
    ] = False,
    yes: YesOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Convert templates made by another embedding model (or with `embedder.flip` set the other
    way) into the configured one, from their kept face chips; until then they are not searched.

    People whose templates cannot be converted are listed (exit code 1): they must enrol again.
    """
    with handled(as_json), open_gallery() as gallery:
        foreign = gallery.foreign_spaces
        if not foreign:
            emit(
                as_json,
                Reembedding(gallery.space).to_dict(),
                lambda: out.print(f"every template is already in {gallery.space}: nothing to do"),
            )
            return
        what = ", ".join(f"{n} in {sp}" for sp, n in foreign.items())
        drop = "; those that cannot be converted are deleted" if drop_unconvertible else ""
        confirm(yes, f"Re-embed {sum(foreign.values())} template(s) ({what}) into {gallery.space}{drop}?")
        with progress() as bar:
            task = bar.add_task("re-embedding", total=None)
            result = reembed(
                gallery,
                actor=actor(),
                progress=lambda i, n: bar.update(task, completed=i, total=n),
                drop_unconvertible=drop_unconvertible,
            )

        def human() -> None:
            out.print(
                f"converted {result.converted} template(s) of {result.people} people into {result.space}",
                highlight=False,
            )
            if result.without_chip or result.unreadable:
                fate = f"{result.dropped} deleted" if drop_unconvertible else "left unsearchable"
                out.print(
                    f"[yellow]{result.without_chip} template(s) had no kept face chip and "
                    f"{len(result.unreadable)} a chip that would not open ({fate}); "
                    f"{len(result.to_enrol_again)} people must enrol again:[/yellow] "
                    + ", ".join(f"{gallery.person(p).name} ({p})" for p in result.to_enrol_again)
                )

        emit(as_json, result.to_dict(), human)
        if not result.complete:
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
    with handled(as_json), open_gallery() as gallery:
        target = out_file or Path(f"facegate-{person_id}.zip")
        counts = export_subject(gallery, person_id, target, actor=actor())
        emit(
            as_json,
            {"file": str(target), **counts},
            lambda: out.print(f"wrote {target}: " + ", ".join(f"{v} {k}" for k, v in counts.items())),
        )


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
    yes: YesOpt = False,
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
