"""`facegate eval ...` on a small LFW subset: reports are written and calibration takes effect."""

from __future__ import annotations

import csv
import itertools
import json
import re
import shutil
from pathlib import Path

import pytest

from facegate.match import Calibration, shipped_calibration

from tests.cli.test_cli import Cli
from tests.conftest import LFW, SHARED, need

pytestmark = pytest.mark.cli


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/data/lfw as DIR/<identity>/<photo>: 4 people with 3 photos, 12 with one."""
    root = tmp_path_factory.mktemp("lfw-subset")
    for photo in sorted(LFW.glob("*.jpg")):
        person = re.sub(r"_\d{4}\.jpg$", "", photo.name)
        (root / person).mkdir(exist_ok=True)
        shutil.copy(photo, root / person / photo.name)
    return root


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path / "data")


def _html_ok(path: str, images: int) -> None:
    text = Path(path).read_text()
    assert text.startswith("<!doctype html>") and text.count("data:image/png;base64,") == images


def test_eval_identify_report(cli: Cli, dataset: Path) -> None:
    out = cli.json("eval", "identify", dataset, "--size", "4", "--size", "10")
    sizes = [r["gallery size"] for r in out["rows"]]
    assert sizes == [4, 10]
    first = out["rows"][0]
    assert first["mated searches"] == 8 and first["non-mated searches"] == 6
    assert first["rank-1"] == 1.0  # LFW photos of these four people are easy for the model
    _html_ok(out["html"], 1)
    assert json.loads(Path(out["json"]).read_text())["tables"]["By gallery size"][0]["gallery size"] == 4


def test_eval_verify_generic_csv(cli: Cli, dataset: Path, tmp_path: Path) -> None:
    photos = {d.name: sorted(p.name for p in d.iterdir()) for d in dataset.iterdir()}
    rows = []
    for fold, (person, files) in enumerate(sorted((k, v) for k, v in photos.items() if len(v) == 3)):
        for a, b in itertools.combinations(files, 2):
            rows.append((f"{person}/{a}", f"{person}/{b}", 1, fold % 2))
    singles = sorted(f"{k}/{v[0]}" for k, v in photos.items() if len(v) == 1)
    for i, (a, b) in enumerate(itertools.combinations(singles[:6], 2)):
        rows.append((a, b, 0, i % 2))
    pairs = tmp_path / "pairs.csv"
    with pairs.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["img1", "img2", "same", "fold"])
        w.writerows(rows)
    out = cli.json("eval", "verify", pairs, "--images", dataset)
    s = out["summary"]
    assert s["pairs"] == len(rows) and s["folds"] == 2 and s["failure to enrol (no usable face)"] == 0
    assert s["k-fold accuracy"] >= 0.9
    assert out["tar_at_far"] == []  # 15 impostor pairs cannot support a FAR of 1e-2 or below
    _html_ok(out["html"], 3)


def test_eval_verify_on_lfw_pairs(cli: Cli) -> None:
    lfw = SHARED / "faces" / "lfw"
    need(None if (lfw / "pairs.csv").is_file() else f"{lfw}/pairs.csv is not available")
    with (lfw / "pairs.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    subset = [r for r in rows if r["fold"] in ("0", "1")]
    subset = [r for r in subset if r["same"] == "1"][:40] + [r for r in subset if r["same"] == "0"][:40]
    small = cli.data_dir.parent / "pairs.csv"
    with small.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["img1", "img2", "same", "fold"])
        w.writeheader()
        w.writerows(subset)
    out = cli.json("eval", "verify", small, "--images", lfw / "images")
    assert out["summary"]["pairs"] == 80 and out["summary"]["EER"] < 0.1
    _html_ok(out["html"], 3)


def test_calibrate_changes_the_threshold_identify_uses(cli: Cli, dataset: Path) -> None:
    table = cli.json("eval", "calibrate", dataset)
    cal_file = Path(table["calibration_file"])
    config = Path(table["config"])
    assert cal_file.is_file() and str(cal_file) in config.read_text()
    mine = Calibration.load(cal_file)
    assert mine.min_fmr >= 1e-3  # a small set supports only coarse rates, and says so
    cli.env["FACEGATE_MATCH__TARGET_FMR"] = "0.1"
    photo = next((dataset / "Hugh_Grant").iterdir())
    cli.json("enroll", "Hugh Grant", photo, "--consent-purpose", "test", "--consent-expires", "30d")
    probe = sorted((dataset / "Hugh_Grant").iterdir())[1]
    res = cli.json("identify", probe)
    assert res["threshold"] == pytest.approx(mine.threshold(0.1))
    assert res["threshold"] != pytest.approx(shipped_calibration(mine.space).threshold(0.1))
    [face] = res["results"][0]["faces"]
    assert (face["decision"] == "match") == (face["candidates"][0]["score"] >= res["threshold"])
    # a target below what the small calibration supports is refused with a clear error
    cli.env["FACEGATE_MATCH__TARGET_FMR"] = "1e-5"
    refused = cli.json("identify", probe, code=2)
    assert refused["error"] == "config_error" and "lowest rate" in refused["message"]


def test_calibrate_with_labels_keeps_each_rate_within_every_group(
    cli: Cli, dataset: Path, tmp_path: Path
) -> None:
    labels = tmp_path / "labels.csv"
    with labels.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["image", "site"])
        for i, d in enumerate(sorted(dataset.iterdir())):
            for p in sorted(d.iterdir())[: 1 + i % 2]:  # some photos without a label: overall only
                w.writerow([f"{d.name}/{p.name}", "north" if i % 2 else "south"])
    args = ("--labels", labels, "--column", "site", "--no-write-config")
    table = cli.json("eval", "calibrate", dataset, *args)
    assert "labels.csv" in table["method"] and table["points"]
    for p in table["points"]:
        assert p["threshold"] >= p["all_pairs_threshold"]
        assert p["binding"] in {"all pairs", "north", "south"}
    assert "north" not in json.dumps(table["source"])  # the table names no one's group
    assert Calibration.load(Path(table["calibration_file"])).points  # loads as any table
    bad = cli.json("eval", "calibrate", dataset, "--labels", labels, "--column", "nope", code=2)
    assert bad["error"] == "config_error"
    alone = cli.json("eval", "calibrate", dataset, "--column", "site", code=2)  # a column of no file
    assert alone["error"] == "config_error" and "--labels" in alone["message"]


def test_eval_groups_from_dataset_labels(cli: Cli, dataset: Path, tmp_path: Path) -> None:
    labels = tmp_path / "labels.csv"
    with labels.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["image", "identity", "site"])
        for i, d in enumerate(sorted(dataset.iterdir())):
            for p in sorted(d.iterdir()):
                w.writerow([f"{d.name}/{p.name}", d.name, "north" if i % 2 else "south"])
    out = cli.json("eval", "groups", dataset, "--labels", labels, "--column", "site")
    groups = {r["group"]: r for r in out["rows"]}
    assert set(groups) == {"north", "south"}
    assert sum(r["photos"] for r in groups.values()) == 24
    assert out["summary"]["threshold at which every group meets the target FMR"] == max(
        r["threshold for FMR 0.001"] for r in out["rows"]
    )
    _html_ok(out["html"], 1)


def test_eval_fpir_enrols_for_real_and_presents_strangers(cli: Cli, dataset: Path) -> None:
    out = cli.json("eval", "fpir", dataset, "--size", "2", "--size", "4", "--strangers", "12")
    s = out["summary"]
    assert s["people drawn to enrol"] == 4 and s["strangers (never enrolled)"] == 12
    small, full = out["rows"]
    assert (small["gallery size"], full["gallery size"]) == (2, 4)
    # 12 single-photo strangers; the 4 enrolled people each search with their 2 other photos
    assert full["stranger searches"] == 12 and full["mated searches"] == 8 and small["mated searches"] == 4
    # easy LFW faces: at most two of the 8 mated searches missed, none given to someone else
    assert full["FNIR"] * 8 == round(full["FNIR"] * 8) and full["FNIR"] <= 0.25
    assert full["given to the wrong person"] == 0
    assert full["FPIR"] == 0.0 and full["FPIR 95% CI"][1] == pytest.approx(0.2425, abs=1e-3)
    _html_ok(out["html"], 1)
    # two enrolment photos: one search photo left per person; the temporary gallery is gone afterwards
    out = cli.json("eval", "fpir", dataset, "--size", "4", "--strangers", "12", "--enrol-photos", "2")
    assert out["rows"][0]["mated searches"] == 4
    assert not list((cli.data_dir / "eval-cache").glob("eval-gallery-*"))


def test_eval_identify_on_a_folder_without_single_photo_people(
    cli: Cli, dataset: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "household"
    for d in dataset.iterdir():
        if len(list(d.iterdir())) == 3:
            shutil.copytree(d, folder / "photos" / d.name)  # a deeper tree: identities are leaf folders
    out = cli.json("eval", "identify", folder, "--unenrolled", "0.25", "--size", "3")
    (row,) = out["rows"]
    # one of four people drawn as never enrolled (3 non-mated searches), three enrolled with 2 searches each
    assert row["gallery size"] == 3 and row["mated searches"] == 6 and row["non-mated searches"] == 3
    assert row["rank-1"] == 1.0
    assert "FNIR at FPIR 0.1" not in row  # 3 non-mated searches cannot resolve a rate of 1 in 10


def test_eval_groups_from_single_photo_identities(cli: Cli, dataset: Path, tmp_path: Path) -> None:
    labels = tmp_path / "labels.csv"
    singles = sorted(d for d in dataset.iterdir() if len(list(d.iterdir())) == 1)
    with labels.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["image", "site"])
        for i, d in enumerate(singles):
            w.writerow([f"{d.name}/{next(d.iterdir()).name}", "north" if i % 2 else "south"])
    out = cli.json("eval", "groups", dataset, "--labels", labels, "--column", "site")
    for row in out["rows"]:
        assert row["identities"] == 6 and row["impostor pairs"] == 15 and row["genuine pairs"] == 0
        assert row["FMR"] is not None and row["FNMR"] is None and row["FNMR 95% CI"] is None
        lo, hi = row["FMR 95% CI"]
        assert lo <= row["FMR"] <= hi and hi > 0.1  # 15 pairs say little
        assert row["enough pairs"] is False  # 15 pairs at FMR 1e-3: fewer than 3 false matches expected
    assert out["summary"]["groups with too few pairs"] == "north, south"
    assert out["summary"]["highest FNMR"].startswith("n/a")
