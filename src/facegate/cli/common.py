"""What every command shares: the settings of this run, --json and --yes, output, errors, consent.

Settings are read once per invocation, on first use (so a bad configuration is reported like
any other error, in JSON under --json); the app's callback starts each invocation afresh.
"""

from __future__ import annotations

import getpass
import json
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from facegate.errors import ConfigError, FacegateError
from facegate.gallery.gallery import Gallery
from facegate.gallery.people import Consent
from facegate.settings import Settings, load_settings

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".pgm", ".ppm"}

out = Console()
err = Console(stderr=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable JSON on stdout.")]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]


@dataclass
class Invocation:
    """One run of a command: what it reads once."""

    loaded: Settings | None = None


_current = Invocation()


def start_invocation() -> None:
    """Forget what the previous invocation read (several can run in one process, e.g. in tests)."""
    global _current
    _current = Invocation()


def settings() -> Settings:
    """This invocation's settings: read from the environment and config file on first use."""
    if _current.loaded is None:
        _current.loaded = load_settings()
    return _current.loaded


def open_gallery(*, create: bool = False) -> Gallery:
    """This invocation's gallery. Only the commands that make one (enrolment, `serve`, `init`)
    pass `create`, and say where they made it; any other refuses (exit 2) a data directory or
    database that holds none, rather than make an empty gallery and a new key where the
    operator mistyped FACEGATE_DATA_DIR."""
    return announced(Gallery.open(settings(), create=create))


def announced(gallery: Gallery) -> Gallery:
    """`gallery`, after saying on stderr where it was made, if opening it made it."""
    if gallery.created:
        key = f"; its data key is in {gallery.key_file} (keep a copy)" if gallery.key_file else ""
        err.print(f"created a new gallery at {gallery.store.location}{key}", highlight=False)
    return gallery


# Starting the workers costs a few seconds (each loads the models): worth it from this many photos.
POOL_FROM = 6


@contextmanager
def bulk_gallery(photos: int, *, create: bool = False) -> Iterator[tuple[Gallery, int]]:
    """The gallery for work on many photos, and how many to run at once: with a pool of vision
    workers (`workers.processes`) when there are enough photos and cores, else in-process.
    `create` as for `open_gallery`."""
    from facegate.vision.pool import pooled_engine

    config = settings()
    engine = pooled_engine(config) if photos >= POOL_FROM else None
    try:
        with announced(Gallery.open(config, engine=engine, create=create)) as gallery:
            yield gallery, engine.pool.size if engine is not None else 1
    finally:
        if engine is not None:
            engine.close()


def actor() -> str:
    """Who the audit trail says did it, for commands run by hand."""
    return f"cli:{getpass.getuser()}"


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


def confirm(yes: bool, question: str) -> None:
    """Destructive commands ask, unless --yes; without a terminal they refuse rather than guess."""
    if yes:
        return
    if not sys.stdin.isatty():
        raise ConfigError("this needs confirmation: run it in a terminal or pass --yes")
    typer.confirm(question, abort=True)


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


def progress() -> Progress:
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=False,
    )


def print_table(title: str, columns: Sequence[str], rows: Iterable[Sequence[str]]) -> None:
    """A titled table of text rows on stdout (the human form of a list command)."""
    t = Table(title=title)
    for col in columns:
        t.add_column(col)
    for row in rows:
        t.add_row(*row)
    out.print(t)
