"""1:1 against an enrolled person: the shipped table's threshold, or each person's own.

    python bench/face_embeddings.py --set lfw --model sface; ... --set east_asian --model sface
    python bench/verify_person.py [--model sface] [--weight 0.2]
                                   # -> bench/results/verify_person_<space>.json

A gallery is enrolled (1 photo each; LFW: 100 people, East Asian set: 25 of its 49 people), and
every enrolled person is claimed by photos of people who are not them: the other enrolled people
(an impostor who is enrolled too) and people never enrolled. Two rules for the claim's threshold:

  table     the shipped calibration table at the target FMR (what `verify --person` did before);
  person    the higher of that and the person's own: where (1 - w) * the cohort's impostor rate
            and w * the person's own tail (from their scores against the others enrolled) falls to
            the target FMR (`facegate.gallery.thresholds.rate_thresholds`), no labels.

FMR is counted within groups: LFW women claiming women and men claiming men (gender labels of
../shared/faces/lfw/gender_labels.csv, for this measurement only), the East Asian set's people
claiming each other (its ordinary web photos, chinese_celebrities/, apart). FNMR: the enrolled
people's other photos. Nothing is fitted on what is scored: the cohort is LFW one-photo people
that no draw uses, and the thresholds see only the gallery's templates.
"""

from __future__ import annotations

import argparse
import csv
import json

import numpy as np

from facegate.gallery.cohort import shipped_cohort
from facegate.gallery.thresholds import gallery_moments, rate_thresholds
from facegate.match import shipped_calibration
from make_cohort import MODELS, cohort_people, embeddings, load_set, space_of

from common import LFW, RESULTS, machine, require_lfw

TARGETS = (1e-3, 1e-4)


def draw(
    emb: np.ndarray,
    ident: np.ndarray,
    people: list[str],
    size: int,
    rng: np.random.Generator,
    tables: dict[float, float],
    cohort_w: tuple[object, float],
    group: np.ndarray | None,
) -> list[dict[str, object]]:
    cohort, w = cohort_w
    chosen = list(rng.permutation(people)[:size])
    by = {p: np.flatnonzero(ident == p) for p in people}
    enrol = np.array([rng.choice(by[p]) for p in chosen])
    tpl = emb[enrol]
    mean, std = gallery_moments(tpl, np.arange(len(chosen)), len(chosen))
    rows = []
    others = np.flatnonzero(~np.isin(ident, chosen) & np.isin(ident, people))
    for f in TARGETS:
        own = rate_thresholds(mean, std, cohort.scores, cohort.tail, f, w)  # type: ignore[attr-defined]
        for rule, thr in (("table", np.full(len(chosen), tables[f])), ("person", np.maximum(own, tables[f]))):
            imp_n = imp_fm = gen_n = gen_ok = 0
            groups: dict[str, list[int]] = {}
            for i, p in enumerate(chosen):
                # impostors: photos of every other drawn person and of the people never enrolled
                probes = np.concatenate([np.flatnonzero((ident != p) & np.isin(ident, chosen)), others])
                if group is not None:
                    probes = probes[group[probes] == group[enrol[i]]]
                s = emb[probes] @ tpl[i]
                fm = int((s >= thr[i]).sum())
                imp_n += len(probes)
                imp_fm += fm
                if group is not None:
                    g = groups.setdefault(str(group[enrol[i]]), [0, 0])
                    g[0] += len(probes)
                    g[1] += fm
                mates = by[p][by[p] != enrol[i]]
                gen_n += len(mates)
                gen_ok += int((emb[mates] @ tpl[i] >= thr[i]).sum())
            rows.append(
                {
                    "target": f,
                    "rule": rule,
                    "impostor": imp_n,
                    "false_matches": imp_fm,
                    "genuine": gen_n,
                    "accepted": gen_ok,
                    "groups": groups,
                }
            )
    return rows


