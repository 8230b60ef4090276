"""`facegate eval ...`: how often facegate is wrong, and for whom, on labelled data.

`facegate.eval.runs` is imported inside each command: its plotting library takes about a second
to load, which no other command should pay.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from facegate.cli.common import IMAGE_SUFFIXES, JsonOpt, emit, handled, out, progress, settings
from facegate.errors import ConfigError
from facegate.vision.engine import FaceEngine

eval_app = typer.Typer(
    help="Evaluate on labelled data: how often facegate is wrong, and for whom.", no_args_is_help=True
)

OutOpt = Annotated[Path | None, typer.Option("--out", help="Report folder (default: DATA_DIR/reports).")]


@contextmanager
def _eval_context(
    as_json: bool, out_dir: Path | None, total: int | None = None
) -> Iterator[tuple[FaceEngine, Path, Path, Callable[[int], None]]]:
    with handled(as_json):
        config = settings()
        engine = FaceEngine(config)
        with progress() as bar:
            task = bar.add_task("embedding photos", total=total)

            def advance(n: int) -> None:
                bar.advance(task, n)

            yield engine, out_dir or config.data_dir / "reports", config.data_dir / "eval-cache", advance


def _count_photos(root: Path) -> int:
    return sum(1 for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)


def _fields(row: dict[str, Any]) -> str:
    def one(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.4f}"
        if isinstance(v, list):
            return "[" + ", ".join(one(x) for x in v) + "]"
        return str(v)

    return ", ".join(f"{k} {one(v)}" for k, v in row.items())


def _print_report(as_json: bool, result: dict[str, Any], lines: list[str]) -> None:
    def human() -> None:
        for line in lines:
            out.print(line, highlight=False)
        out.print(f"report: {result['html']}")

    emit(as_json, result, human)


@eval_app.command("verify")
def eval_verify(
    pairs: Annotated[
        Path, typer.Argument(help="CSV of img1,img2,same[,fold] (LFW's pairs.csv), or its folder.")
    ],
    images: Annotated[Path | None, typer.Option(help="Folder the image paths are relative to.")] = None,
    out_dir: OutOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """1:1 verification: ROC/DET, EER, TAR at FAR 1e-2..1e-6, k-fold accuracy, failure to enrol."""
    from facegate.eval.runs import run_verify

    csv_path = pairs / "pairs.csv" if pairs.is_dir() else pairs
    with _eval_context(as_json, out_dir) as (engine, reports, cache, advance):
        result = run_verify(engine, csv_path, images, reports, cache, advance)
    s = result["summary"]
    lines = [f"{k}: {v:.4f}" if isinstance(v, float) else f"{k}: {v}" for k, v in s.items()]
    lines += [
        f"TAR at FAR {r['far']:g}: {r['tar']:.4f} ({r['impostors']} impostor pairs)"
        for r in result["tar_at_far"]
    ]
    _print_report(as_json, result, lines)


@eval_app.command("identify")
def eval_identify(
    root: Annotated[Path, typer.Argument(help="DIR/<identity>/<photo> (e.g. LFW's images/).")],
    size: Annotated[list[int] | None, typer.Option("--size", help="Gallery sizes (repeat).")] = None,
    seed: Annotated[int, typer.Option(help="Seed for the gallery choice.")] = 0,
    unenrolled: Annotated[
        float | None,
        typer.Option(
            "--unenrolled",
            help="Share of identities never enrolled, drawn at random (default: half of the single-photo "
            "identities, else 0.25).",
        ),
    ] = None,
    out_dir: OutOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Open-set 1:N: FNIR at FPIR 1e-1..1e-3 (95% CI) and CMC rank-1/5 for several gallery sizes."""
    from facegate.eval.runs import run_identify

    with _eval_context(as_json, out_dir, _count_photos(root)) as (engine, reports, cache, advance):
        result = run_identify(engine, root, reports, cache, advance, size, seed, unenrolled)
    lines = [_fields(r) for r in result["rows"]]
    _print_report(as_json, result, lines)


