"""The door's error rates on anyone's photos: enrol some people, present people never enrolled.

`facegate eval fpir` measures what a door decides, not a score formula: the people are enrolled
through a real (temporary) gallery, with its quality rules, and every search goes through the
gallery's own open-set decision (threshold, ambiguity rule and whatever else it applies). Terms:
- FPIR: share of searches by never-enrolled people accepted as someone enrolled;
- strangers accepted: share of never-enrolled people with at least one photo accepted;
- FNIR: share of searches by enrolled people (photos not used to enrol them) not given to them;
- wrong person: searches by enrolled people given to somebody else enrolled.
"""

from __future__ import annotations

import secrets
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from facegate.errors import ConfigError, FacegateError
from facegate.eval import report
from facegate.eval.calibration import wilson_interval
from facegate.eval.datasets import embed_dataset, identity_folders
from facegate.gallery.gallery import Gallery
from facegate.gallery.people import Consent
from facegate.match import ambiguity_margin
from facegate.vision.engine import FaceEngine


@dataclass(frozen=True)
class DoorProtocol:
    """Who is enrolled (with which photos), who searches as themselves, who is a stranger."""

    enrol: dict[str, list[str]]  # identity -> enrolment photos, in enrolment order (nested galleries)
    searches: dict[str, list[str]]  # enrolled identity -> its other photos
    strangers: dict[str, list[str]]  # never-enrolled identity -> all its photos


def door_protocol(
    folders: dict[str, list[str]], enrolled: int, strangers: int, enrol_photos: int, seed: int
) -> DoorProtocol:
    """Draw (seeded) up to `enrolled` identities with more than `enrol_photos` photos, enrolled with
    their first `enrol_photos`, and `strangers` others never enrolled. Identities with too few
    photos to be searched after enrolment are strangers first, so that neither set is wasted."""
    if enrol_photos < 1:
        raise ConfigError("--enrol-photos must be at least 1")
    rng = np.random.default_rng(seed)
    ids = sorted(folders)
    rng.shuffle(ids)
    eligible = [i for i in ids if len(folders[i]) > enrol_photos]
    others = [i for i in ids if len(folders[i]) <= enrol_photos]
    spare = max(len(eligible) - enrolled, 0)  # eligible people left over once the gallery is full
    take = min(strangers, len(others) + spare)
    if take == 0 and strangers > 0 and len(eligible) > 2:
        take = 1  # a gallery one smaller beats no stranger at all
    out = (others + eligible[::-1])[:take]
    rest = [i for i in eligible if i not in set(out)][:enrolled]
    if not out or len(rest) < 2:
        raise ConfigError(
            f"need at least one identity never enrolled and two with more than {enrol_photos} photo(s) to "
            f"enrol; this folder gives {len(out)} stranger(s) and {len(rest)} such identities"
        )
    return DoorProtocol(
        {i: folders[i][:enrol_photos] for i in rest},
        {i: folders[i][enrol_photos:] for i in rest},
        {i: folders[i] for i in sorted(out)},
    )


@dataclass(frozen=True)
class DoorRates:
    """What the door decided for one gallery size."""

    gallery_size: int
    stranger_searches: int
    strangers_accepted: int  # searches
    strangers: int
    strangers_with_any_accepted: int  # people
    mated_searches: int
    recognised: int
    wrong_person: int
    reasons: dict[str, int]  # why mated searches were refused

    def row(self) -> dict[str, Any]:
        def rate(k: int, n: int) -> tuple[float | None, list[float] | None]:
            return (k / n, list(wilson_interval(k, n))) if n else (None, None)

        fpir, fpir_ci = rate(self.strangers_accepted, self.stranger_searches)
        people, people_ci = rate(self.strangers_with_any_accepted, self.strangers)
        fnir, fnir_ci = rate(self.mated_searches - self.recognised, self.mated_searches)
        wrong, wrong_ci = rate(self.wrong_person, self.mated_searches)
        return {
            "gallery size": self.gallery_size,
            "stranger searches": self.stranger_searches,
            "FPIR": fpir,
            "FPIR 95% CI": fpir_ci,
            "strangers": self.strangers,
            "strangers accepted (people)": people,
            "strangers accepted (people) 95% CI": people_ci,
            "mated searches": self.mated_searches,
            "FNIR": fnir,
            "FNIR 95% CI": fnir_ci,
            "given to the wrong person": self.wrong_person,
            "wrong-person rate": wrong,
            "wrong-person rate 95% CI": wrong_ci,
            "mated refusals by reason": dict(sorted(self.reasons.items())),
        }


