"""How to score a face for liveness so that moved prints are caught: each MiniFASNet model at
several context scales, and rules fusing them, fitted on half the subjects and scored per edit
on the other half (issue 24). Besides the fixed rules, logistic fusions of the crops' class
probabilities, fitted on the same half (a handful of weights: numbers, like a threshold), and
for each the best threshold the held-out half would allow (an oracle: how separable the edits
are, apart from whether a threshold carries from one half of the subjects to the other). And
each fusion scored against the person's own baseline: at a door the face is recognised before
the liveness decision, so a score can be taken relative to that person's bona fide score
(here the median over their real frames of one session, the rest scored: a threshold on
"how much less live than this person usually looks" instead of "how live").

Reads ../shared/pad/nuaa_train (development and measurement only: read in place, nothing of it
is written but numbers). Edited frames are made in memory by facegate.eval.pad_variants.

    python bench/pad_fusion.py [--every 2] [--bpcer 0.02]
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from facegate.eval.pad_run import load_pad_labels, split_subjects, subject_of
from facegate.eval.pad_variants import VARIANTS
from facegate.settings import load_settings
from facegate.vision.engine import FaceEngine
from facegate.vision.liveness import MINIFASNET_V1SE, MINIFASNET_V2, LivenessCheck, patch, softmax, vendored
from facegate.vision.onnx_runtime import session

from common import RESULTS, SHARED, machine  # type: ignore[import-not-found]

NUAA = SHARED / "pad" / "nuaa_train"
SCALES = {
    "v2": (MINIFASNET_V2, (1.0, 1.5, 2.0, 2.7, 3.5)),
    "v1se": (MINIFASNET_V1SE, (1.0, 1.5, 2.0, 3.0, 4.0, 5.0)),
}
CACHE = Path(__file__).parent / ".cache" / "pad_fusion_v2.npz"


def raw_scores(every: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str], list[str], np.ndarray]:
    """(variants, photos, model x scale, class) softmax, NaN where refused; labels; subjects;
    columns; edits; capture sessions. The models' classes: 0 and 2 two kinds of attack, 1 live."""
    rows = load_pad_labels(NUAA / "labels.csv")[::every]
    images = [r[0] for r in rows]
    live = np.array([r[1] for r in rows])
    columns = [f"{m}@{s}" for m, (_, scales) in SCALES.items() for s in scales]
    sessions = np.array([session_of(p) for p in images])
    if CACHE.is_file():
        z = np.load(CACHE, allow_pickle=False)
        if list(z["images"]) == images and list(z["columns"]) == columns:
            subjects = np.array([subject_of(p, "_") for p in images])
            return z["scores"], live, subjects, columns, list(VARIANTS), sessions
    settings = load_settings(data_dir=Path(__file__).parent / ".cache" / "pad_fusion_data")
    engine = FaceEngine(settings)
    check = LivenessCheck(settings.liveness)
    models = {m: session(vendored(f), "cpu", 1) for m, (f, _) in SCALES.items()}
    out = np.full((len(VARIANTS), len(images), len(columns), 3), np.nan, np.float32)
    for vi, v in enumerate(VARIANTS.values()):
        for i, p in enumerate(images):
            image = v.apply(engine.load(NUAA / p), p)
            faces = engine.detect(image).faces
            if not faces:
                continue
            face = max(faces, key=lambda f: f.box.width * f.box.height)
            if check.refusal(image, face) is not None:
                continue
            col = 0
            for m, (_, scales) in SCALES.items():
                batch = np.stack([patch(image, face.rules_box, s) for s in scales])
                logits = models[m].run(["logits"], {"input": batch})[0]
                out[vi, i, col : col + len(scales)] = softmax(logits.astype(np.float32))
                col += len(scales)
        print(f"{v.name}: {np.isfinite(out[vi, :, 0, 0]).sum()} of {len(images)} scored", flush=True)
    CACHE.parent.mkdir(parents=True, exist_ok=True)
    np.savez(CACHE, scores=out, images=np.array(images), columns=np.array(columns))
    return out, live, np.array([subject_of(p, "_") for p in images]), columns, list(VARIANTS), sessions


