"""The evaluations behind `facegate eval ...`: each embeds a dataset once (cached), computes
its figures, and writes an HTML report with plots and the same figures as JSON."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from facegate.errors import ConfigError
from facegate.eval import identification as ident
from facegate.eval import report
from facegate.eval.calibration import (
    DEFAULT_TARGETS,
    impostor_top_scores,
    tail_size,
    thresholds,
    wilson_interval,
    worst_group_thresholds,
)
from facegate.eval.datasets import embed_dataset, identity_folders, identity_of, load_pairs
from facegate.eval.groups import GroupRates, group_rates, load_labels
from facegate.eval.verification import eer, kfold_accuracy, roc, tar_table
from facegate.match import Calibration, calibration_for
from facegate.vision.engine import FaceEngine

Progress = Callable[[int], None]
FARS = (1e-2, 1e-3, 1e-4, 1e-5, 1e-6)


def _calibration(engine: FaceEngine) -> Calibration:
    return calibration_for(engine.settings.match.calibration_file, engine.space)


def run_verify(
    engine: FaceEngine,
    pairs_csv: Path,
    images: Path | None,
    out_dir: Path,
    cache_dir: Path,
    progress: Progress,
) -> dict[str, Any]:
    proto = load_pairs(pairs_csv, images)
    emb = embed_dataset(engine, proto.root, proto.images, cache_dir, progress)
    idx = emb.index()
    a = np.array([idx[x] for x, _ in proto.pairs])
    b = np.array([idx[y] for _, y in proto.pairs])
    ok = emb.found[a] & emb.found[b]
    # A pair with a photo where no face was found cannot match: scored below any real score.
    scores = np.where(ok, np.einsum("ij,ij->i", emb.vectors[a], emb.vectors[b]), -1.0)
    kf = kfold_accuracy(scores, proto.same, proto.folds) if len(np.unique(proto.folds)) > 1 else None
    _, fmr, fnmr = roc(scores, proto.same)
    cal = _calibration(engine)
    t_default = cal.threshold(engine.settings.match.target_fmr)
    summary: dict[str, Any] = {
        "pairs": len(proto.pairs),
        "genuine pairs": int(proto.same.sum()),
        "impostor pairs": int((1 - proto.same).sum()),
        "photos": len(proto.images),
        "failure to enrol (no usable face)": emb.failure_to_enrol,
        "pairs scored as non-match for lack of a face": int((~ok).sum()),
        "EER": eer(scores, proto.same),
        f"TAR at the configured threshold {t_default:.4f} (FMR {engine.settings.match.target_fmr:g})": float(
            (scores[proto.same == 1] >= t_default).mean()
        ),
        f"FMR at the configured threshold {t_default:.4f}": float(
            (scores[proto.same == 0] >= t_default).mean()
        ),
    }
    if kf is not None:
        summary["k-fold accuracy"] = kf.accuracy
        summary["k-fold accuracy std"] = kf.std
        summary["folds"] = len(kf.fold_accuracies)
    tars = tar_table(scores, proto.same, FARS)
    fig, ax = report.figure()
    ax.semilogx(np.maximum(fmr, 1e-7), 1 - fnmr)
    ax.set(xlabel="false match rate (FAR)", ylabel="true accept rate (TAR)", title="ROC")
    roc_png = report.png(fig)
    fig, ax = report.figure()
    ax.loglog(np.maximum(fmr, 1e-7), np.maximum(fnmr, 1e-7))
    ax.set(xlabel="false match rate", ylabel="false non-match rate", title="DET")
    det_png = report.png(fig)
    fig, ax = report.figure()
    ax.hist(scores[(proto.same == 1) & ok], bins=80, alpha=0.6, label="same person", density=True)
    ax.hist(scores[(proto.same == 0) & ok], bins=80, alpha=0.6, label="different people", density=True)
    ax.axvline(t_default, color="k", ls="--", label=f"threshold {t_default:.3f}")
    ax.set(xlabel="score", ylabel="density", title="Score distributions")
    ax.legend()
    hist_png = report.png(fig)
    n_imp = int((1 - proto.same).sum())
    notes = [
        f"TAR at a FAR is reported only where at least one of the {n_imp} impostor pairs may pass; "
        "with few impostor pairs the low-FAR figures rest on very few pairs.",
        "Each photo's face nearest the centre is used; photos without a usable face count as failures to "
        "enrol, and pairs involving them as non-matches.",
    ]
    html_path, json_path = report.write(
        out_dir,
        "verify",
        f"Verification: {pairs_csv.name}",
        summary,
        {
            "TAR at FAR": tars,
            "k-fold accuracies": [{"fold": i, "accuracy": x} for i, x in enumerate(kf.fold_accuracies)]
            if kf
            else [],
        },
        {"ROC": roc_png, "DET": det_png, "Scores": hist_png},
        notes,
    )
    return {"summary": summary, "tar_at_far": tars, "html": str(html_path), "json": str(json_path)}


def identification_protocol(
    folders: dict[str, list[str]], seed: int, unenrolled: float | None = None
) -> tuple[list[str], list[str], list[str]]:
    """Mated identities (2+ photos), gallery distractors and never-enrolled identities.

    By default the never-enrolled are half of the single-photo identities (LFW's protocol). With
    `unenrolled` (or when no identity has a single photo, as in most people's own folders) that
    share of all identities is drawn, seeded, and never enrolled; every photo of theirs is a
    non-mated search.
    """
    rng = np.random.default_rng(seed)
    singles = sorted(i for i, p in folders.items() if len(p) == 1)
    if unenrolled is None and singles:
        rng.shuffle(singles)
        half = len(singles) // 2
        mated = sorted(i for i, p in folders.items() if len(p) >= 2)
        return mated, singles[:half], singles[half:]
    share = 0.25 if unenrolled is None else unenrolled
    if not 0 < share < 1:
        raise ConfigError(f"--unenrolled must be between 0 and 1, got {share}")
    ids = sorted(folders)
    rng.shuffle(ids)
    n_out = min(max(1, round(share * len(ids))), len(ids) - 1)
    outsiders, rest = sorted(ids[:n_out]), ids[n_out:]
    mated = sorted(i for i in rest if len(folders[i]) >= 2)
    return mated, sorted(i for i in rest if len(folders[i]) == 1), outsiders


def run_identify(
    engine: FaceEngine,
    root: Path,
    out_dir: Path,
    cache_dir: Path,
    progress: Progress,
    sizes: list[int] | None = None,
    seed: int = 0,
    unenrolled: float | None = None,
) -> dict[str, Any]:
    folders = identity_folders(root)
    mated, distractors, outsiders = identification_protocol(folders, seed, unenrolled)
    if not mated or not outsiders:
        raise ConfigError(
            f"{root}: needs identities with 2+ photos to enrol and search, and identities never enrolled "
            "(use --unenrolled FRACTION)"
        )
    paths = sorted(p for ps in folders.values() for p in ps)
    emb = embed_dataset(engine, root, paths, cache_dir, progress)
    idx = emb.index()
    rng = np.random.default_rng(seed)
    full = len(mated) + len(distractors)
    sizes = sorted({min(s, full) for s in (sizes or [100, 1000, len(mated), full])})
    rows, curves = [], []
    for size in sizes:
        n_mated = min(size, len(mated))
        chosen = list(rng.choice(mated, n_mated, replace=False))
        extra = list(distractors[: max(0, size - n_mated)])
        g_paths = [folders[i][0] for i in chosen + extra]  # first photo enrolled
        probe_paths = [p for i in chosen for p in folders[i][1:]] + [p for i in outsiders for p in folders[i]]
        g_ok = [p for p in g_paths if emb.found[idx[p]]]
        p_ok = [p for p in probe_paths if emb.found[idx[p]]]
        gallery = emb.vectors[[idx[p] for p in g_ok]]
        g_ids = np.array([identity_of(p) for p in g_ok])
        probes = emb.vectors[[idx[p] for p in p_ok]]
        p_ids = np.array([identity_of(p) for p in p_ok])
        is_mated = np.isin(p_ids, np.array(chosen)) & np.isin(p_ids, g_ids)
        res = ident.search(gallery, g_ids, probes, p_ids, is_mated)
        at: dict[str, Any] = {}
        for r in ident.fnir_at_fpir(res, (1e-1, 1e-2, 1e-3), seed=seed):
            at[f"FNIR at FPIR {r['fpir']:g}"] = r["fnir"]
            at[f"FNIR at FPIR {r['fpir']:g} (95% CI)"] = r["fnir_ci95"]
        rows.append(
            {
                "gallery size": len(g_ok),
                "mated searches": int(is_mated.sum()),
                "non-mated searches": int((~is_mated).sum()),
                "rank-1": ident.cmc(res, 1),
                "rank-5": ident.cmc(res, 5),
                **at,
            }
        )
        grid = np.linspace(0.85, 1.0, 151)
        curves.append((len(g_ok), [ident.fpir(res, t) for t in grid], [ident.fnir(res, t) for t in grid]))
    fig, ax = report.figure()
    for size, fp, fn in curves:
        ax.loglog(np.maximum(fp, 1e-5), np.maximum(fn, 1e-5), label=f"gallery {size}")
    ax.set(
        xlabel="FPIR (non-mated searches that return someone)",
        ylabel="FNIR (mates missed)",
        title="Open-set DET",
    )
    ax.legend()
    html_path, json_path = report.write(
        out_dir,
        "identify",
        f"Open-set identification: {root}",
        {
            "identities": len(folders),
            "mated identities": len(mated),
            "never-enrolled identities": len(outsiders),
            "photos": len(paths),
            "failure to enrol": emb.failure_to_enrol,
            "seed": seed,
        },
        {"By gallery size": rows},
        {"FNIR vs FPIR": report.png(fig)},
        [
            "Gallery: the first photo of each mated identity (identities with 2+ photos) plus, for the "
            "largest sizes, single-photo identities as distractors. Mated searches: the other photos of "
            "enrolled identities. Non-mated searches: every photo of the identities never enrolled "
            + (
                f"({len(outsiders)} identities drawn at random, seed {seed})."
                if unenrolled is not None or not any(len(p) == 1 for p in folders.values())
                else "(half of the single-photo identities)."
            ),
            "FNIR counts a mated search as missed unless its mate is rank 1 and at or above the threshold.",
            "95% intervals: percentile bootstrap over searches (mated and non-mated resampled apart, the "
            "threshold re-chosen in each resample); searches of one person are not independent, so the "
            "true uncertainty is somewhat wider.",
        ],
    )
    return {"rows": rows, "html": str(html_path), "json": str(json_path)}


def run_calibrate(
    engine: FaceEngine,
    root: Path,
    out_path: Path,
    cache_dir: Path,
    progress: Progress,
    labels_csv: Path | None = None,
    column: str | None = None,
) -> dict[str, Any]:
    """Write a calibration table for `root`; with labels, one whose rates hold within each group
    (`worst_group_thresholds`). The labels shape the thresholds only: the table holds no group."""
    folders = identity_folders(root)
    paths = sorted(p for ps in folders.values() for p in ps)
    labels = load_labels(labels_csv, column) if labels_csv is not None else None
    if labels is not None and not any(p in labels for p in paths):
        raise ConfigError(f"{labels_csv}: no label matches a photo under {root}")
    emb = embed_dataset(engine, root, paths, cache_dir, progress)
    found = emb.found
    vec = emb.vectors[found]
    kept = [p for p, f in zip(paths, found, strict=True) if f]
    ids = [identity_of(p) for p in kept]
    method = (
        "every pair of photos of different identities is an impostor comparison; the threshold for "
        "FMR f is the lowest score reached by at most floor(f*N) impostors; fmr_ci95 is Wilson's interval"
    )
    if labels is None:
        top, n = impostor_top_scores(vec, ids, keep=tail_size(len(vec)))
        points = thresholds(top, n, DEFAULT_TARGETS)
    else:
        n = len(vec) * (len(vec) - 1) // 2
        points = worst_group_thresholds(vec, ids, [labels.get(p, "") for p in kept], DEFAULT_TARGETS)
        method += (
            f"; each threshold is the higher of that over all pairs and each group's over the pairs within "
            f"it (groups from {labels_csv.name}, used for this table only)"  # type: ignore[union-attr]
        )
    if not points:
        raise ConfigError(f"{root}: too few impostor pairs ({n}) to calibrate")
    table = {
        "space": engine.space,
        "score": "cosine similarity of L2-normalised embeddings",
        "source": f"{root}: {int(found.sum())} photos with a face ({int((~found).sum())} without), "
        f"{len(set(ids))} identities",
        "method": method,
        "created": datetime.now(UTC).date().isoformat(),
        "points": points,
    }
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(table, indent=2) + "\n")
    return table


def run_cohort(
    engine: FaceEngine, root: Path, out_path: Path, cache_dir: Path, progress: Progress
) -> dict[str, Any]:
    """Write cohort statistics for the engine's space from `root` (one photo per identity: the
    first with a face), for per-person open-set thresholds of a model that ships none."""
    from facegate.eval.cohort_stats import cohort_table

    folders = identity_folders(root)
    paths = sorted(p for ps in folders.values() for p in ps)
    emb = embed_dataset(engine, root, paths, cache_dir, progress)
    first: dict[str, int] = {}
    for i, (p, f) in enumerate(zip(paths, emb.found, strict=True)):
        if f:
            first.setdefault(identity_of(p), i)
    faces = emb.vectors[sorted(first.values())]
    meta = {
        "space": engine.space,
        "version": 1,
        "source": f"{root}: one photo of each of {len(faces)} identities",
        "created": datetime.now(UTC).date().isoformat(),
        "tail": "z of each cohort face's impostor scores against the other cohort faces, standardised by "
        "its own mean and standard deviation; below the rates the pairs show, log(rate) quadratic in z",
        "scores": "the score a share of the cohort's impostor pairs (each pair once) reach",
    }
    table = cohort_table(faces, meta)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(table, indent=1) + "\n")
    return table


def _finite(x: float) -> float | None:
    """NaN (nothing to measure) as None: JSON has no NaN, and a reader should see 'n/a'."""
    return None if math.isnan(x) else x


def _group_rows(
    rates: list[GroupRates], overall_fmr: float, overall_fnmr: float, target: float
) -> list[dict[str, Any]]:
    """The report's table: one row per group, its rates with 95% intervals beside the overall ones.

    A group has too few pairs when fewer than three false matches are expected among its
    impostor pairs at the target FMR: its measured FMR cannot tell the target from zero.
    """
    rows = []
    for r in rates:
        fm = round(r.fmr * r.impostor_pairs) if r.impostor_pairs else 0
        fnm = round(r.fnmr * r.genuine_pairs) if r.genuine_pairs else 0
        enough = r.impostor_pairs * target >= 3
        rows.append(
            {
                "group": r.group,
                "photos": r.images,
                "identities": r.identities,
                "impostor pairs": r.impostor_pairs,
                "genuine pairs": r.genuine_pairs,
                "FMR": _finite(r.fmr),
                "FMR 95% CI": list(wilson_interval(fm, r.impostor_pairs)) if r.impostor_pairs else None,
                "FMR / overall": _finite(r.fmr / overall_fmr) if overall_fmr and r.impostor_pairs else None,
                "FNMR": _finite(r.fnmr),
                "FNMR 95% CI": list(wilson_interval(fnm, r.genuine_pairs)) if r.genuine_pairs else None,
                "FNMR / overall": _finite(r.fnmr / overall_fnmr)
                if overall_fnmr and r.genuine_pairs
                else None,
                f"threshold for FMR {target:g}": _finite(r.threshold_for_target),
                "enough pairs": enough,
            }
        )
    return rows


def run_groups(
    engine: FaceEngine,
    root: Path,
    labels_csv: Path,
    column: str | None,
    out_dir: Path,
    cache_dir: Path,
    progress: Progress,
    seed: int = 0,
) -> dict[str, Any]:
    labels = load_labels(labels_csv, column)
    folders = identity_folders(root)
    paths = sorted(p for ps in folders.values() for p in ps if p in labels)
    if not paths:
        raise ConfigError(f"{labels_csv}: no label matches a photo under {root}")
    emb = embed_dataset(engine, root, paths, cache_dir, progress)
    found = emb.found
    use = [p for p, f in zip(paths, found, strict=True) if f]
    vec = emb.vectors[found]
    target = engine.settings.match.target_fmr
    threshold = _calibration(engine).threshold(target)
    rates = group_rates(
        vec, [identity_of(p) for p in use], [labels[p] for p in use], threshold, target, seed=seed
    )
    overall_fmr = sum(r.fmr * r.impostor_pairs for r in rates if r.impostor_pairs) / max(
        sum(r.impostor_pairs for r in rates), 1
    )
    overall_fnmr = sum(r.fnmr * r.genuine_pairs for r in rates if r.genuine_pairs) / max(
        sum(r.genuine_pairs for r in rates), 1
    )
    rows = _group_rows(rates, overall_fmr, overall_fnmr, target)
    measured = [r for r in rates if r.impostor_pairs]
    if not measured:
        raise ConfigError(f"{labels_csv}: no group has two identities; nothing to compare")
    every_group = max(r.threshold_for_target for r in measured)
    worst_fmr = max(measured, key=lambda r: r.fmr)
    with_genuine = [r for r in rates if r.genuine_pairs]
    worst_fnmr = max(with_genuine, key=lambda r: r.fnmr, default=None)
    thin = [row["group"] for row in rows if not row["enough pairs"]]
    fig, ax = report.figure()
    lows = [row["FMR"] - row["FMR 95% CI"][0] if row["FMR 95% CI"] else 0 for row in rows]
    highs = [row["FMR 95% CI"][1] - row["FMR"] if row["FMR 95% CI"] else 0 for row in rows]
    ax.bar(
        [r.group for r in rates],
        [row["FMR"] or 0 for row in rows],
        yerr=[lows, highs],
        capsize=4,
        color="#c0392b",
    )
    ax.axhline(target, color="k", ls="--", label=f"target FMR {target:g}")
    ax.set(ylabel="false match rate (95% CI)", title=f"FMR by group at threshold {threshold:.4f}")
    ax.legend()
    summary = {
        "labels": str(labels_csv),
        "label column": column or "(only one)",
        "shared threshold": threshold,
        "target FMR": target,
        "overall FMR": overall_fmr,
        "overall FNMR": overall_fnmr if with_genuine else None,
        "threshold at which every group meets the target FMR": every_group,
        "highest FMR": f"{worst_fmr.group} ({worst_fmr.fmr:.3g}, {worst_fmr.fmr / overall_fmr:.2f}x overall)"
        if overall_fmr
        else worst_fmr.group,
        "highest FNMR": f"{worst_fnmr.group} ({worst_fnmr.fnmr:.3g})"
        if worst_fnmr
        else "n/a: no identity has two photos, so there are no genuine pairs",
        "groups with too few pairs": ", ".join(thin) or "none",
        "seed": seed,
    }
    html_path, json_path = report.write(
        out_dir,
        "groups",
        f"Error rates by group: {labels_csv.name}",
        summary,
        {"By group": rows},
        {"FMR by group": report.png(fig)},
        [
            "Groups come only from the labels file supplied by the operator; facegate never infers a group.",
            "FMR uses impostor pairs within a group (both people carry the same label), FNMR genuine pairs.",
            "Groups with many photos are sampled (seeded) to bound the number of pairs.",
            "95% intervals are Wilson's; pairs share photos, so the true uncertainty is somewhat wider. A "
            "group has too few pairs when fewer than three false matches would be expected among its "
            f"impostor pairs at the target FMR {target:g}: its FMR cannot then tell the target from zero.",
            "Single-photo identities give impostor pairs (FMR) but no genuine pairs (FNMR: n/a).",
        ],
    )
    return {"summary": summary, "rows": rows, "html": str(html_path), "json": str(json_path)}
