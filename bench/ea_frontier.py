"""The measured frontier of the East Asian open-set must-show for SFace (issue 22).

    python bench/face_embeddings.py --set east_asian --model sface
    python bench/ea_frontier.py [--draws 20]   # -> bench/results/ea_frontier_sface.json

Pure numpy on the cached embeddings, the protocol of bench/open_set.py (25 enrolled, 24
strangers presenting up to 10 photos each, random splits), the shipped rule (per-person
thresholds, gallery weight 1.0, a close second counted from the 1:1 floor) with two knobs moved:

  delta   added to every person's threshold: the whole recognised / strangers curve, an oracle
          frontier (the best any single shift of the thresholds could do on this set);
  margin  the ambiguity margin, what makes wrong-person answers "unknown".

Then the honest version: the set split by identity into two halves; the shift is fitted on one
half (its own 12/12 draws) to the lowest that keeps strangers within 2x the target FPIR, and
scored on the other half, both ways. Only numbers come out; nothing of the set is written.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from facegate.gallery.cohort import shipped_cohort
from facegate.match import ambiguity_margin, shipped_calibration
from make_cohort import has_set, space_of
from open_set import Faces, Rule, load, rule_person, summarise, trial

from common import RESULTS, machine


def shifted(rule: Rule, delta: float) -> Rule:
    return lambda tpl, owners, n: rule(tpl, owners, n) + delta


def run(
    ea: Faces, people: list[str], enrol: int, shots: int, rule: Rule, margin: float, floor: float, draws: int
) -> dict[str, float]:
    rng = np.random.default_rng(0)
    runs = []
    for _ in range(draws):
        perm = list(rng.permutation(people))
        runs.append(trial(ea, perm[:enrol], perm[enrol:], shots, rule, rng, 10, False, margin, floor))
    s = summarise(runs)
    s["recognised"] = 1 - s["fnir"]
    return s


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", type=float, default=0.01)
    ap.add_argument("--draws", type=int, default=20)
    args = ap.parse_args()
    space = space_of(False, "sface")
    cohort = shipped_cohort(space)
    if cohort is None or not has_set("east_asian", "sface"):
        print("SKIP: run bench/face_embeddings.py --set east_asian --model sface first", file=sys.stderr)
        return
    cal = shipped_calibration(space)
    margin0, floor = ambiguity_margin(None, cal), cal.threshold(1e-3)
    base = rule_person(cohort, args.target, 1.0)
    ea = load("east_asian", False, model="sface")
    people = sorted(ea.by_person)
    out: dict[str, list[dict[str, object]]] = {"delta": [], "margin": [], "halves": []}

    def show(kind: str, row: dict[str, object], s: dict[str, float]) -> None:
        out[kind].append({**row, **s})
        print(
            f"{kind:7s} {row} recognised {s['recognised']:.3f} wrong {s['wrong']} of {s['mated']} "
            f"FPIR {s['fpir']:.4f} [{s['fpir_ci95'][0]:.4f}, {s['fpir_ci95'][1]:.4f}]",
            flush=True,
        )

    for shots in (1, 3):
        for d in (-0.10, -0.05, -0.02, 0.0, 0.02, 0.05, 0.1, 0.15):
            s = run(ea, people, 25, shots, shifted(base, d), margin0, floor, args.draws)
            show("delta", {"shots": shots, "delta": d, "margin": margin0}, s)
        for m in (0.0, 0.05, margin0, 0.15, 0.2, 0.3):
            s = run(ea, people, 25, shots, base, m, floor, args.draws)
            show("margin", {"shots": shots, "delta": 0.0, "margin": m}, s)
    # Whether the strangers' overshoot comes from a few of them: accepted photos per stranger.
    for shots in (1, 3):
        rng = np.random.default_rng(0)
        acc: dict[str, list[int]] = {}
        for _ in range(args.draws):
            perm = [str(p) for p in rng.permutation(people)]
            for st in perm[25:]:
                r = trial(
                    ea,
                    perm[:25],
                    [st],
                    shots,
                    base,
                    np.random.default_rng(len(acc)),
                    10,
                    False,
                    margin0,
                    floor,
                )
                a = acc.setdefault(st, [0, 0])
                a[0] += r["strangers_accepted"]
                a[1] += r["strangers"]
        counts = sorted((a[0] for a in acc.values()), reverse=True)
        total = sum(a[1] for a in acc.values())
        row = {"shots": shots, "strangers": len(acc), "accepted": sum(counts), "presented": total}
        row |= {"top3_share": sum(counts[:3]) / max(sum(counts), 1), "none_accepted": counts.count(0)}
        row |= {"fpir_without_top3": (sum(counts) - sum(counts[:3])) / total}
        out.setdefault("per_stranger", []).append(row)
        print("per-stranger", row, flush=True)
    # Fitted on one half of the identities, scored on the other (both ways).
    rng = np.random.default_rng(22)
    perm = [str(p) for p in rng.permutation(people)]
    halves = [sorted(perm[: len(perm) // 2]), sorted(perm[len(perm) // 2 :])]
    grid = np.round(np.arange(-0.10, 0.201, 0.01), 3)
    for shots in (1, 3):
        for fit, score in ((0, 1), (1, 0)):
            fp, sp = halves[fit], halves[score]
            ok = [
                d
                for d in grid
                if run(ea, fp, len(fp) // 2, shots, shifted(base, d), margin0, floor, args.draws)["fpir"]
                <= 2 * args.target
            ]
            d = float(min(ok)) if ok else float(grid[-1])
            s = run(ea, sp, len(sp) // 2, shots, shifted(base, d), margin0, floor, args.draws)
            show("halves", {"shots": shots, "fitted_on": fit, "delta": d, "margin": margin0}, s)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "ea_frontier_sface.json").write_text(
        json.dumps({"machine": machine(), "space": space, "target_fpir": args.target, **out}, indent=1)
    )


if __name__ == "__main__":
    main()