SIX = ("v2@2.0", "v2@2.7", "v2@3.5", "v1se@3.0", "v1se@4.0", "v1se@5.0")  # the earlier runs' crops
# Fixed rules on the live probabilities (class 1).
RULES = {
    "shipped: mean(v2@2.7, v1se@4.0)": lambda s, c: (s[..., c["v2@2.7"]] + s[..., c["v1se@4.0"]]) / 2,
    "min(v2@2.7, v1se@4.0)": lambda s, c: np.minimum(s[..., c["v2@2.7"]], s[..., c["v1se@4.0"]]),
    "v2@2.7 alone": lambda s, c: s[..., c["v2@2.7"]],
    "v1se@4.0 alone": lambda s, c: s[..., c["v1se@4.0"]],
    "mean of all six": lambda s, c: np.mean(s[..., [c[n] for n in SIX]], axis=-1),
    "min of all six": lambda s, c: np.min(s[..., [c[n] for n in SIX]], axis=-1),
    "mean(v2@2.0, v1se@3.0)": lambda s, c: (s[..., c["v2@2.0"]] + s[..., c["v1se@3.0"]]) / 2,
    "mean(v2@3.5, v1se@5.0)": lambda s, c: (s[..., c["v2@3.5"]] + s[..., c["v1se@5.0"]]) / 2,
}


def features(probs: np.ndarray, columns: list[str], crops: tuple[str, ...], classes: bool) -> np.ndarray:
    """(variants, photos, features): each crop's live log-odds, and with `classes` also the
    log-ratio of its two attack classes (which kind of attack the model thinks it sees)."""
    p = np.clip(probs[..., [columns.index(n) for n in crops], :], 1e-4, 1 - 1e-4)
    f = [np.log(p[..., 1] / (1 - p[..., 1]))]
    if classes:
        f.append(np.log(p[..., 0] / p[..., 2]))
    return np.concatenate(f, axis=-1)


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1.0) -> Callable[[np.ndarray], np.ndarray]:
    """A class-balanced, L2-regularised logistic regression (Newton's method); returns the score."""
    mu, sd = x.mean(0), x.std(0) + 1e-6

    def design(v: np.ndarray) -> np.ndarray:
        return np.c_[(v - mu) / sd, np.ones(len(v))]

    xs, w = design(x), np.zeros(x.shape[1] + 1)
    weight = np.where(y == 1, 0.5 / y.mean(), 0.5 / (1 - y.mean()))
    ridge = l2 * np.diag(np.r_[np.ones(x.shape[1]), 0.0])
    for _ in range(50):
        p = 1 / (1 + np.exp(-xs @ w))
        grad = xs.T @ (weight * (p - y)) + ridge @ w
        hess = (xs * (weight * p * (1 - p))[:, None]).T @ xs + ridge
        w -= np.linalg.solve(hess, grad)
    return lambda v: design(v) @ w


# Logistic fusions: (crops, with the attack-class ratio), fitted on one half of the subjects.
FITTED = {
    "logistic, shipped pair, live odds": (("v2@2.7", "v1se@4.0"), False),
    "logistic, shipped pair, live odds + attack class": (("v2@2.7", "v1se@4.0"), True),
    "logistic, 11 crops, live odds": (tuple(f"{m}@{s}" for m, (_, sc) in SCALES.items() for s in sc), False),
    "logistic, 11 crops, live odds + attack class": (
        tuple(f"{m}@{s}" for m, (_, sc) in SCALES.items() for s in sc),
        True,
    ),
}


def fitted_scores(x: np.ndarray, live: np.ndarray, fit: np.ndarray) -> np.ndarray:
    ok = np.all(np.isfinite(x), axis=-1)
    train = ok & fit[None, :]
    y = np.broadcast_to(live, ok.shape)[train].astype(np.float64)
    score = fit_logistic(x[train], y)
    out = np.full(ok.shape, np.nan)
    out[ok] = score(x[ok])
    return out


def oracle(fused: np.ndarray, live: np.ndarray, held: np.ndarray) -> dict[str, float]:
    """The threshold best for the held-out half itself (min of the worst edit's max(APCER,
    BPCER)): how separable the edits are, whatever threshold one half would give the other."""
    best = {"worst APCER": 1.0, "worst BPCER": 1.0, "threshold": float("nan")}
    for t in np.nanquantile(fused, np.linspace(0, 1, 2001)):
        wa = max(float((f[held & (live == 0) & np.isfinite(f)] >= t).mean()) for f in fused)
        wb = max(float((f[held & (live == 1) & np.isfinite(f)] < t).mean()) for f in fused)
        if max(wa, wb) < max(best["worst APCER"], best["worst BPCER"]):
            best = {"worst APCER": wa, "worst BPCER": wb, "threshold": float(t)}
    return best


