"""Reads that the domain audits itself, so the CLI and the API account for them alike: a
photo-vs-photo verification."""

from __future__ import annotations

import pytest

from facegate import Gallery

from tests.cli.test_cli import Cli
from tests.conftest import OBAMA, PROBES

pytestmark = pytest.mark.integration


def test_a_photo_vs_photo_verification_is_audited(gallery: Gallery) -> None:
    same = gallery.verify_photos(PROBES / "obama.jpg", OBAMA, actor="bank-teller")
    other = gallery.verify_photos(PROBES / "biden.jpg", OBAMA, actor="bank-teller")
    assert same.same_person and not other.same_person
    entries = list(reversed(gallery.audit.entries(10)))
    assert [(e.actor, e.action, e.target, e.details, e.results) for e in entries] == [
        ("bank-teller", "verify", None, {"same_person": True}, 1),
        ("bank-teller", "verify", None, {"same_person": False}, 0),
    ]


@pytest.mark.cli
def test_cli_verify_of_two_photos_is_audited(tmp_path) -> None:  # type: ignore[no-untyped-def]
    cli = Cli(tmp_path / "data")
    assert cli.json("verify", PROBES / "obama.jpg", OBAMA)["same_person"]
    (entry,) = cli.json("audit", "list")["entries"]
    assert entry["action"] == "verify" and entry["actor"].startswith("cli:") and entry["target"] is None
    assert entry["details"] == {"same_person": True} and entry["results"] == 1
