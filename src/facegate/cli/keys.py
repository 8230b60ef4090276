"""`facegate keys ...`: API keys of the REST service, and rotation of the data key."""

from __future__ import annotations

from typing import Annotated

import typer

from facegate.api.keys import KeyStore
from facegate.cli.common import (
    JsonOpt,
    YesOpt,
    actor,
    confirm,
    emit,
    err,
    handled,
    open_gallery,
    out,
    print_table,
)
from facegate.gallery.rotation import NewKey, rotate_to_new_key

keys_app = typer.Typer(
    help="API keys of the REST service (shown once, stored as hashes).", no_args_is_help=True
)


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
    with handled(as_json), open_gallery() as gallery:
        keys = KeyStore(gallery.store).list()

        rows = [
            (
                k.id,
                k.name,
                k.role.value,
                f"{k.created_at:%Y-%m-%d}",
                f"{k.revoked_at:%Y-%m-%d}" if k.revoked_at else "",
            )
            for k in keys
        ]
        emit(
            as_json,
            {"keys": [k.to_dict() for k in keys]},
            lambda: print_table("API keys", ("id", "name", "role", "created", "revoked"), rows),
        )


def _show_env_key(key: NewKey) -> None:
    # At the commit, before anything else can fail: a key from the environment is only here.
    if key.key_file is None:
        err.print(f"[bold]new FACEGATE_SECRET_KEY (shown only now):[/bold] {key.secret}")


@keys_app.command("rotate-data-key")
def keys_rotate_data_key(yes: YesOpt = False, as_json: JsonOpt = False) -> None:
    """Re-encrypt every template, face image and snapshot, and re-key the audit chain, under a
    new data key in one transaction. The old key stops working."""
    with handled(as_json):
        with open_gallery() as gallery:
            confirm(yes, "Re-encrypt everything under a new data key? The old key will no longer work.")
            result, key = rotate_to_new_key(gallery, actor=actor(), committed=_show_env_key)
        from_env = key.key_file is None
        payload = {
            **result.to_dict(),
            "key_file": None if from_env else str(key.key_file),
            "new_secret_key": key.secret if from_env else None,
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
                out.print(f"new key in {key.key_file}; the old key no longer opens this gallery")

        emit(as_json, payload, human)


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[str, typer.Argument()],
    yes: YesOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Revoke an API key at once."""
    with handled(as_json), open_gallery() as gallery:
        confirm(yes, f"Revoke API key {key_id}?")
        key = KeyStore(gallery.store).revoke(key_id)
        gallery.audit.record(actor(), "key_revoke", key.id, {"role": key.role.value})
        emit(as_json, key.to_dict(), lambda: out.print(f"revoked {key.id} ({key.name})"))
