"""The `facegate` command as a user runs it: real processes, real photos, exit codes, --json."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from facegate.errors import ExitCode

from tests.conftest import BIDEN, GALLERY_PHOTOS, OBAMA, PROBES, SECRET
from tests.unit.test_decode import png_bomb

pytestmark = pytest.mark.cli

FACEGATE = [sys.executable, "-m", "facegate.cli"]
CONSENT = ["--consent-purpose", "door access", "--consent-expires", "365d", "--consent-by", "tests"]


class Cli:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.env = {
            **os.environ,
            "FACEGATE_DATA_DIR": str(data_dir),
            "FACEGATE_SECRET_KEY": SECRET,
            "COLUMNS": "200",
        }
        self.env.pop("FACEGATE_CONFIG", None)
        self.env.pop("FACEGATE_DATABASE_URL", None)

    def __call__(self, *args: object, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*FACEGATE, *map(str, args)],
            env=self.env,
            capture_output=True,
            text=True,
            input=stdin,
            timeout=300,
        )

    def json(self, *args: object, code: int = 0) -> dict:  # type: ignore[type-arg]
        r = self(*args, "--json")
        assert r.returncode == code, (
            f"exit {r.returncode}, expected {code}\nstdout: {r.stdout}\nstderr: {r.stderr}"
        )
        return json.loads(r.stdout)

    def rows(self, table: str) -> int:
        db = self.data_dir / "facegate.db"
        if not db.exists():
            return 0
        with sqlite3.connect(db) as c:
            return int(c.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path / "data")


def test_enrol_identify_show_delete(cli: Cli, tmp_path: Path) -> None:
    out = cli.json("enroll", "Barack Obama", OBAMA, *CONSENT)
    pid = out["person"]["id"]
    assert out["templates_added"] == 1 and out["person"]["consent"]["valid"]
    cli.json("enroll", "Joe Biden", BIDEN, *CONSENT)

    res = cli.json("identify", PROBES / "obama.jpg")
    [face] = res["results"][0]["faces"]
    assert face["decision"] == "match" and face["person"]["name"] == "Barack Obama"

    annotated = tmp_path / "out.jpg"
    res = cli.json("identify", PROBES / "obama_and_biden.jpg", "--annotate", annotated, code=ExitCode.UNKNOWN)
    decisions = sorted(f["person"]["name"] if f["person"] else "?" for f in res["results"][0]["faces"])
    assert decisions == ["?", "Barack Obama", "Joe Biden"]
    assert Image.open(annotated).size == Image.open(PROBES / "obama_and_biden.jpg").size

    people = cli.json("people", "list")["people"]
    assert sorted(p["name"] for p in people) == ["Barack Obama", "Joe Biden"]
    shown = cli.json("people", "show", pid)
    assert shown["consent_records"][0]["purpose"] == "door access" and len(shown["template_list"]) == 1
    assert "embedding" not in json.dumps(shown)

    refused = cli("people", "delete", pid)  # no terminal, no --yes
    assert refused.returncode == ExitCode.USAGE and "--yes" in refused.stderr
    assert cli.rows("people") == 2
    deleted = cli.json("people", "delete", pid, "--yes")
    assert deleted["templates"] == 1
    assert cli.rows("people") == 1 and cli.rows("templates") == 1
    cli.json("people", "show", pid, code=ExitCode.NOT_FOUND)


def test_human_output(cli: Cli) -> None:
    r = cli("enroll", "Barack Obama", OBAMA, *CONSENT)
    assert r.returncode == 0 and "enrolled Barack Obama" in r.stdout
    r = cli("identify", PROBES / "obama.jpg")
    assert r.returncode == 0 and "Barack Obama" in r.stdout and "score" in r.stdout
    r = cli("people", "list")
    assert "Barack Obama" in r.stdout and "valid" in r.stdout


def test_verify_exit_codes(cli: Cli) -> None:
    cli.json("init")  # a gallery for the audit trail: only enrolment, serve and init make one
    same = cli.json("verify", PROBES / "obama.jpg", OBAMA)
    assert same["same_person"] and same["score"] >= same["threshold"]
    other = cli.json("verify", PROBES / "biden.jpg", OBAMA, code=ExitCode.UNKNOWN)
    assert not other["same_person"]
    pid = cli.json("enroll", "Barack Obama", OBAMA, *CONSENT)["person"]["id"]
    assert cli.json("verify", PROBES / "obama.jpg", "--person", pid)["same_person"]


def test_bad_input_gives_distinct_codes_and_writes_nothing(cli: Cli, tmp_path: Path) -> None:
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    text = tmp_path / "text.jpg"
    text.write_text("hello")
    truncated = tmp_path / "truncated.jpg"
    data = OBAMA.read_bytes()
    truncated.write_bytes(data[: len(data) // 3])
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_bomb(30000, 30000))
    noface = tmp_path / "wall.png"
    Image.new("RGB", (400, 300), (120, 130, 140)).save(noface)
    from tests.integration.test_engine import ten_face_photo

    group = tmp_path / "group.jpg"
    Image.fromarray(ten_face_photo()).save(group)

    cases = [
        (empty, ExitCode.BAD_INPUT, "bad_image"),
        (text, ExitCode.BAD_INPUT, "bad_image"),
        (truncated, ExitCode.BAD_INPUT, "bad_image"),
        (bomb, ExitCode.BAD_INPUT, "image_too_large"),
        (noface, ExitCode.NO_FACE, "no_face"),
        (group, ExitCode.REFUSED, "too_many_faces"),
    ]
    for path, code, error in cases:
        out = cli.json("enroll", "Somebody", path, *CONSENT, code=code)
        assert out["error"] == error, path
        assert path.name in out["message"]
        assert cli.rows("people") == 0 and cli.rows("templates") == 0
    # identify reports per image, with the worst exit code overall
    res = cli.json("identify", noface, text, code=ExitCode.BAD_INPUT)
    assert res["results"][0]["faces"] == [] and res["results"][1]["error"] == "bad_image"
    assert cli("identify", noface).returncode == ExitCode.NO_FACE


def test_consent_is_required(cli: Cli) -> None:
    r = cli.json("enroll", "Barack Obama", OBAMA, code=ExitCode.REFUSED)
    assert r["error"] == "consent_missing"
    r = cli.json(
        "enroll",
        "Barack Obama",
        OBAMA,
        "--consent-purpose",
        "x",
        "--consent-expires",
        "2001-01-01",
        code=ExitCode.REFUSED,
    )
    assert r["error"] == "consent_expired"
    assert cli.rows("people") == 0


def test_enroll_dir_reports_refusals_and_is_rerunnable(cli: Cli, tmp_path: Path) -> None:
    root = tmp_path / "people"
    shutil.copytree(GALLERY_PHOTOS, root)
    (root / "Barack_Obama" / "broken.jpg").write_text("not a photo")
    shutil.copy(PROBES / "obama-240p.jpg", root / "Barack_Obama" / "tiny.jpg")
    out = cli.json("enroll-dir", root, *CONSENT)
    by = {p["name"]: p for p in out["people"]}
    assert set(by) == {"Barack Obama", "Joe Biden", "Alex Lacamoire", "Lin-Manuel Miranda"}
    assert by["Barack Obama"]["templates_added"] == 1
    assert sorted(r["error"] for r in by["Barack Obama"]["refused"]) == ["bad_image", "face_quality_too_low"]
    assert out["refused"] == 2 and cli.rows("templates") == 4
    shutil.copy(PROBES / "obama.jpg", root / "Barack_Obama" / "new.jpg")
    again = cli.json("enroll-dir", root, *CONSENT)
    assert {p["name"]: p["templates_added"] for p in again["people"]}["Barack Obama"] == 1
    assert cli.rows("people") == 4 and cli.rows("templates") == 5


def test_bulk_commands_in_the_worker_pool_give_the_in_process_results(tmp_path: Path) -> None:
    """enroll-dir and identify of many photos (the pool starts from 6) with 2 workers and with
    none: the same people, templates, refusals, decisions and scores."""
    from tests.conftest import LFW

    root = tmp_path / "people"
    for person in ("Hugh_Grant", "Christine_Gregoire", "John_Bolton", "Pedro_Malan"):
        (root / person).mkdir(parents=True)
        for i in (1, 2):
            shutil.copy(LFW / f"{person}_000{i}.jpg", root / person)
    (root / "Hugh_Grant" / "broken.jpg").write_text("not a photo")
    probes = sorted(LFW.glob("*_0003.jpg")) + sorted(LFW.glob("*_0001.jpg"))[:4] + [PROBES / "two_people.jpg"]
    answers = []
    for processes in ("2", "1"):
        cli = Cli(tmp_path / f"data-{processes}")
        cli.env["FACEGATE_WORKERS__PROCESSES"] = processes
        enrolled = cli.json("enroll-dir", root, *CONSENT)
        r = cli(*["identify", *probes, "--json"])
        assert r.returncode in (ExitCode.OK, ExitCode.UNKNOWN), r.stderr
        found = json.loads(r.stdout)["results"]
        assert [f["image"] for f in found] == [str(p) for p in probes]  # the photos' order
        answers.append(
            (
                [(p["name"], p["templates_added"], len(p["refused"])) for p in enrolled["people"]],
                [
                    [
                        (f["decision"], f["person"]["name"] if f["person"] else None, f["box"])
                        for f in x["faces"]
                    ]
                    for x in found
                ],
                [f["candidates"][0]["score"] for x in found for f in x["faces"]],
            )
        )
    pooled, in_process = answers
    assert pooled[:2] == in_process[:2]
    assert pooled[2] == pytest.approx(in_process[2], abs=1e-4)
    assert sum(n for _, n, _ in pooled[0]) == 8 and sum(r for _, _, r in pooled[0]) == 1
    assert sum(d == "match" for faces in pooled[1] for d, _, _ in faces) >= 4


def test_detect_annotates(cli: Cli, tmp_path: Path) -> None:
    target = tmp_path / "annotated.jpg"
    out = cli.json("detect", PROBES / "two_people.jpg", "--annotate", target)
    assert len(out["faces"]) == 2 and target.exists()
    before = Image.open(PROBES / "two_people.jpg").convert("RGB")
    after = Image.open(target).convert("RGB")
    assert before.size == after.size and before.tobytes() != after.tobytes()
    cli.json("enroll", "Barack Obama", OBAMA, *CONSENT)
    named = cli.json("detect", PROBES / "two_people.jpg", "--annotate", target)
    assert sorted(str(f.get("name")) for f in named["faces"]) == ["Barack Obama", "None"]


def test_models_list_convert_and_quantize(cli: Cli) -> None:
    listed = cli.json("models", "list")["models"]
    dlib_files = [m for m in listed if m["kind"] == "dlib"]
    assert len(dlib_files) == 4 and all(m["status"] == "ok" for m in dlib_files)
    shipped = {m["name"]: m["status"] for m in listed if m["kind"] == "shipped"}
    assert shipped == {
        "yunet_s_dynamic.onnx": "ok",
        "face_recognition_sface_2021dec_int8bq.onnx": "ok",
        "face-reidentification-retail-0095.xml": "ok",
        "face-reidentification-retail-0095.bin": "ok",
    }
    converted = cli.json("models", "convert")["converted"]
    assert len(converted) == 4 and all(Path(p).is_file() for p in converted)
    built = {
        m["name"]: m["status"]
        for m in cli.json("models", "list")["models"]
        if m["kind"] == "onnx (converted)"
    }
    assert set(built.values()) == {"ok"} and "face-reidentification-retail-0095_v2.onnx" in built
    from tests.conftest import LFW

    q = cli.json("models", "quantize", "--faces", LFW, "--limit", "16")
    assert q["calibration_faces"] == 16 and Path(q["int8_model"]).is_file()
    cli.env["FACEGATE_EMBEDDER__MODEL"] = "dlib"  # the int8 build is of dlib's ResNet
    cli.env["FACEGATE_EMBEDDER__BACKEND"] = "onnx-int8"
    cli.json("init")
    out = cli.json("verify", PROBES / "obama.jpg", OBAMA)
    assert out["same_person"]


def test_keys_are_shown_once_and_stored_as_hashes(cli: Cli) -> None:
    cli.json("init")  # a gallery for the audit trail: only enrolment, serve and init make one
    created = cli.json("keys", "create", "front-door", "--role", "device")
    token = created["key"]
    assert token.startswith("fgk_") and created["role"] == "device"
    listed = cli.json("keys", "list")["keys"]
    assert [k["name"] for k in listed] == ["front-door"] and "key" not in listed[0]
    with sqlite3.connect(cli.data_dir / "facegate.db") as c:
        stored = " ".join(str(v) for row in c.execute("SELECT * FROM api_keys") for v in row)
    assert token not in stored and token.split("_", 2)[2] not in stored
    assert cli("keys", "revoke", created["id"]).returncode == ExitCode.USAGE  # no terminal, no --yes
    assert cli.json("keys", "revoke", created["id"], "--yes")["revoked_at"] is not None
    assert cli.json("keys", "revoke", "nope", "--yes", code=ExitCode.NOT_FOUND)["error"] == "key_not_found"


def test_watch_prints_decisions_and_writes_an_annotated_video(cli: Cli, tmp_path: Path) -> None:
    import av

    from tests.conftest import LIN

    hamilton = Path(__file__).resolve().parents[1] / "data" / "videos" / "hamilton_clip.mp4"
    cli.json("enroll", "Lin-Manuel Miranda", LIN, *CONSENT)
    out = tmp_path / "annotated.mp4"
    r = cli("watch", hamilton, "--annotate", out, "--fps", "5", "--json")
    assert r.returncode == 0, r.stderr
    lines = [json.loads(line) for line in r.stdout.splitlines()]
    decisions, summary = lines[:-1], lines[-1]["summary"]
    assert [d["kind"] for d in decisions if d["kind"] == "granted"] == ["granted"]
    granted = next(d for d in decisions if d["kind"] == "granted")
    assert granted["name"] == "Lin-Manuel Miranda" and granted["liveness"] == "off"
    # No door, so nothing asked for a live face: said before the first frame, not only per event.
    assert "without checking for a live face" in r.stderr
    assert summary["frames_processed"] == 46 and summary["decisions"]["granted"] == 1
    with av.open(str(out)) as c:
        assert sum(1 for _ in c.decode(video=0)) == 46
    # Stored like any camera's events, and the decision is on the audit trail.
    with sqlite3.connect(cli.data_dir / "facegate.db") as c:
        kinds = [k for (k,) in c.execute("SELECT kind FROM events ORDER BY id")]
    assert [k for k in kinds if k != "camera_state"] == [d["kind"] for d in decisions]
    assert kinds.count("camera_state") == 3  # connecting, streaming, ended
    assert cli("watch", tmp_path / "nope.mp4").returncode == int(ExitCode.BAD_INPUT)
    r = cli("watch", hamilton, "--door", "nowhere")
    assert r.returncode == int(ExitCode.USAGE) and "no door named" in r.stderr


def test_privacy_commands(cli: Cli, tmp_path: Path) -> None:
    import zipfile

    pid = cli.json("enroll", "Barack Obama", OBAMA, *CONSENT)["person"]["id"]
    cli.json("enroll", "Joe Biden", BIDEN, *CONSENT)
    rows = cli.json("consent", "list", pid)["consents"]
    assert [r["state"] for r in rows] == ["in force"] and rows[0]["scope"] == ["*"]
    # Destructive without --yes and without a terminal: refused, nothing changed.
    r = cli("consent", "withdraw", pid)
    assert r.returncode == int(ExitCode.USAGE) and "--yes" in r.stderr
    assert cli.json("consent", "withdraw", pid, "--yes")["withdrawn"] == [rows[0]["id"]]
    assert cli.json("identify", OBAMA, code=int(ExitCode.UNKNOWN))["results"][0]["faces"][0]["person"] is None
    renewed = cli.json("consent", "renew", pid, "--expires", "90d", "--scope", "door:front")
    assert renewed["consent"]["valid"] and renewed["consent"]["scope"] == ["door:front"]
    states = [r["state"] for r in cli.json("consent", "list", pid)["consents"]]
    assert states == ["withdrawn", "in force"]
    # Retention: the published schedule, a dry run, a real run.
    policy = cli.json("privacy", "policy")["retention"]
    assert len(policy) >= 6 and all({"data", "where", "kept", "why"} <= set(p) for p in policy)
    assert cli.json("purge", "--dry-run")["dry_run"] is True
    assert cli.json("purge", "--now", "--yes")["people"] == 0
    # Subject access.
    exported = cli.json("people", "export", pid, "--out", tmp_path / "obama.zip")
    assert exported["templates"] == 1 and exported["consents"] == 2
    with zipfile.ZipFile(tmp_path / "obama.zip") as z:
        assert json.loads(z.read("person.json"))["name"] == "Barack Obama"
    # Redaction of a photo: every face blurred.
    red = cli.json("redact", PROBES / "obama_and_biden.jpg", "--out", tmp_path / "red.jpg")
    assert red["faces_blurred"] >= 2 and red["faces_kept"] == 0
    assert cli.json("detect", tmp_path / "red.jpg", code=int(ExitCode.NO_FACE))["faces"] == []
    # Key rotation with the key in FACEGATE_SECRET_KEY: the new key is shown once; the old one fails.
    rotated = cli.json("keys", "rotate-data-key", "--yes")
    assert rotated["templates"] == 2 and rotated["new_secret_key"]
    r = cli("people", "list", "--json")
    assert r.returncode == int(ExitCode.SECURITY)
    cli.env["FACEGATE_SECRET_KEY"] = rotated["new_secret_key"]
    assert len(cli.json("people", "list")["people"]) == 2
    # Erasure with its receipt.
    gone = cli.json("people", "delete", pid, "--yes")
    assert gone["receipt"]["clean"] and gone["templates"] == 1
    assert cli.json("audit", "verify")["ok"]


def test_people_reembed_converts_a_gallery_made_with_dlib(cli: Cli) -> None:
    cli.env["FACEGATE_EMBEDDER__MODEL"] = "dlib"  # the default before SFace
    pid = cli.json("enroll", "Barack Obama", OBAMA, *CONSENT)["person"]["id"]
    assert cli.json("people", "show", pid)["template_list"][0]["model"] == "dlib_resnet_v1_flip"
    del cli.env["FACEGATE_EMBEDDER__MODEL"]  # the default: SFace
    [refused] = cli.json("identify", PROBES / "obama.jpg", code=ExitCode.ERROR)["results"]
    assert refused["error"] == "embedding_space_mismatch" and "people reembed" in refused["message"]
    assert cli.json("people", "reembed", code=ExitCode.USAGE)["error"] == "config_error"  # asks first
    done = cli.json("people", "reembed", "--yes")
    assert (done["converted"], done["people"], done["without_chip"]) == (1, 1, 0)
    assert cli.json("people", "show", pid)["template_list"][0]["model"] == "sface_2021dec"
    [face] = cli.json("identify", PROBES / "obama.jpg")["results"][0]["faces"]
    assert face["decision"] == "match" and face["person"]["name"] == "Barack Obama"
    assert cli.json("people", "reembed")["converted"] == 0  # nothing left: no question asked
