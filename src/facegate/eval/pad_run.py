"""`facegate eval pad`: score a labelled folder of bona fide and attack photos, report ISO/IEC
30107-3 figures at the configured threshold, and fit a threshold on half the subjects that is
scored on the other half (never on what it was fitted on)."""

from __future__ import annotations

import csv
import hashlib
import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from facegate.errors import ConfigError, FacegateError
from facegate.eval import report
from facegate.eval.pad import (
    PadScores,
    apcer_at_bpcer,
    bpcer_at_apcer,
    det_curve,
    fit_threshold,
    non_response,
    operating_point,
)
from facegate.eval.pad_variants import Variant
from facegate.vision.engine import FaceEngine
from facegate.vision.liveness import LivenessCheck

TARGETS = (0.01, 0.05)


def load_pad_labels(path: Path, type_column: str | None = None) -> list[tuple[str, int, str]]:
    """(image, 1 bona fide / 0 attack, attack type) from a CSV image,live[,<type column>]."""
    if not path.is_file():
        raise ConfigError(f"{path}: no such labels file")
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        cols = set(reader.fieldnames or [])
        if not {"image", "live"} <= cols:
            raise ConfigError(f"{path}: expected columns image,live[,type], found {reader.fieldnames}")
        if type_column is not None and type_column not in cols:
            raise ConfigError(f"{path}: no column {type_column!r}")
        out = []
        for r in reader:
            if r["live"].strip() not in ("0", "1"):
                raise ConfigError(f"{path}: 'live' must be 1 (bona fide) or 0 (attack), got {r['live']!r}")
            live = int(r["live"])
            kind = "bona fide" if live else (r[type_column] if type_column else "attack")
            out.append((r["image"], live, kind))
    if not out:
        raise ConfigError(f"{path}: no rows")
    return out


def subject_of(image: str, sep: str) -> str:
    """The subject a photo shows: its file name up to `sep` (NUAA: 0001_...)."""
    return Path(image).name.split(sep, 1)[0]


def split_subjects(subjects: list[str], seed: int) -> tuple[set[str], set[str]]:
    """Two halves of the subjects, chosen by `seed`: (fit, held out)."""
    names = sorted(set(subjects))
    order = np.random.default_rng(seed).permutation(len(names))
    half = (len(names) + 1) // 2
    return {names[i] for i in order[:half]}, {names[i] for i in order[half:]}


def _signature(engine: FaceEngine, check: LivenessCheck) -> str:
    s = check.settings.model_dump(exclude={"threshold", "frames", "provider", "threads"})
    d = engine.settings.detector
    return (
        f"{type(engine.detector).__name__}|{d}|{type(check.model).__name__}|{json.dumps(s, sort_keys=True)}"
    )


def score_photos(
    engine: FaceEngine,
    check: LivenessCheck,
    root: Path,
    images: list[str],
    cache_dir: Path | None,
    progress: Callable[[int], None] | None = None,
    variant: Variant | None = None,
) -> tuple[np.ndarray, list[str]]:
    """Each photo's live score (NaN where refused) and the verdict's reason, cached per photo;
    with `variant`, of the photo as that edit makes it (in memory only)."""
    edit = "" if variant is None else f"\0{variant.name}"
    key = hashlib.sha256(f"{root.resolve()}\0{_signature(engine, check)}{edit}".encode()).hexdigest()[:24]
    cache = cache_dir / f"pad-{key}.json" if cache_dir else None
    known: dict[str, Any] = json.loads(cache.read_text()) if cache is not None and cache.exists() else {}
    scores = np.full(len(images), np.nan)
    reasons = []
    fresh = 0
    for i, p in enumerate(images):
        try:
            st = (root / p).stat()
            stat = [st.st_size, st.st_mtime_ns]
        except OSError:
            stat = [-1, -1]
        hit = known.get(p)
        if hit is None or hit["stat"] != stat:
            try:
                if variant is None:
                    a = engine.detect(root / p)
                else:
                    a = engine.detect(variant.apply(engine.load(root / p), p))
                res = check.assess_photo(a.image, a.faces)
                hit = {"stat": stat, "score": res.score, "reason": res.reason}
            except FacegateError as exc:
                hit = {"stat": stat, "score": None, "reason": exc.code}
            known[p] = hit
            fresh += 1
        if hit["score"] is not None:
            scores[i] = hit["score"]
        reasons.append("scored" if hit["score"] is not None else str(hit["reason"]))
        if progress:
            progress(1)
    if cache is not None and fresh:
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps(known))
    return scores, reasons


