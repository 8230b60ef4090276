"""`facegate models ...`: the model files, their conversion to ONNX, and the int8 embedder."""

from __future__ import annotations

from contextlib import suppress
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from facegate.cli.common import IMAGE_SUFFIXES, JsonOpt, emit, handled, out, progress, settings
from facegate.errors import ConfigError, ExitCode, FacegateError
from facegate.vision.engine import FaceEngine
from facegate.vision.models import (
    DLIB_LANDMARKS_5,
    DLIB_LANDMARKS_68,
    DLIB_MMOD,
    DLIB_RESNET,
    ONNX_MMOD,
    ONNX_RESNET,
    REID0095_BIN,
    REID0095_ONNX,
    REID0095_XML,
    SFACE,
    SFACE_FAST,
    YUNET,
    converted_path,
    sha256_file,
)
from facegate.vision.quantize import int8_path, quantize_embedder

models_app = typer.Typer(
    help="Model files: check them, build the ONNX graphs, quantize.", no_args_is_help=True
)
CONVERTED = (ONNX_RESNET, ONNX_MMOD, SFACE_FAST, REID0095_ONNX)


@models_app.command("list")
def models_list(as_json: JsonOpt = False) -> None:
    """Every model file, where it is, and whether its SHA-256 is the pinned one."""
    with handled(as_json):
        models_dir = settings().models_dir
        rows: list[dict[str, Any]] = []
        for m in (DLIB_RESNET, DLIB_MMOD, DLIB_LANDMARKS_5, DLIB_LANDMARKS_68):
            path = m.locate()
            ok = path.is_file() and sha256_file(path) == m.sha256
            rows.append({"name": m.name, "path": str(path), "kind": "dlib", "status": "ok" if ok else "BAD"})
        for m in (YUNET, SFACE, REID0095_XML, REID0095_BIN):
            path = m.locate()
            ok = path.is_file() and sha256_file(path) == m.sha256
            rows.append(
                {"name": m.name, "path": str(path), "kind": "shipped", "status": "ok" if ok else "BAD"}
            )
        for c in CONVERTED:
            path = c.path(models_dir)
            status = (
                "not built yet" if not path.exists() else ("ok" if sha256_file(path) == c.sha256 else "BAD")
            )
            rows.append({"name": c.name, "path": str(path), "kind": "onnx (converted)", "status": status})
        q = int8_path(models_dir)
        rows.append(
            {
                "name": q.name,
                "path": str(q),
                "kind": "onnx int8",
                "status": "present" if q.exists() else "absent",
            }
        )

        def human() -> None:
            t = Table(title="models")
            for col in ("name", "kind", "status", "path"):
                t.add_column(col)
            for r in rows:
                t.add_row(r["name"], r["kind"], r["status"], r["path"])
            out.print(t)

        emit(as_json, {"models": rows}, human)
        if any(r["status"] == "BAD" for r in rows):
            raise typer.Exit(int(ExitCode.SECURITY))


@models_app.command("convert")
def models_convert(as_json: JsonOpt = False) -> None:
    """Build the ONNX graphs facegate runs now (otherwise done on first use): dlib's networks,
    SFace folded to float32, reid0095 rebuilt from its OpenVINO IR."""
    with handled(as_json):
        models_dir = settings().models_dir
        paths = [str(converted_path(m, models_dir)) for m in CONVERTED]

        def human() -> None:
            for p in paths:
                out.print(f"ready: {p}")

        emit(as_json, {"converted": paths}, human)


@models_app.command("quantize")
def models_quantize(
    faces: Annotated[Path, typer.Option("--faces", help="A folder of face photos to calibrate on.")],
    limit: Annotated[int, typer.Option(help="Use at most this many faces.")] = 512,
    as_json: JsonOpt = False,
) -> None:
    """Build the int8 embedder (`embedder.backend: onnx-int8`), calibrated on your faces."""
    with handled(as_json):
        config = settings()
        photos = sorted(p for p in faces.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)[: limit * 2]
        if not photos:
            raise ConfigError(f"{faces} holds no photos")
        engine = FaceEngine(config)
        chips = []
        with progress() as bar:
            task = bar.add_task("finding faces", total=len(photos))
            for p in photos:
                with suppress(FacegateError):
                    chips += [f.chip for f in engine.detect(p).faces[:1]]
                bar.advance(task)
                if len(chips) >= limit:
                    break
        path = quantize_embedder(config.models_dir, chips)
        emit(
            as_json,
            {"int8_model": str(path), "calibration_faces": len(chips)},
            lambda: out.print(f"int8 embedder written to {path} ({len(chips)} calibration faces)"),
        )
