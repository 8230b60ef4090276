"""Open-set identification at a target FPIR: strangers accepted as anyone, by gallery size and population.

    python bench/face_embeddings.py --set lfw; python bench/face_embeddings.py --set east_asian
    python bench/make_cohort.py          # once: the shipped cohort
    python bench/open_set.py [--model sface] [--flip]   # -> bench/results/open_set[_<tag>].json

Protocol (pure numpy on cached embeddings): enrol people with 1 or 3 photos each, present the
rest of their photos (mated: FNIR, wrong person) and one photo of each of 100 never-enrolled
people (FPIR: accepted as anyone), repeated over random draws. LFW people of the shipped cohort
are never enrolled nor presented. The East Asian development set has 49 people: 25 enrolled, 24
strangers (up to 10 photos each), over random splits. Rules compared:

  fmr1e-3   before: one threshold at FMR 1e-3 (the shipped calibration table), whatever N;
  flat      one threshold: the cohort's score at FMR target/N;
  person    per-person thresholds (facegate.gallery.thresholds) with gallery weight w.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from facegate.eval.calibration import wilson_interval
from facegate.gallery.cohort import Cohort, shipped_cohort
from facegate.gallery.thresholds import gallery_moments, person_thresholds
from facegate.match import ambiguity_margin, shipped_calibration
from make_cohort import MODELS, cohort_people, embeddings, has_set, load_set, normalise, space_of

from common import RESULTS, machine


@dataclass
class Faces:
    emb: np.ndarray  # normalised (possibly flip-fused) embeddings
    ident: np.ndarray
    by_person: dict[str, np.ndarray]


def load(name: str, flip: bool, exclude: set[str] | None = None, model: str = "dlib") -> Faces:
    d = load_set(name, model)
    found = d["found"]
    e = embeddings(d, flip)
    ident = d["identity"]
    keep = found & ~np.isin(ident, sorted(exclude or set()))
    idx = np.nonzero(keep)[0]
    by: dict[str, list[int]] = {}
    for i in idx:
        by.setdefault(str(ident[i]), []).append(int(i))
    return Faces(e, ident, {k: np.array(v) for k, v in by.items()})


Rule = Callable[[np.ndarray, np.ndarray, int], np.ndarray]


def rule_old(space: str) -> Rule:
    """Before: one threshold at FMR 1e-3 of the shipped calibration table, whatever N."""
    t = shipped_calibration(space).threshold(1e-3)
    return lambda tpl, owners, n: np.full(n, t)


def rule_flat(cohort: Cohort, target: float) -> Rule:
    """One threshold: the cohort's score at FMR target/N (what README's formula says)."""
    return lambda tpl, owners, n: np.full(n, cohort.scores.value_at(target / n))


def rule_person(cohort: Cohort, target: float, weight: float) -> Rule:
    """The shipped rule: facegate.gallery.thresholds, never below the 1:1 threshold (FMR 1e-3)."""
    floor = shipped_calibration(cohort.space).threshold(1e-3)

    def thresholds(tpl: np.ndarray, owners: np.ndarray, n: int) -> np.ndarray:
        mean, std = gallery_moments(tpl, owners, n)
        return np.maximum(person_thresholds(mean, std, cohort.scores, cohort.tail, target, weight), floor)

    return thresholds


def trial(
    faces: Faces,
    enrolled: list[str],
    strangers: list[str],
    shots: int,
    rule: Rule,
    rng: np.random.Generator,
    stranger_photos: int = 1,
    mean_templates: bool = False,
    margin: float = 0.02,
    second_floor: float | None = None,
) -> dict[str, int]:
    tpl_idx, owners, probes, truth = [], [], [], []
    for p, name in enumerate(enrolled):
        photos = rng.permutation(faces.by_person[name])
        tpl_idx += photos[:shots].tolist()
        owners += [p] * len(photos[:shots])
        probes += photos[shots:].tolist()
        truth += [p] * len(photos[shots:])
    st = [int(i) for s in strangers for i in rng.permutation(faces.by_person[s])[:stranger_photos]]
    tpl = faces.emb[tpl_idx]
    own = np.array(owners)
    if mean_templates:  # one template per person: the normalised mean of their photos
        tpl = normalise(np.stack([tpl[own == p].mean(axis=0) for p in range(len(enrolled))]))
        own = np.arange(len(enrolled))
    n = len(enrolled)
    thr = rule(tpl, own, n)
    out = {"mated": len(probes), "strangers": len(st)}
    for kind, idx in (("mated", probes), ("strangers", st)):
        if not idx:
            out.update({f"{kind}_accepted": 0, f"{kind}_wrong": 0})
            continue
        s = faces.emb[idx] @ tpl.T
        per = np.full((len(idx), n), -np.inf, np.float32)
        np.maximum.at(per.T, own, s.T)
        order = np.argsort(-per, axis=1)[:, :2] if n > 1 else np.zeros((len(idx), 1), int)
        rows = np.arange(len(idx))
        best, s1 = order[:, 0], per[rows, order[:, 0]]
        ok = s1 >= thr[best]
        if n > 1:
            second, s2 = order[:, 1], per[rows, order[:, 1]]
            # the second person counts when they clear their own threshold (or the 1:1 floor)
            bar = thr[second] if second_floor is None else np.minimum(thr[second], second_floor)
            ok &= ~((s2 >= bar) & (s1 - s2 < margin))
        if kind == "mated":
            t = np.array(truth)
            out["mated_accepted"] = int((ok & (best == t)).sum())
            out["mated_wrong"] = int((ok & (best != t)).sum())
        else:
            out["strangers_accepted"] = int(ok.sum())
    return out


def summarise(runs: list[dict[str, int]]) -> dict[str, float]:
    tot = {k: sum(r[k] for r in runs) for k in runs[0]}
    lo, hi = wilson_interval(tot["strangers_accepted"], tot["strangers"])
    return {
        "fpir": tot["strangers_accepted"] / max(tot["strangers"], 1),
        "fpir_ci95": [lo, hi],
        "fnir": 1 - tot["mated_accepted"] / max(tot["mated"], 1),
        "wrong": tot["mated_wrong"],
        "mated": tot["mated"],
        "strangers": tot["strangers"],
        "draws": len(runs),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", type=float, default=0.01)
    ap.add_argument("--draws", type=int, default=20)
    ap.add_argument("--flip", action="store_true", help="flip-fused embeddings (enrolment and query)")
    ap.add_argument("--weights", default="0.1,0.2")
    ap.add_argument("--mean-templates", action="store_true", help="one mean template per person")
    ap.add_argument("--model", choices=sorted(MODELS), default="dlib")
    args = ap.parse_args()
    space = space_of(args.flip, args.model)
    cohort = shipped_cohort(space)
    if cohort is None or not has_set("lfw", args.model):
        print("SKIP: run bench/face_embeddings.py and bench/make_cohort.py first", file=sys.stderr)
        return
    margin = ambiguity_margin(None, shipped_calibration(space))  # the shipped default
    floor = shipped_calibration(space).threshold(1e-3)  # a close second counts from the 1:1 floor
    raw = load_set("lfw", args.model)
    excluded = set(cohort_people(raw["identity"], raw["found"]))
    lfw = load("lfw", args.flip, excluded, args.model)
    rules: dict[str, Rule] = {"fmr1e-3": rule_old(space), "flat": rule_flat(cohort, args.target)}
    for w in (float(x) for x in args.weights.split(",")):
        rules[f"person w={w:g}"] = rule_person(cohort, args.target, w)
    results: list[dict[str, object]] = []

    def report(setname: str, size: int, shots: int, name: str, s: dict[str, float]) -> None:
        results.append({"set": setname, "gallery": size, "shots": shots, "rule": name, **s})
        print(
            f"{setname:10s} N={size:5d} shots={shots} {name:12s} "
            f"FPIR {s['fpir']:.4f} [{s['fpir_ci95'][0]:.4f}, {s['fpir_ci95'][1]:.4f}] "
            f"({s['strangers']} strangers) "
            f"FNIR {s['fnir']:.3f} ({s['mated']} mated) wrong {s['wrong']}",
            flush=True,
        )

    multi = sorted(p for p, v in lfw.by_person.items() if len(v) >= 2)
    four = sorted(p for p, v in lfw.by_person.items() if len(v) >= 4)
    every = sorted(lfw.by_person)
    for shots, pool in ((1, multi), (3, four)):
        for size in (10, 100, 1000, 3714):
            if shots == 3 and size > 100:
                continue
            for name, rule in rules.items():
                rng = np.random.default_rng(0)
                runs = []
                for _ in range(args.draws if size < 1000 else max(args.draws // 4, 2)):
                    # Mated probes come from people with enough photos; a large gallery is filled up
                    # with one-photo people (enrolled, never presented).
                    enrolled = list(rng.permutation(pool)[: min(size, len(pool))])
                    rest = [p for p in every if p not in set(enrolled)]
                    if size > len(enrolled):
                        fill = [p for p in rng.permutation(rest)][: size - len(enrolled)]
                        enrolled += fill
                        rest = [p for p in rest if p not in set(fill)]
                    strangers = list(rng.permutation(rest)[:100])
                    runs.append(
                        trial(
                            lfw, enrolled, strangers, shots, rule, rng, 1, args.mean_templates, margin, floor
                        )
                    )
                report("lfw", size, shots, name, summarise(runs))
    if has_set("east_asian", args.model):
        ea = load("east_asian", args.flip, model=args.model)
        people = sorted(ea.by_person)
        for shots in (1, 3):
            for name, rule in rules.items():
                rng = np.random.default_rng(0)
                runs = []
                for _ in range(args.draws):
                    perm = list(rng.permutation(people))
                    runs.append(
                        trial(
                            ea, perm[:25], perm[25:], shots, rule, rng, 10, args.mean_templates, margin, floor
                        )
                    )
                report("east_asian", 25, shots, name, summarise(runs))
    RESULTS.mkdir(exist_ok=True)
    tag = ("" if args.model == "dlib" else f"_{args.model}") + ("_flip" if args.flip else "")
    tag += "_mean" if args.mean_templates else ""
    (RESULTS / f"open_set{tag}.json").write_text(
        json.dumps(
            {
                "machine": machine(),
                "space": space,
                "margin": margin,
                "target_fpir": args.target,
                "results": results,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