def run_pad(
    engine: FaceEngine,
    root: Path,
    labels: Path,
    out_dir: Path,
    cache_dir: Path | None,
    progress: Callable[[int], None] | None = None,
    *,
    type_column: str | None = None,
    subject_sep: str = "_",
    seed: int = 0,
    check: LivenessCheck | None = None,
) -> dict[str, Any]:
    if not root.is_dir():
        raise ConfigError(f"{root}: not a directory")
    rows = load_pad_labels(labels, type_column)
    check = check or LivenessCheck(engine.settings.liveness)
    images = [r[0] for r in rows]
    scores, reasons = score_photos(engine, check, root, images, cache_dir, progress)
    s = PadScores(scores, np.array([r[1] for r in rows]), np.array([r[2] for r in rows]))
    t = check.threshold
    at_config = operating_point(s, t)
    summary: dict[str, Any] = {
        "presentations": len(rows),
        "bona fide": int(s.bona_fide.sum()),
        **{f"attacks: {k}": int((s.types == k).sum()) for k in s.attack_types()},
        "BPNRR (bona fide refused, not scored)": non_response(s, True).value,
        "APNRR (attacks refused, not scored)": non_response(s, False).value,
        "configured threshold": t,
        "APCER at the configured threshold": _pretty(at_config["APCER"]),
        "BPCER at the configured threshold": _pretty(at_config["BPCER"]),
        "ACER at the configured threshold": at_config["ACER"],
    }
    split = _held_out(s, images, subject_sep, seed, t)
    if split is not None:
        summary["threshold fitted on half the subjects"] = split["fitted threshold"]
        for k in ("APCER", "BPCER"):
            summary[f"{k} on the held-out subjects at the fitted threshold"] = _pretty(split["fitted"][k])
    ts, a, b = det_curve(s)
    tables = {
        "BPCER at APCER": [bpcer_at_apcer(s, x) for x in TARGETS],
        "APCER at BPCER": [apcer_at_bpcer(s, x) for x in TARGETS],
        "APCER per attack type (configured threshold)": [
            {"attack type": k, **_flat(v)} for k, v in at_config["APCER per attack type"].items()
        ],
        "Held-out subjects": [] if split is None else split["rows"],
        "Not scored (reasons)": [
            {"reason": k, "presentations": v} for k, v in Counter(reasons).items() if k != "scored"
        ],
    }
    html_path, json_path = report.write(
        out_dir,
        "pad",
        f"Presentation attack detection: {root}",
        summary,
        tables,
        {"DET (over the decision threshold)": _det_png(a, b, at_config), "Scores": _hist_png(s, t)},
        [
            "Terms of ISO/IEC 30107-3: APCER = attack presentations classified bona fide (per attack type; "
            "the system's is the worst type's); BPCER = bona fide presentations classified as attacks; "
            "ACER = their mean (deprecated in the 2023 edition, reported for comparison).",
            "Presentations without a usable face are refused, not scored: they are non-responses "
            "(APNRR, BPNRR), outside APCER and BPCER. A refused bona fide presentation is a resident "
            "asked to step closer, not a door opened to an attack.",
            "95% intervals are Wilson score intervals; frames of one subject are not independent, so the "
            "true uncertainty is wider.",
            f"Held-out: subjects (file name up to {subject_sep!r}) split in two by seed {seed}; the "
            "threshold is fitted on one half and scored on the other.",
        ],
    )
    return {
        "summary": summary,
        "at_configured_threshold": at_config,
        "held_out": split,
        "bpcer_at_apcer": tables["BPCER at APCER"],
        "apcer_at_bpcer": tables["APCER at BPCER"],
        "det": {"threshold": ts.tolist(), "APCER": a.tolist(), "BPCER": b.tolist()},
        "html": str(html_path),
        "json": str(json_path),
    }


