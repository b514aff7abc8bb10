"""Due dates and the late policy: nbgrader's timestamps, started late days, penalties, the cap,
and grades.csv / feedback with and without lateness."""

import csv
import json
from datetime import UTC, datetime

import pytest
from notebook_fixtures import solved_notebook

from autograder.late import LatePolicy, assess, parse_timestamp, read_due_dates, read_policy
from minilb.cli import main

DUE = "2026-12-01 17:00 UTC"
LESSON = "01_cost_matrix"


@pytest.mark.parametrize("text, expected", [
    ("2026-11-30 17:05:12.123456 UTC", datetime(2026, 11, 30, 17, 5, 12, 123456, UTC)),
    ("2026-12-01 18:00:00 Europe/Paris", datetime(2026, 12, 1, 17, 0, tzinfo=UTC)),
    ("2026-12-01 18:00:00 +0100", datetime(2026, 12, 1, 17, 0, tzinfo=UTC)),
    ("2026-12-01 17:00:00", datetime(2026, 12, 1, 17, 0, tzinfo=UTC)),  # no zone: UTC
    ("2026-12-01T17:00:00+00:00", datetime(2026, 12, 1, 17, 0, tzinfo=UTC)),
])
def test_timestamps_in_nbgraders_format(text, expected):
    assert parse_timestamp(text) == expected


@pytest.mark.parametrize("text", ["yesterday-ish", "2026-12-01 17:00 Mars/Olympus", ""])
def test_bad_timestamps_say_so(text):
    with pytest.raises(ValueError, match="not a timestamp|unknown time zone"):
        parse_timestamp(text)


def at(text: str) -> datetime:
    return parse_timestamp(text)


def test_started_days_penalty_and_cap():
    policy = LatePolicy(due=at(DUE), penalty_per_day=10, max_days=3)
    assert assess(policy, LESSON, at("2026-12-01 17:00 UTC"), 8, 10).late_days == 0
    one_second = assess(policy, LESSON, at("2026-12-01 17:00:01 UTC"), 8, 10)
    assert (one_second.late_days, one_second.penalty) == (1, 1.0)
    assert "1 day late" in one_second.note and "1 points off" in one_second.note
    three = assess(policy, LESSON, at("2026-12-04 17:00 UTC"), 8, 10)
    assert (three.late_days, three.penalty) == (3, 3.0)
    too_late = assess(policy, LESSON, at("2026-12-04 17:00:01 UTC"), 8, 10)
    assert (too_late.late_days, too_late.penalty) == (4, 8) and "scores 0" in too_late.note
    small = assess(LatePolicy(due=at(DUE), penalty_per_day=50), LESSON,
                   at("2026-12-03 17:00 UTC"), 2, 10)
    assert small.penalty == 2  # never below 0 points
    report_only = assess(LatePolicy(due=at(DUE)), LESSON, at("2026-12-05 17:00 UTC"), 8, 10)
    assert (report_only.late_days, report_only.penalty) == (4, 0) and "4 days late" in \
        report_only.note
    assert assess(policy, LESSON, None, 8, 10).late_days == 0  # no timestamp: on time


def test_due_dates_per_lesson(tmp_path):
    (tmp_path / "due.toml").write_text(f'{LESSON} = "2026-12-08 17:00 UTC"\n'
                                       '02_greedy_balancing = 2026-12-15T17:00:00Z\n')
    (tmp_path / "due.json").write_text(json.dumps({LESSON: "2026-12-08 17:00 UTC"}))
    dates = read_due_dates(tmp_path / "due.toml")
    assert dates == {LESSON: datetime(2026, 12, 8, 17, tzinfo=UTC),
                     "02_greedy_balancing": datetime(2026, 12, 15, 17, tzinfo=UTC)}
    assert read_due_dates(tmp_path / "due.json") == {LESSON: dates[LESSON]}
    policy = LatePolicy(due=at(DUE), due_by_lesson=dates)
    assert policy.due_for(LESSON) == dates[LESSON]
    assert policy.due_for("03_optimal_makespan") == at(DUE)
    (tmp_path / "bad.toml").write_text("= nope")
    with pytest.raises(ValueError, match="not a valid due-date file"):
        read_due_dates(tmp_path / "bad.toml")
    with pytest.raises(ValueError, match="between 0 and 100"):
        LatePolicy(penalty_per_day=120)


