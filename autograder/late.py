"""Due dates and the late policy: when a notebook was handed in, and what lateness costs.

nbgrader writes ``submitted/<student>/<lesson>/timestamp.txt`` when a student submits, in the
form ``2026-11-30 17:05:12.123456 UTC`` (date, time, then a zone name or a numeric offset).
``parse_timestamp`` reads it the way nbgrader's own ``nbgrader.utils.parse_utc`` does (with
dateutil; importing nbgrader itself costs seconds). Times are compared in UTC.

The policy: ``late_days`` counts started days after the due date (one second late is one day),
each late day costs ``penalty_per_day`` percent of the lesson's maximum, and a notebook more than
``max_days`` days late scores 0. With the default penalty of 0, lateness is only reported.
"""

import json
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import dateutil.parser
import dateutil.tz

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10 (Gradescope's Ubuntu 22.04): the same parser, on PyPI
    import tomli as tomllib

UTC = timezone.utc  # noqa: UP017  (datetime.UTC is 3.11+)

DAY = timedelta(days=1)


def parse_timestamp(text: str) -> datetime:
    """A timestamp in nbgrader's format (or ISO 8601), as an aware UTC datetime.

    Without a time zone the time is taken as UTC, as nbgrader does."""
    parts = text.strip().split(" ")
    try:
        if len(parts) == 3:  # "date time zone": the zone is a name (UTC, Europe/Paris) or +0100
            zone: object = dateutil.tz.gettz(parts[2])
            if parts[2].lstrip("+-").isdigit():
                stamp = dateutil.parser.parse(" ".join(parts))
            elif zone is None:
                raise ValueError(f"unknown time zone {parts[2]!r}")
            else:
                stamp = dateutil.parser.parse(" ".join(parts[:2])).replace(tzinfo=zone)
        else:
            stamp = dateutil.parser.parse(text.strip())
    except (ValueError, OverflowError) as error:
        raise ValueError(f"not a timestamp: {text.strip()!r} ({error})") from None
    return stamp.replace(tzinfo=UTC) if stamp.tzinfo is None else stamp.astimezone(UTC)


def read_timestamp(notebook: Path) -> datetime | None:
    """When nbgrader recorded the submission of ``notebook`` (None: no or an unreadable file)."""
    path = Path(notebook).parent / "timestamp.txt"
    try:
        return parse_timestamp(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return None


def read_due_dates(path: Path) -> dict[str, datetime]:
    """Lesson -> due date, from a TOML (``01_cost_matrix = "2026-12-01 17:00 UTC"``) or JSON
    file mapping lesson names to timestamps."""
    text = Path(path).read_text(encoding="utf-8")
    try:
        table = json.loads(text) if Path(path).suffix == ".json" else tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as error:
        raise ValueError(f"{path} is not a valid due-date file: {error}") from None
    if not isinstance(table, dict):
        raise ValueError(f"{path} must map lesson names to due dates")
    return {str(lesson): due.astimezone(UTC) if isinstance(due, datetime) and due.tzinfo else
            parse_timestamp(str(due)) for lesson, due in table.items()}


@dataclass(frozen=True)
class LatePolicy:
    """Due dates (one for every lesson and/or one per lesson) and what lateness costs."""

    due: datetime | None = None
    due_by_lesson: dict[str, datetime] = field(default_factory=dict)
    penalty_per_day: float = 0.0  # percent of the lesson's maximum score per started late day
    max_days: int | None = None  # later than this many days: 0 points

    def __post_init__(self) -> None:
        if not 0 <= self.penalty_per_day <= 100:
            raise ValueError(f"--late-penalty-per-day must be between 0 and 100, got "
                             f"{self.penalty_per_day:g}")
        if self.max_days is not None and self.max_days < 0:
            raise ValueError(f"--late-max-days must not be negative, got {self.max_days}")

    def due_for(self, lesson: str) -> datetime | None:
        return self.due_by_lesson.get(lesson, self.due)


@dataclass(frozen=True)
class Lateness:
    late_days: int
    penalty: float  # points taken off
    note: str  # for the student's feedback ("" when on time or no due date applies)


def assess(policy: LatePolicy, lesson: str, submitted_at: datetime | None, score: float,
           max_score: float) -> Lateness:
    """What lateness costs one notebook that scored ``score`` out of ``max_score``."""
    due = policy.due_for(lesson)
    if due is None or submitted_at is None or submitted_at <= due:
        return Lateness(0, 0.0, "")
    late_days = math.ceil((submitted_at - due) / DAY)
    when = f"Handed in {late_days} day{'s' if late_days > 1 else ''} late " \
           f"(due {due:%Y-%m-%d %H:%M} UTC, submitted {submitted_at:%Y-%m-%d %H:%M} UTC)"
    if policy.max_days is not None and late_days > policy.max_days:
        return Lateness(late_days, round(score, 4),
                        f"{when}: more than {policy.max_days} days late scores 0.")
    penalty = min(score, max_score * min(100.0, late_days * policy.penalty_per_day) / 100)
    if penalty <= 0:
        return Lateness(late_days, 0.0, f"{when}.")
    return Lateness(late_days, round(penalty, 4),
                    f"{when}: -{policy.penalty_per_day:g}% of the maximum per late day, "
                    f"{round(penalty, 2):g} points off.")


POLICY_FILE = "late_policy.toml"  # its name in nbgrader's course root and in a Gradescope zip


def read_policy(path: Path) -> LatePolicy:
    """The course's late policy: the one file that ``minilb grade --late-policy``, nbgrader
    (``lessons/late_policy.toml``) and a Gradescope zip built with ``--late-policy`` all read::

        penalty_per_day = 10          # percent of the lesson's maximum per started late day
        max_days = 7                  # later than that: 0 points (leave out: no limit)
        due = "2026-12-01 17:00 UTC"  # every lesson; or a table, one due date per lesson:
        [due]
        01_cost_matrix = "2026-12-01 17:00 UTC"
    """
    try:
        table = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise ValueError(f"cannot read the late policy {path}: {error}") from None
    unknown = sorted(set(table) - {"penalty_per_day", "max_days", "due"})
    if unknown:
        raise ValueError(f"{path}: unknown setting {unknown[0]!r} (known: penalty_per_day, "
                         "max_days, due)")
    due = table.get("due")

    def when(value: object) -> datetime:
        if isinstance(value, datetime):
            return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return parse_timestamp(str(value))

    penalty, max_days = table.get("penalty_per_day", 0.0), table.get("max_days")
    if isinstance(penalty, bool) or not isinstance(penalty, int | float):
        raise ValueError(f"{path}: penalty_per_day must be a number, got {penalty!r}")
    if max_days is not None and (isinstance(max_days, bool) or not isinstance(max_days, int)):
        raise ValueError(f"{path}: max_days must be a whole number of days, got {max_days!r}")
    return LatePolicy(
        due=None if due is None or isinstance(due, dict) else when(due),
        due_by_lesson={str(k): when(v) for k, v in due.items()} if isinstance(due, dict) else {},
        penalty_per_day=float(penalty), max_days=max_days)