def door_rates(
    gallery: Gallery,
    person_of: dict[str, str],
    searches: Sequence[tuple[str, np.ndarray]],
    strangers: Sequence[tuple[str, np.ndarray]],
) -> DoorRates:
    """Run every search through the gallery's decision. `person_of`: enrolled person id -> identity;
    searches are (identity, unit embedding) pairs."""
    enrolled = set(person_of.values())
    mated = [(i, v) for i, v in searches if i in enrolled]
    decisions = gallery.search(np.stack([v for _, v in mated])) if mated else []
    recognised = wrong = 0
    reasons: dict[str, int] = {}
    for (identity, _), d in zip(mated, decisions, strict=True):
        who = person_of.get(d.person.person_id) if d.person else None
        if who == identity:
            recognised += 1
            continue
        if who is not None:
            wrong += 1
        key = d.reason if who is None else "wrong_person"
        reasons[key] = reasons.get(key, 0) + 1
    s_decisions = gallery.search(np.stack([v for _, v in strangers])) if strangers else []
    accepted_people = {i for (i, _), d in zip(strangers, s_decisions, strict=True) if d.person}
    return DoorRates(
        gallery_size=len(person_of),
        stranger_searches=len(strangers),
        strangers_accepted=sum(1 for d in s_decisions if d.person),
        strangers=len({i for i, _ in strangers}),
        strangers_with_any_accepted=len(accepted_people),
        mated_searches=len(mated),
        recognised=recognised,
        wrong_person=wrong,
        reasons=reasons,
    )


@dataclass
class TemporaryGallery:
    """A throwaway gallery under the data directory (encrypted with a fresh key, deleted after)."""

    engine: FaceEngine
    parent: Path

    def __enter__(self) -> Gallery:
        self.parent.mkdir(parents=True, exist_ok=True)
        self._dir = tempfile.TemporaryDirectory(prefix="eval-gallery-", dir=self.parent)
        settings = self.engine.settings.model_copy(
            update={"data_dir": Path(self._dir.name), "database_url": None}
        )
        self._gallery = Gallery.open(settings, engine=self.engine, secret_key=secrets.token_urlsafe(32))
        return self._gallery

    def __exit__(self, *exc: object) -> None:
        self._gallery.close()
        self._dir.cleanup()


def enrol_in_order(
    gallery: Gallery,
    root: Path,
    enrol: dict[str, list[str]],
    sizes: list[int],
    measure: Callable[[dict[str, str]], None],
    progress: Callable[[int], None] | None = None,
) -> list[str]:
    """Enrol identities one by one; call `measure(person_of)` each time a gallery size in `sizes`
    is reached (nested galleries: the 10 are among the 100). Returns identities refused."""
    consent = Consent(
        purpose="facegate eval: a temporary gallery deleted after the measurement",
        expires_at=datetime.now(UTC) + timedelta(days=1),
        recorded_by="facegate eval",
    )
    person_of: dict[str, str] = {}
    refused: list[str] = []
    pending = sorted(set(sizes))
    measured = 0
    for identity, photos in enrol.items():
        try:
            result = gallery.enroll(
                identity.replace("/", " "), [root / p for p in photos], consent, skip_bad=True, actor="eval"
            )
            person_of[result.person.id] = identity
        except FacegateError:
            refused.append(identity)  # no usable photo: not enrolled, and none of theirs is a search
        if progress:
            progress(len(photos))
        while pending and len(person_of) >= pending[0]:
            measure(dict(person_of))
            measured = len(person_of)
            pending.pop(0)
    if pending and len(person_of) > measured:
        measure(dict(person_of))  # the largest gallery this folder allows
    return refused


