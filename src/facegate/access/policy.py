"""Door policy: may this enrolled person open this door now?"""

from __future__ import annotations

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

    def __init__(self, door: DoorSettings) -> None:
        self.door = door
        self.tz = ZoneInfo(door.timezone)

    def _covers(self, rule: AccessRule, person_id: str, name: str) -> bool:
        return "*" in rule.people or person_id in rule.people or name in rule.people

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


ALLOW_ALL = DoorSettings(name="watch", cameras=["watch"], rules=[AccessRule(people=["*"])])