def nbgrader_class(root):
    for student, stamp in (("ann", "2026-12-01 16:59:00 UTC"), ("ben", "2026-12-03 09:00:00 UTC"),
                           ("cat", None)):
        folder = root / "submitted" / student / LESSON
        solved_notebook(LESSON, folder / f"{LESSON}.ipynb")
        if stamp:
            (folder / "timestamp.txt").write_text(stamp + "\n")
    return root


def rows_of(out):
    return {row["student"]: row for row in csv.DictReader((out / "grades.csv").open())}


def test_grades_csv_and_feedback_report_lateness(tmp_path):
    submissions = nbgrader_class(tmp_path / "course")
    plain, late = tmp_path / "plain", tmp_path / "late"
    assert main(["grade", str(submissions), "--out", str(plain)]) == 0
    assert main(["grade", str(submissions), "--out", str(late), "--due", DUE,
                 "--late-penalty-per-day", "20"]) == 0
    before, after = rows_of(plain), rows_of(late)
    assert list(after["ann"])[-5:-1] == ["submitted_at", "late_days", "penalty", "final_score"]
    for student in ("ann", "cat"):  # on time, or no timestamp: nothing changes
        assert after[student] == before[student]
        assert after[student]["final_score"] == after[student]["score"] == "10"
    assert (after["ben"]["score"], after["ben"]["late_days"], after["ben"]["penalty"],
            after["ben"]["final_score"]) == ("10", "2", "4", "6")
    assert after["ben"]["submitted_at"] == "2026-12-03 09:00:00 UTC"
    feedback = (late / "feedback" / "ben.md").read_text()
    assert f"## {LESSON}: 6 / 10" in feedback and "2 days late" in feedback
    results = json.loads((late / "results" / "ben" / LESSON / "results.json").read_text())
    assert results["score"] == 6 and "2 days late" in results["output"]
    assert (plain / "feedback" / "ann.md").read_text() == (late / "feedback" / "ann.md").read_text()
    capped = tmp_path / "capped"
    assert main(["grade", str(submissions), "--out", str(capped), "--due", DUE,
                 "--late-max-days", "1"]) == 0
    assert rows_of(capped)["ben"]["final_score"] == "0"


def test_the_course_policy_file_gives_due_dates_penalty_and_cap(tmp_path):
    path = tmp_path / "late_policy.toml"
    path.write_text(f'penalty_per_day = 10\nmax_days = 3\n[due]\n{LESSON} = "{DUE}"\n')
    policy = read_policy(path)
    assert policy == LatePolicy(due_by_lesson={LESSON: parse_timestamp(DUE)},
                                penalty_per_day=10.0, max_days=3)
    path.write_text(f'due = "{DUE}"\n')  # one due date for every lesson, lateness only reported
    assert read_policy(path) == LatePolicy(due=parse_timestamp(DUE))


@pytest.mark.parametrize("text, says", [
    ("penalty = 10\n", "unknown setting 'penalty'"),
    ('penalty_per_day = "ten"\n', "penalty_per_day must be a number"),
    ("max_days = 1.5\n", "max_days must be a whole number"),
    ("penalty_per_day = 150\n", "between 0 and 100"),
    ('due = "someday"\n', "not a timestamp"),
    ("due = [\n", "cannot read the late policy"),
])
def test_a_bad_policy_file_says_what_is_wrong(tmp_path, text, says):
    path = tmp_path / "late_policy.toml"
    path.write_text(text)
    with pytest.raises(ValueError, match=says):
        read_policy(path)


def test_the_policy_file_replaces_the_late_options(tmp_path, capsys):
    path = tmp_path / "late_policy.toml"
    path.write_text(f'due = "{DUE}"\n')
    assert main(["grade", str(tmp_path), "--out", str(tmp_path / "out"), "--late-policy",
                 str(path), "--due", DUE]) == 2
    assert "--late-policy replaces" in capsys.readouterr().err


def test_the_kit_ships_a_policy_that_makes_nothing_late():
    from pathlib import Path

    shipped = Path(__file__).resolve().parents[1] / "lessons" / "late_policy.toml"
    assert read_policy(shipped) == LatePolicy()
