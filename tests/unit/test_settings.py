"""Settings come from defaults, the YAML config file and FACEGATE_* variables, in that order."""

from __future__ import annotations

from pathlib import Path

import pytest

from facegate.errors import ConfigError
from facegate.settings import load_settings

pytestmark = pytest.mark.unit


def test_environment_and_yaml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "facegate.yaml"
    cfg.write_text("match:\n  target_fmr: 0.001\n  top_k: 7\ndetector:\n  upsample: 2\n")
    monkeypatch.setenv("FACEGATE_CONFIG", str(cfg))
    monkeypatch.setenv("FACEGATE_DATA_DIR", str(tmp_path / "d"))
    monkeypatch.setenv("FACEGATE_MATCH__TOP_K", "9")
    s = load_settings()
    assert s.match.target_fmr == 0.001  # from YAML
    assert s.match.top_k == 9  # environment beats the file
    assert s.detector.upsample == 2
    assert s.data_dir == tmp_path / "d"
    assert s.resolved_database_url == f"sqlite:///{tmp_path / 'd' / 'facegate.db'}"


def test_config_yaml_in_data_dir_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FACEGATE_CONFIG", raising=False)
    monkeypatch.setenv("FACEGATE_DATA_DIR", str(tmp_path))
    (tmp_path / "config.yaml").write_text("quality:\n  min_face_px: 33\n")
    assert load_settings().quality.min_face_px == 33


def test_bad_values_are_config_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FACEGATE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("FACEGATE_MATCH__TARGET_FMR", "2")
    with pytest.raises(ConfigError, match="target_fmr"):
        load_settings()
    monkeypatch.delenv("FACEGATE_MATCH__TARGET_FMR")
    monkeypatch.setenv("FACEGATE_CONFIG", str(tmp_path / "missing.yaml"))
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings()


def test_camera_workers_is_off_auto_or_a_number_of_processes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from facegate.settings import CameraSettings
    from facegate.video.workers import groups_of

    monkeypatch.setenv("FACEGATE_DATA_DIR", str(tmp_path / "d"))
    assert load_settings().camera_workers == "off"
    cfg = tmp_path / "facegate.yaml"
    cfg.write_text("camera_workers: 2\n")
    monkeypatch.setenv("FACEGATE_CONFIG", str(cfg))
    assert load_settings().camera_workers == 2
    cfg.write_text("camera_workers: off\n")  # YAML's false
    assert load_settings().camera_workers == "off"
    cfg.write_text("camera_workers: on\n")  # YAML's true: not one process
    with pytest.raises(ConfigError, match="camera_workers"):
        load_settings()
    cfg.write_text("camera_workers: 2\n")
    monkeypatch.setenv("FACEGATE_CAMERA_WORKERS", "auto")  # the environment beats the file
    assert load_settings().camera_workers == "auto"
    for bad in ("0", "sometimes"):
        monkeypatch.setenv("FACEGATE_CAMERA_WORKERS", bad)
        with pytest.raises(ConfigError, match="camera_workers"):
            load_settings()
    cams = [CameraSettings(name=f"c{i}", source="0") for i in range(5)]
    dealt = [[c.name for c in g] for g in groups_of(cams, 2)]
    assert dealt == [["c0", "c2", "c4"], ["c1", "c3"]]
    assert [[c.name for c in g] for g in groups_of(cams[:1], 2)] == [["c0"]]  # no idle process
    assert len(groups_of(cams, None)) == 5  # "auto": one each
