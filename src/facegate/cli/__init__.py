"""The `facegate` command line: enrol, identify, verify, manage people, draw detections.

Every command takes `--json`; exit codes are those of `facegate.errors.ExitCode`. One module
per command group; this one only puts them together (in the order `facegate --help` lists them).
"""

from __future__ import annotations

import os
import sys

import typer

from facegate.cli import eval as eval_commands
from facegate.cli import keys, live, models, people, photos, privacy, setup
from facegate.cli import users as console_users
from facegate.cli.common import err, start_invocation

app = typer.Typer(
    name="facegate",
    help="Consent-based face recognition: enrol people, identify and verify faces.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.callback()(start_invocation)

app.command()(setup.init)
app.command()(photos.enroll)
app.command("enroll-dir")(photos.enroll_dir)
app.command()(photos.identify)
app.command()(photos.verify)
app.command()(photos.detect)
app.command()(privacy.purge)
app.command()(privacy.redact)
app.command()(live.serve)
app.command()(live.watch)

app.add_typer(people.people_app, name="people")
app.add_typer(models.models_app, name="models")
app.add_typer(eval_commands.eval_app, name="eval")
app.add_typer(people.consent_app, name="consent")
app.add_typer(privacy.privacy_app, name="privacy")
app.add_typer(privacy.audit_app, name="audit")
app.add_typer(keys.keys_app, name="keys")
app.add_typer(console_users.users_app, name="users")

__all__ = ["app", "main"]


def main() -> None:
    # Everything facegate writes is biometric data or leads to it: owner-only files.
    os.umask(0o077)
    try:
        app()
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
