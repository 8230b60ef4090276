"""Door policy: may this enrolled person open this door now?"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

from facegate.settings import WEEKDAYS, AccessRule, DoorSettings


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    reason: str  # "rule 2" when allowed; why not otherwise


def _hm(text: str) -> time | None:
    h, m = (int(x) for x in text.split(":"))
    return None if h == 24 else time(h, m)  # None: end of day


def _in_hours(hours: str, at: time) -> bool:
    start_s, end_s = hours.split("-")
    start, end = _hm(start_s) or time(0, 0), _hm(end_s)
    if end is None:
        return at >= start
    if start <= end:
        return start <= at < end
    return at >= start or at < end  # wraps past midnight


def _aware(d: datetime, tz: ZoneInfo) -> datetime:
    return d if d.tzinfo is not None else d.replace(tzinfo=tz)


class DoorPolicy:
    """The access rules of one door, evaluated in the door's time zone."""

    def __init__(self, door: DoorSettings, people_named: Callable[[str], list[str]] | None = None) -> None:
        """`people_named(name)`: ids of the enrolled people with that exact name. A rule that
        names a person (rather than giving their id) covers them only while the name is theirs
        alone: enrolling or renaming someone to "Alice" must not hand them Alice's access."""
        self.door = door
        self.tz = ZoneInfo(door.timezone)
        self.people_named = people_named

    def _covers(self, rule: AccessRule, person_id: str, name: str) -> bool:
        if "*" in rule.people or person_id in rule.people:
            return True
        if name not in rule.people:
            return False
        return self.people_named is None or self.people_named(name) == [person_id]

    def evaluate(self, person_id: str, name: str, when: datetime | None = None) -> Verdict:
        when = (when or datetime.now(UTC)).astimezone(self.tz)
        rules = [r for r in self.door.rules if self._covers(r, person_id, name)]
        if not rules:
            return Verdict(False, f"not allowed at door {self.door.name}")
        reasons = []
        for i, rule in enumerate(self.door.rules, 1):
            if rule not in rules:
                continue
            if rule.valid_from is not None and when < _aware(rule.valid_from, self.tz):
                reasons.append("access not yet valid")
            elif rule.valid_until is not None and when >= _aware(rule.valid_until, self.tz):
                reasons.append("access expired")
            elif WEEKDAYS[when.weekday()] not in rule.days:
                reasons.append(f"not allowed on {WEEKDAYS[when.weekday()]}")
            elif not _in_hours(rule.hours, when.time()):
                reasons.append(f"outside hours {rule.hours}")
            else:
                return Verdict(True, f"rule {i}")
        return Verdict(False, "; ".join(dict.fromkeys(reasons)))


# The implicit "door" of a camera that has none (`facegate watch`): everyone with consent. Its
# name cannot be a configured door's (names start with a letter or digit), and no actuator
# listens for it, so it never opens anything.
ALLOW_ALL = DoorSettings.model_construct(
    name="_watch", cameras=["_watch"], rules=[AccessRule(people=["*"])], timezone="UTC",
    target_fmr=None, cooldown_s=30.0, unknown_cooldown_s=60.0, unlock=None,
)  # fmt: skip


def grants_without_liveness(doors: Iterable[DoorSettings]) -> list[str]:
    """The doors whose rules can grant without seeing a live face: a photo of an enrolled person
    held up to their camera opens them (and their `granted` events say `liveness: "off"`)."""
    return [d.name for d in doors if d.rules and not d.liveness_required]
