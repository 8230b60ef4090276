"""`facegate users ...`: who may sign in to the web console, and with which role."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from facegate.cli.common import JsonOpt, YesOpt, actor, confirm, emit, handled, open_gallery, out, print_table
from facegate.errors import BadRequest, ConfigError
from facegate.web.users import UserStore

users_app = typer.Typer(
    help="Users of the web console (passwords stored as scrypt hashes).", no_args_is_help=True
)


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if not sys.stdin.isatty():
        raise ConfigError("no terminal to ask for the password: pass --password-stdin")
    first = typer.prompt("Password", hide_input=True)
    if typer.prompt("Again", hide_input=True) != first:
        raise BadRequest("the two passwords differ")
    return str(first)


@users_app.command("create")
def users_create(
    name: Annotated[str, typer.Argument(help="The name to sign in with, e.g. 'reception'.")],
    role: Annotated[str, typer.Option(help="admin, operator or auditor.")] = "operator",
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from the first line of stdin.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Create a console user; the password is asked for (or read from stdin)."""
    with handled(as_json), open_gallery() as gallery:
        user = UserStore(gallery.store).create(name, role, _password(password_stdin))
        gallery.audit.record(actor(), "console_user_create", user.id, {"role": user.role.value})
        emit(as_json, user.to_dict(), lambda: out.print(f"{user.name} ({user.role.value}) can now sign in"))


@users_app.command("list")
def users_list(as_json: JsonOpt = False) -> None:
    """Every console user (never their passwords)."""
    with handled(as_json), open_gallery() as gallery:
        users = UserStore(gallery.store).list()

        rows = [
            (
                u.id,
                u.name,
                u.role.value,
                f"{u.created_at:%Y-%m-%d}",
                f"{u.disabled_at:%Y-%m-%d}" if u.disabled_at else "",
            )
            for u in users
        ]
        emit(
            as_json,
            {"users": [u.to_dict() for u in users]},
            lambda: print_table("console users", ("id", "name", "role", "created", "disabled"), rows),
        )


@users_app.command("disable")
def users_disable(
    name: Annotated[str, typer.Argument()], yes: YesOpt = False, as_json: JsonOpt = False
) -> None:
    """Disable a console user at once: their open sessions stop working."""
    with handled(as_json), open_gallery() as gallery:
        confirm(yes, f"Disable console user {name}?")
        user = UserStore(gallery.store).disable(name)
        gallery.audit.record(actor(), "console_user_disable", user.id, {"role": user.role.value})
        emit(as_json, user.to_dict(), lambda: out.print(f"disabled {user.name}"))