def pool(rows: list[dict[str, object]]) -> dict[tuple[float, str], dict[str, object]]:
    out: dict[tuple[float, str], dict[str, object]] = {}
    for r in rows:
        k = (float(r["target"]), str(r["rule"]))  # type: ignore[arg-type]
        acc = out.setdefault(
            k, {"impostor": 0, "false_matches": 0, "genuine": 0, "accepted": 0, "groups": {}}
        )
        for key in ("impostor", "false_matches", "genuine", "accepted"):
            acc[key] = int(acc[key]) + int(r[key])  # type: ignore[call-overload]
        for g, (n, fm) in r["groups"].items():  # type: ignore[attr-defined]
            a = acc["groups"].setdefault(g, [0, 0])  # type: ignore[attr-defined]
            a[0] += n
            a[1] += fm
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", choices=sorted(MODELS), default="sface")
    ap.add_argument("--flip", action=argparse.BooleanOptionalAction, default=None)
    ap.add_argument("--weight", type=float, default=0.2)
    ap.add_argument("--draws", type=int, default=10)
    args = ap.parse_args()
    flip = args.flip if args.flip is not None else args.model == "dlib"
    space = space_of(flip, args.model)
    cal = shipped_calibration(space)
    tables = {f: cal.threshold(f) for f in TARGETS}
    cohort = shipped_cohort(space)
    assert cohort is not None
    require_lfw()
    d = load_set("lfw", args.model)
    gender: dict[str, str] = {}
    with open(LFW / "gender_labels.csv") as fh:
        for row in csv.DictReader(fh):
            gender[row["image"]] = row["gender"]
    found = d["found"] & ~np.isin(d["identity"], cohort_people(d["identity"], d["found"]))
    emb = embeddings(d, flip)[found]
    ident = d["identity"][found]
    label = np.array([gender.get(str(p), "") for p in d["paths"][found]])
    names, counts = np.unique(ident, return_counts=True)
    multi = [str(n) for n, c in zip(names, counts, strict=True) if c >= 2]
    sets = {"LFW (within women, within men)": (emb, ident, multi, 100, label)}
    ea = load_set("east_asian", args.model)
    e = embeddings(ea, flip)[ea["found"]]
    i = ea["identity"][ea["found"]]
    sub = np.array(["chinese_celebrities" if x.startswith("chinese") else "tight crops" for x in i])
    sets["East Asian dev set (ordinary photos apart)"] = (e, i, sorted(set(i.tolist())), 25, sub)
    results = []
    for name, (vecs, who, people, size, group) in sets.items():
        rng = np.random.default_rng(0)
        rows = [
            r
            for _ in range(args.draws)
            for r in draw(vecs, who, people, size, rng, tables, (cohort, args.weight), group)
        ]
        for (f, rule), acc in sorted(pool(rows).items()):
            fmr = int(acc["false_matches"]) / max(int(acc["impostor"]), 1)  # type: ignore[call-overload]
            tar = int(acc["accepted"]) / max(int(acc["genuine"]), 1)  # type: ignore[call-overload]
            per = {g: (fm / max(n, 1)) / f for g, (n, fm) in acc["groups"].items() if g}  # type: ignore[attr-defined]
            results.append(
                {
                    "set": name,
                    "target": f,
                    "rule": rule,
                    "fmr": fmr,
                    "tar": tar,
                    "fmr_x_target_by_group": per,
                    **acc,
                }
            )
            groups = ", ".join(f"{g} {x:.2f}x" for g, x in sorted(per.items()))
            print(
                f"{name:45s} FMR {f:g} {rule:7s} FMR {fmr:.2e} ({fmr / f:.2f}x; {groups}) TAR {tar:.4f}",
                flush=True,
            )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"verify_person_{space}.json").write_text(
        json.dumps(
            {
                "machine": machine(),
                "space": space,
                "weight": args.weight,
                "draws": args.draws,
                "results": results,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