@eval_app.command("fpir")
def eval_fpir(
    root: Annotated[Path, typer.Argument(help="DIR/<identity>/<photo> (deeper trees too).")],
    size: Annotated[
        list[int] | None, typer.Option("--size", help="People enrolled (repeat; default 10 and 100).")
    ] = None,
    strangers: Annotated[int, typer.Option(help="People never enrolled whose photos are presented.")] = 100,
    enrol_photos: Annotated[int, typer.Option("--enrol-photos", help="Photos enrolled per person.")] = 1,
    seed: Annotated[int, typer.Option(help="Seed for who is enrolled and who is a stranger.")] = 0,
    out_dir: OutOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The door's rates: enrol people, present others never enrolled: FPIR, FNIR, wrong person."""
    from facegate.eval.door_rate import run_fpir

    with _eval_context(as_json, out_dir, _count_photos(root)) as (engine, reports, cache, advance):
        result = run_fpir(
            engine, root, reports, cache, advance, size or [10, 100], strangers, enrol_photos, seed
        )
    lines = [f"{k}: {v}" for k, v in result["summary"].items()] + [_fields(r) for r in result["rows"]]
    _print_report(as_json, result, lines)


def _point_config_at(config_path: Path, calibration: Path, key: str = "calibration_file") -> None:
    """Set match.<key> in the config file to a file just made, keeping what else it says."""
    data = yaml.safe_load(config_path.read_text()) if config_path.exists() else {}
    data = data or {}
    data.setdefault("match", {})[key] = str(calibration)
    config_path.write_text(yaml.safe_dump(data, sort_keys=False))


@eval_app.command("calibrate")
def eval_calibrate(
    root: Annotated[
        Path, typer.Argument(help="DIR/<identity>/<photo>: every cross-identity pair is an impostor.")
    ],
    write_config: Annotated[
        bool,
        typer.Option(
            "--write-config/--no-write-config", help="Point config.yaml's match.calibration_file at it."
        ),
    ] = True,
    labels: Annotated[
        Path | None,
        typer.Option(
            "--labels",
            help="CSV: image,<group column> (paths relative to DIR): each rate's threshold also holds "
            "within every group (used for this table only, never stored).",
        ),
    ] = None,
    column: Annotated[str | None, typer.Option(help="The labels' group column.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Score thresholds for target false-match rates, from all impostor pairs of a dataset; with
    --labels, the higher of that and each group's own threshold (the rate then holds for all)."""
    from facegate.eval.runs import run_calibrate

    with _eval_context(as_json, None, _count_photos(root)) as (engine, _reports, cache, advance):
        if column is not None and labels is None:
            raise ConfigError("--column names a column of the --labels file: give --labels too")
        target = engine.settings.data_dir / "calibration.json"
        table = run_calibrate(engine, root, target, cache, advance, labels, column)
        # `settings.config` is FACEGATE_CONFIG when set; else the data directory's config.yaml.
        config_path = engine.settings.config or engine.settings.data_dir / "config.yaml"
        if write_config:
            _point_config_at(config_path, target)
    result = {"calibration_file": str(target), "config": str(config_path) if write_config else None, **table}

    def human() -> None:
        for p in table["points"]:
            lo, hi = p["fmr_ci95"]
            held = f"  (all pairs {p['all_pairs_threshold']:.4f}; set by {p['binding']})" if labels else ""
            out.print(f"FMR {p['fmr']:>8g}: threshold {p['threshold']:.4f}  (95% {lo:.2g}..{hi:.2g}){held}")
        out.print(f"written to {target}" + (f"; {config_path} now uses it" if write_config else ""))

    emit(as_json, result, human)


@eval_app.command("cohort")
def eval_cohort(
    root: Annotated[
        Path,
        typer.Argument(
            help="DIR/<identity>/<photo>: people unrelated to any gallery (one photo each is used)."
        ),
    ],
    write_config: Annotated[
        bool,
        typer.Option("--write-config/--no-write-config", help="Point config.yaml's match.cohort_file at it."),
    ] = True,
    as_json: JsonOpt = False,
) -> None:
    """Cohort statistics (how strangers score) for a model that ships none (`embedder.model: onnx`):
    the per-person open-set thresholds of the door's target FPIR rest on them."""
    from facegate.eval.runs import run_cohort

    with _eval_context(as_json, None, _count_photos(root)) as (engine, _reports, cache, advance):
        target = engine.settings.data_dir / "cohort.json"
        table = run_cohort(engine, root, target, cache, advance)
        config_path = engine.settings.config or engine.settings.data_dir / "config.yaml"
        if write_config:
            _point_config_at(config_path, target, "cohort_file")
    result = {"cohort_file": str(target), "config": str(config_path) if write_config else None, **table}

    def human() -> None:
        for r, z, t in zip(
            table["tail"]["rates"], table["tail"]["z"], table["scores"]["thresholds"], strict=True
        ):
            out.print(f"rate {r:8.1e}: stranger score {t:.4f}, one face's tail z {z:.3f}")
        out.print(f"written to {target}" + (f"; {config_path} now uses it" if write_config else ""))

    emit(as_json, result, human)


def _rate(row: dict[str, Any], name: str) -> str:
    value, ci, ratio = row[name], row[f"{name} 95% CI"], row[f"{name} / overall"]
    if value is None:
        return f"{name} n/a"
    text = f"{name} {value:.3g} (95% {ci[0]:.2g}..{ci[1]:.2g})"
    return text + (f", {ratio:.2f}x overall" if ratio is not None else "")


def _group_line(row: dict[str, Any]) -> str:
    thin = "" if row["enough pairs"] else "  [too few pairs]"
    return (
        f"{row['group']}: {_rate(row, 'FMR')} over {row['impostor pairs']} impostor pairs; "
        f"{_rate(row, 'FNMR')} over {row['genuine pairs']} genuine pairs{thin}"
    )


@eval_app.command("groups")
def eval_groups(
    root: Annotated[Path, typer.Argument(help="DIR/<identity>/<photo>.")],
    labels: Annotated[
        Path, typer.Option("--labels", help="CSV: image,<label column> (paths relative to DIR).")
    ],
    column: Annotated[str | None, typer.Option(help="The label column, if the CSV has several.")] = None,
    seed: Annotated[int, typer.Option(help="Seed for sampling large groups.")] = 0,
    out_dir: OutOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Error rates by group (from the dataset's own labels) at one shared threshold."""
    from facegate.eval.runs import run_groups

    with _eval_context(as_json, out_dir) as (engine, reports, cache, advance):
        result = run_groups(engine, root, labels, column, reports, cache, advance, seed)
    lines = [f"{k}: {v}" for k, v in result["summary"].items()]
    lines += [_group_line(r) for r in result["rows"]]
    _print_report(as_json, result, lines)


@eval_app.command("pad")
def eval_pad(
    root: Annotated[Path, typer.Argument(help="Folder the labels' image paths are relative to.")],
    labels: Annotated[
        Path, typer.Option("--labels", help="CSV: image,live (1 bona fide, 0 attack)[,attack type column].")
    ],
    type_column: Annotated[
        str | None, typer.Option("--type-column", help="The labels' attack type column (default: one type).")
    ] = None,
    subject_sep: Annotated[
        str, typer.Option(help="A photo's subject is its file name up to this (for the held-out split).")
    ] = "_",
    seed: Annotated[int, typer.Option(help="Seed for splitting the subjects in two.")] = 0,
    variants: Annotated[
        str | None,
        typer.Option(
            help="Score moved prints: 'all' or a comma list of edits (shear, perspective, zoom_in, "
            "zoom_out, rotate, dark_band, clutter, blur, jpeg and combinations), applied to every photo."
        ),
    ] = None,
    out_dir: OutOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Presentation attack detection (ISO/IEC 30107-3): APCER per attack type, BPCER, ACER, DET."""
    from facegate.eval.pad_run import run_pad, run_pad_variants
    from facegate.eval.pad_variants import variants_named

    rows = sum(1 for _ in labels.open()) - 1 if labels.is_file() else None
    if variants is not None:
        try:
            chosen = variants_named(variants)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--variants") from None
        total = rows * len(chosen) if rows is not None else None
        with _eval_context(as_json, out_dir, total) as (engine, reports, cache, advance):
            result = run_pad_variants(
                engine, root, labels, reports, cache, chosen, advance, subject_sep=subject_sep, seed=seed
            )
        lines = [f"{k}: {v}" for k, v in result["summary"].items()]
        lines += [
            f"{r['variant']:22} APCER {r['APCER']:.4f} ({r['APCER k/n']})  "
            f"BPCER {r['BPCER']:.4f} ({r['BPCER k/n']})"
            for r in result["variants"]
        ]
        _print_report(as_json, result, lines)
        return
    with _eval_context(as_json, out_dir, rows) as (engine, reports, cache, advance):
        result = run_pad(
            engine,
            root,
            labels,
            reports,
            cache,
            advance,
            type_column=type_column,
            subject_sep=subject_sep,
            seed=seed,
        )
    lines = [f"{k}: {v:.4f}" if isinstance(v, float) else f"{k}: {v}" for k, v in result["summary"].items()]
    _print_report(as_json, result, lines)