def run_fpir(
    engine: FaceEngine,
    root: Path,
    out_dir: Path,
    cache_dir: Path,
    progress: Callable[[int], None],
    sizes: list[int],
    strangers: int = 100,
    enrol_photos: int = 1,
    seed: int = 0,
) -> dict[str, Any]:
    """Enrol up to max(sizes) identities of `root`, present `strangers` others; rates per size."""
    folders = identity_folders(root)
    proto = door_protocol(folders, max(sizes), strangers, enrol_photos, seed)
    probe_paths = sorted(
        {p for ps in proto.searches.values() for p in ps} | {p for ps in proto.strangers.values() for p in ps}
    )
    emb = embed_dataset(engine, root, probe_paths, cache_dir, progress)
    idx = emb.index()

    def usable(paths: dict[str, list[str]]) -> list[tuple[str, np.ndarray]]:
        return [(i, emb.vectors[idx[p]]) for i, ps in paths.items() for p in ps if emb.found[idx[p]]]

    searches, outsiders = usable(proto.searches), usable(proto.strangers)
    rows: list[dict[str, Any]] = []
    with TemporaryGallery(engine, cache_dir) as gallery:

        def measure(person_of: dict[str, str]) -> None:
            row = door_rates(gallery, person_of, searches, outsiders).row()
            per_person = gallery.open_set_thresholds()
            if per_person:
                values = np.array(list(per_person.values()))
                row["person thresholds (min, median, max)"] = [
                    float(values.min()),
                    float(np.median(values)),
                    float(values.max()),
                ]
            rows.append(row)

        refused = enrol_in_order(gallery, root, proto.enrol, sizes, measure, progress)
        threshold = gallery.threshold
        margin = ambiguity_margin(engine.settings.match.ambiguity_margin, gallery.calibration)
    match = engine.settings.match
    fig, ax = report.figure()
    xs = [r["gallery size"] for r in rows]
    for name, colour in (("FPIR", "#c0392b"), ("FNIR", "#2c3e50")):
        ys = [r[name] or 0.0 for r in rows]
        cis = [r[f"{name} 95% CI"] or [0.0, 0.0] for r in rows]
        err = [
            [y - c[0] for y, c in zip(ys, cis, strict=True)],
            [c[1] - y for y, c in zip(ys, cis, strict=True)],
        ]
        ax.errorbar(xs, ys, yerr=err, marker="o", capsize=4, color=colour, label=name)
    if match.open_set_thresholds == "fpir":
        ax.axhline(match.target_fpir, color="#c0392b", ls="--", label=f"target FPIR {match.target_fpir:g}")
    ax.set_xscale("log")
    ax.set(xlabel="people enrolled", ylabel="rate (95% CI)", title="The door's error rates by gallery size")
    ax.legend()
    summary = {
        "photos folder": str(root),
        "identities": len(folders),
        "enrolment photos per person": enrol_photos,
        "people drawn to enrol": len(proto.enrol),
        "people refused at enrolment (no usable photo)": len(refused),
        "strangers (never enrolled)": len(proto.strangers),
        "stranger photos without a usable face": sum(len(ps) for ps in proto.strangers.values())
        - len(outsiders),
        "open-set rule": match.open_set_thresholds,
        "target FPIR (the door's rate)": match.target_fpir if match.open_set_thresholds == "fpir" else None,
        "1:1 threshold (the floor under every person's)": threshold,
        "target FMR (1:1)": match.target_fmr,
        "ambiguity margin": margin,
        "seed": seed,
    }
    html_path, json_path = report.write(
        out_dir,
        "fpir",
        f"The door's error rates: {root}",
        summary,
        {"By gallery size": rows},
        {"FPIR and FNIR": report.png(fig)},
        [
            "People are enrolled through a temporary gallery with the configured quality rules and "
            "deleted afterwards; every search goes through the gallery's own open-set decision.",
            "Galleries are nested: the smaller ones are the first people of the larger ones.",
            "FPIR: share of photos of never-enrolled people accepted as anyone enrolled. FNIR: share of "
            "photos of enrolled people (not used to enrol them) not given to them, a wrong person included.",
            "95% intervals are Wilson's; photos of one person are not independent, so the true uncertainty "
            "is somewhat wider.",
        ],
    )
    return {"summary": summary, "rows": rows, "html": str(html_path), "json": str(json_path)}
