"""`facegate eval pad` on NUAA frames read in place from ../shared/pad (never copied)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from tests.cli.test_cli import Cli
from tests.conftest import SHARED, need

pytestmark = [pytest.mark.cli, pytest.mark.shared]

NUAA = SHARED / "pad" / "nuaa_train"


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path / "data")


def subset_labels(tmp_path: Path, per_class: int = 4) -> Path:
    """Labels for a few frames of each subject and class; the images stay in ../shared."""
    need(None if (NUAA / "labels.csv").is_file() else f"{NUAA} (NUAA frames) is not there")
    with (NUAA / "labels.csv").open(newline="") as fh:
        rows = sorted(csv.DictReader(fh), key=lambda r: r["image"])
    picked: dict[tuple[str, str], list[dict[str, str]]] = {}
    for r in rows:
        key = (Path(r["image"]).name[:4], r["live"])
        if key[0] in ("0002", "0005", "0006", "0009") and len(picked.setdefault(key, [])) < per_class:
            picked[key].append(r)
    out = tmp_path / "labels.csv"
    with out.open("w", newline="") as fh:
        w = csv.DictWriter(fh, ["image", "live"])
        w.writeheader()
        for group in picked.values():
            w.writerows(group)
    return out


def test_eval_pad_reports_iso_figures_with_a_held_out_threshold(cli: Cli, tmp_path: Path) -> None:
    labels = subset_labels(tmp_path)
    out = cli.json("eval", "pad", NUAA, "--labels", labels, "--out", tmp_path / "reports")
    s = out["summary"]
    assert s["presentations"] == 32 and s["bona fide"] == 16 and s["attacks: attack"] == 16
    at = out["at_configured_threshold"]
    assert at["APCER"]["n"] + round(s["APNRR (attacks refused, not scored)"] * 16) == 16
    # Printed photos: none of these is taken for a live face at the shipped threshold.
    assert at["APCER"]["k"] == 0 and at["APCER"]["ci95"][1] > 0
    assert at["BPCER"]["k"] <= 1
    held = out["held_out"]
    assert set(held["fit subjects"]) | set(held["held-out subjects"]) == {"0002", "0005", "0006", "0009"}
    assert not set(held["fit subjects"]) & set(held["held-out subjects"])
    assert [r["BPCER target"] for r in out["apcer_at_bpcer"]] == [0.01, 0.05]
    det = out["det"]
    assert len(det["threshold"]) == len(det["APCER"]) == len(det["BPCER"]) > 2
    page = Path(out["html"]).read_text()
    assert page.count("data:image/png;base64,") == 2 and "APCER" in page
    assert json.loads(Path(out["json"]).read_text())["summary"]["presentations"] == 32


def test_eval_pad_bad_labels_is_a_usage_error(cli: Cli, tmp_path: Path) -> None:
    bad = tmp_path / "labels.csv"
    bad.write_text("image,label\na.jpg,1\n")
    r = cli("eval", "pad", tmp_path, "--labels", bad, "--json")
    assert r.returncode == 2 and "image,live" in r.stdout + r.stderr


def test_enrol_and_verify_with_liveness_refuse_a_printed_photo(cli: Cli) -> None:
    need(None if (NUAA / "labels.csv").is_file() else f"{NUAA} (NUAA frames) is not there")
    attack = NUAA / "attack" / "0005_0005_00_00_01_104.jpg"
    real = NUAA / "real" / "0005_0005_00_00_01_7.jpg"
    consent = ["--consent-purpose", "door access", "--consent-expires", "365d", "--consent-by", "reception"]
    out = cli.json("enroll", "Resident", attack, *consent, "--liveness", code=6)
    assert out["error"] == "presentation_attack" and out["liveness"]["verdict"] == "attack"
    assert cli.rows("people") == 0
    out = cli.json("verify", attack, real, "--liveness", code=6)
    assert out["error"] == "presentation_attack"
    assert cli.json("verify", attack, real)["same_person"]  # without --liveness: a match


def test_eval_pad_on_moved_prints_reports_every_edit_on_both_classes(cli: Cli, tmp_path: Path) -> None:
    labels = subset_labels(tmp_path, per_class=2)
    out = cli.json(
        "eval", "pad", NUAA, "--labels", labels, "--variants", "captured,shear,dark_band+shear",
        "--out", tmp_path / "reports",
    )  # fmt: skip
    rows = {r["variant"]: r for r in out["variants"]}
    assert list(rows) == ["captured", "shear", "dark_band+shear"]
    for r in rows.values():  # each edit scored on the attacks and on the real frames alike
        attacks, real = (int(r[f"{k} k/n"].split("/")[1]) for k in ("APCER", "BPCER"))
        assert 0 < attacks <= 8 and 0 < real <= 8
    assert out["summary"]["variants"] == 3 and Path(out["html"]).read_text().count("data:image/png") == 1
    assert set(out["fit subjects"]).isdisjoint(out["held-out subjects"])
    r = cli("eval", "pad", NUAA, "--labels", labels, "--variants", "sideways", "--json")
    assert r.returncode == 2 and "unknown variant" in r.stdout + r.stderr