def threshold_at_bpcer(live_scores: np.ndarray, bpcer: float) -> float:
    """The highest threshold rejecting at most `bpcer` of the bona fide scores."""
    s = np.sort(live_scores[np.isfinite(live_scores)])
    k = int(np.floor(bpcer * len(s)))
    return float(s[k]) if k < len(s) else float(s[-1])


def session_of(image: str) -> str:
    """NUAA's capture session: the fifth field of the file name (0001_0001_00_00_01_72.jpg)."""
    return Path(image).name.split("_")[4]


def against_baseline(
    fused: np.ndarray, live: np.ndarray, subjects: np.ndarray, sessions: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Each subject's scores less the median of its real, unedited frames of its first session
    (its "enrolment"), and a mask of the frames left to score (those enrolment frames out)."""
    out = np.full_like(fused, np.nan)
    scored = np.ones(len(live), bool)
    for subject in np.unique(subjects):
        mine = subjects == subject
        first = min(sessions[mine & (live == 1)])
        enrol = mine & (live == 1) & (sessions == first) & np.isfinite(fused[0])
        if not enrol.any():
            continue
        out[:, mine] = fused[:, mine] - np.median(fused[0, enrol])  # edit 0: the frames as captured
        scored &= ~enrol
    return out, scored


def evaluate(
    fused: np.ndarray, live: np.ndarray, fit: np.ndarray, held: np.ndarray, names: list[str], bpcer: float
) -> dict[str, object]:
    t = threshold_at_bpcer(fused[:, fit & (live == 1)].ravel(), bpcer)
    rows = {}
    for vi, name in enumerate(names):
        f = fused[vi]
        a = f[held & (live == 0) & np.isfinite(f)]
        b = f[held & (live == 1) & np.isfinite(f)]
        rows[name] = {
            "APCER": float((a >= t).mean()) if len(a) else None,
            "attacks": len(a),
            "BPCER": float((b < t).mean()) if len(b) else None,
            "bona fide": len(b),
        }
    worst = max(r["APCER"] or 0.0 for r in rows.values())
    worst_b = max(r["BPCER"] or 0.0 for r in rows.values())
    return {"threshold": t, "worst APCER": worst, "worst BPCER": worst_b, "per edit": rows}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--every", type=int, default=2, help="Use every n-th labelled frame.")
    ap.add_argument("--bpcer", type=float, default=0.02, help="BPCER the threshold is fitted for.")
    args = ap.parse_args()
    scores, live, subjects, columns, names, sessions = raw_scores(args.every)
    c = {name: i for i, name in enumerate(columns)}
    result: dict[str, object] = {"machine": machine(), "every": args.every, "bpcer target": args.bpcer}
    for seed in (0, 1):
        fit_s, held_s = split_subjects(list(subjects), seed)
        fit, held = np.isin(subjects, list(fit_s)), np.isin(subjects, list(held_s))
        ways = {"fit->held": (fit, held), "held->fit": (held, fit)}
        runs = [
            (rule, way, a, b, f(scores[..., 1], c))
            for rule, f in RULES.items()
            for way, (a, b) in ways.items()
        ]
        runs += [
            (rule, way, a, b, fitted_scores(features(scores, columns, crops, classes), live, a))
            for rule, (crops, classes) in FITTED.items()
            for way, (a, b) in ways.items()
        ]
        # Each fusion again, relative to the person's own baseline (enrolment frames not scored).
        based = []
        for rule, way, a, b, fused in runs:
            rel, scored = against_baseline(fused, live, subjects, sessions)
            based.append((f"{rule}, against the person's baseline", way, a & scored, b & scored, rel))
        for rule, way, a, b, fused in runs + based:
            r = evaluate(fused, live, a, b, names, args.bpcer)
            r["oracle on the held-out half"] = o = oracle(fused, live, b)
            result[f"seed {seed} {way} | {rule}"] = r
            print(
                f"seed {seed} {way:9} {rule:48} t={r['threshold']:.3f} worst APCER {r['worst APCER']:.3f}"
                f" worst BPCER {r['worst BPCER']:.3f}"
                f" (oracle {o['worst APCER']:.3f} / {o['worst BPCER']:.3f})  "
                + " ".join(
                    f"{n}:{(v['APCER'] or 0) * 100:.0f}/{(v['BPCER'] or 0) * 100:.0f}"
                    for n, v in r["per edit"].items()  # type: ignore[union-attr]
                )
            )
    (RESULTS / "pad_fusion.json").write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