def _held_out(
    s: PadScores, images: list[str], sep: str, seed: int, configured: float
) -> dict[str, Any] | None:
    subjects = np.array([subject_of(p, sep) for p in images])
    fit, held = split_subjects(list(subjects), seed)
    fit_mask, held_mask = np.isin(subjects, list(fit)), np.isin(subjects, list(held))
    a, b = s.subset(fit_mask), s.subset(held_mask)
    if not held or len(set(a.bona_fide[a.scored])) < 2 or len(set(b.bona_fide[b.scored])) < 2:
        return None  # a half without both classes can neither fit nor test a threshold
    t = fit_threshold(a)
    fitted, config = operating_point(b, t), operating_point(b, configured)
    # The other way round too (two-fold): a threshold that only suits one half shows here.
    t_rev = fit_threshold(b)
    rev = operating_point(a, t_rev)
    return {
        "fit subjects": sorted(fit),
        "held-out subjects": sorted(held),
        "fitted threshold": t,
        "fitted": fitted,
        "configured": config,
        "reverse": {"fitted threshold": t_rev, "scored": rev},
        "rows": [
            _row("held-out half", f"fitted on the other, {t:.4f}", fitted),
            _row("held-out half", f"configured {configured:.4f}", config),
            _row("fit half", f"fitted on the held-out half, {t_rev:.4f}", rev),
        ],
    }


def _row(scored: str, threshold: str, op: dict[str, Any]) -> dict[str, object]:
    return {
        "scored on": scored,
        "threshold": threshold,
        **_flat(op["APCER"], "APCER"),
        **_flat(op["BPCER"], "BPCER"),
    }


def _flat(rate: object, name: str = "APCER") -> dict[str, object]:
    r = rate if isinstance(rate, dict) else {}
    lo, hi = r.get("ci95", [float("nan"), float("nan")])
    return {
        name: r.get("rate"),
        f"{name} k/n": f"{r.get('k')}/{r.get('n')}",
        f"{name} 95% CI": f"{lo:.4f}-{hi:.4f}",
    }


def _pretty(rate: object) -> str:
    r = rate if isinstance(rate, dict) else {}
    lo, hi = r.get("ci95", [float("nan"), float("nan")])
    return f"{r.get('rate', float('nan')):.4f} ({r.get('k')}/{r.get('n')}; 95% CI {lo:.4f}-{hi:.4f})"


def _det_png(a: np.ndarray, b: np.ndarray, at: dict[str, Any]) -> str:
    fig, ax = report.figure()
    floor = 1e-3
    ax.loglog(np.maximum(a, floor), np.maximum(b, floor), drawstyle="steps-post")
    point = (max(at["APCER"]["rate"], floor), max(at["BPCER"]["rate"], floor))
    ax.plot(*point, "ko", label=f"configured threshold {at['threshold']:.3f}")
    ax.legend()
    ax.set(
        xlabel="APCER (attacks accepted as bona fide)",
        ylabel="BPCER (bona fide rejected)",
        title=f"DET over the threshold (rates below {floor:g} drawn at {floor:g})",
    )
    return report.png(fig)


def _hist_png(s: PadScores, t: float) -> str:
    fig, ax = report.figure()
    bins = np.linspace(0, 1, 51)
    ax.hist(s.scores[s.scored & (s.bona_fide == 1)], bins=bins, alpha=0.6, label="bona fide")
    for k in s.attack_types():
        ax.hist(s.scores[s.scored & (s.types == k)], bins=bins, alpha=0.6, label=k)
    ax.axvline(t, color="k", ls="--", label=f"threshold {t:.3f}")
    ax.set(xlabel="live score", ylabel="presentations", title="Scores", yscale="log")
    ax.legend()
    return report.png(fig)


def run_pad_variants(
    engine: FaceEngine,
    root: Path,
    labels: Path,
    out_dir: Path,
    cache_dir: Path | None,
    variants: list[Variant],
    progress: Callable[[int], None] | None = None,
    *,
    subject_sep: str = "_",
    seed: int = 0,
    check: LivenessCheck | None = None,
) -> dict[str, Any]:
    """APCER and BPCER of every edit in `variants` (each applied to attack and bona fide photos
    alike), at the configured threshold and at one fitted on half the subjects, pooled over the
    edits, and scored per edit on the other half."""
    if not root.is_dir():
        raise ConfigError(f"{root}: not a directory")
    rows = load_pad_labels(labels)
    check = check or LivenessCheck(engine.settings.liveness)
    images = [r[0] for r in rows]
    live = np.array([r[1] for r in rows])
    per: dict[str, PadScores] = {}
    refused: Counter[str] = Counter()
    for v in variants:
        scores, reasons = score_photos(engine, check, root, images, cache_dir, progress, v)
        per[v.name] = PadScores(scores, live, np.array(["attack"] * len(rows)))
        refused.update(f"{v.name}: {r}" for r in reasons if r != "scored")
    subjects = np.array([subject_of(p, subject_sep) for p in images])
    fit, held = split_subjects(list(subjects), seed)
    fit_mask, held_mask = np.isin(subjects, list(fit)), np.isin(subjects, list(held))
    pooled = PadScores(
        np.concatenate([s.scores[fit_mask] for s in per.values()]),
        np.concatenate([s.bona_fide[fit_mask] for s in per.values()]),
        np.concatenate([s.types[fit_mask] for s in per.values()]),
    )
    fitted_t = fit_threshold(pooled) if len(set(pooled.bona_fide[pooled.scored])) == 2 else None
    t = check.threshold
    table = []
    curves = {}
    for name, s in per.items():
        at = operating_point(s, t)
        row: dict[str, object] = {
            "variant": name,
            **_flat(at["APCER"], "APCER"),
            **_flat(at["BPCER"], "BPCER"),
        }
        if fitted_t is not None:
            ho = operating_point(s.subset(held_mask), fitted_t)
            row |= {
                f"held-out {k}": v for k, v in {**_flat(ho["APCER"]), **_flat(ho["BPCER"], "BPCER")}.items()
            }
        table.append(row)
        _, a, b = det_curve(s)
        curves[name] = (a, b)
    worst = max(table, key=lambda r: float(r["APCER"] or 0.0))  # type: ignore[arg-type]
    summary: dict[str, Any] = {
        "presentations per variant": len(rows),
        "variants": len(variants),
        "configured threshold": t,
        "worst variant at the configured threshold": f"{worst['variant']}: APCER {worst['APCER']:.4f}",
        "threshold fitted on half the subjects (all variants pooled)": fitted_t,
    }
    html_path, json_path = report.write(
        out_dir,
        "pad-variants",
        f"Presentation attack detection on moved prints: {root}",
        summary,
        {
            "Per variant": table,
            "Not scored (reasons)": [{"reason": k, "presentations": n} for k, n in sorted(refused.items())],
        },
        {"DET per variant": _det_variants_png(curves)},
        [
            "Every edit is applied to bona fide and attack photos alike (seeded by the photo's name), "
            "so BPCER is measured on the same edits. Edited images are made in memory, never written.",
            f"Held-out: subjects split in two by seed {seed}; the threshold is fitted on one half with "
            "every variant pooled, and each variant is scored on the other half.",
            "95% intervals are Wilson score intervals; frames of one subject are not independent.",
        ],
    )
    return {
        "summary": summary,
        "variants": table,
        "fit subjects": sorted(fit),
        "held-out subjects": sorted(held),
        "html": str(html_path),
        "json": str(json_path),
    }


def _det_variants_png(curves: dict[str, tuple[np.ndarray, np.ndarray]]) -> str:
    fig, ax = report.figure()
    floor = 1e-3
    for name, (a, b) in curves.items():
        ax.loglog(np.maximum(a, floor), np.maximum(b, floor), drawstyle="steps-post", label=name)
    ax.legend(fontsize="x-small", ncol=2)
    ax.set(
        xlabel="APCER (attacks accepted as bona fide)",
        ylabel="BPCER (bona fide rejected)",
        title=f"DET per edit (rates below {floor:g} drawn at {floor:g})",
    )
    return report.png(fig)
