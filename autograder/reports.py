"""What a class run writes: ``grades.csv``, ``feedback/<student>.md`` and Gradescope's
``results.json``, all made only from the grader's own results.

In ``results.json`` each exercise is a visible test (its points, and feedback that does not
depend on a kind of hidden case); what went wrong in each group of hidden cases ("other fleets
(-1): ...") is a separate test shown only after the due date (Gradescope's ``after_due_date``),
so repeated submissions cannot probe the hidden tests. The feedback files, which the instructor
hands out, keep every line.
"""

import csv
import io
import json
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from autograder.grade import LessonGrade

CSV_COLUMNS = ["student", "lesson", "score", "max_score", "percent", "status",  # the contract
               "submitted_at", "late_days", "penalty", "final_score"]  # added at the end
# A line about one group of hidden cases, as autograder.hidden.common writes it.
GROUP_LINE = re.compile(r"^(?P<label>.+?) \(-[^)]*\): ")


def write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


def number(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


def grades_csv(grades: "Iterable[LessonGrade]") -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for grade in grades:
        percent = 100 * grade.score / grade.max_score if grade.max_score else 0.0
        writer.writerow([grade.student, grade.lesson, number(grade.score),
                         number(grade.max_score), number(percent), grade.status,
                         grade.submitted_at, grade.late_days, number(grade.penalty),
                         number(grade.final_score)])
    return out.getvalue()


def feedback_markdown(student: str, grades: "list[LessonGrade]") -> str:
    lines = [f"# Feedback for {student}", ""]
    for grade in grades:
        lines += [f"## {grade.lesson}: {number(grade.final_score)} / {number(grade.max_score)}",
                  ""]
        notes = grade.notes + ([grade.late_note] if grade.late_note else [])
        lines += [f"> {note}" for note in notes] + ([""] if notes else [])
        for exercise in grade.exercises:
            lines.append(f"### {exercise['name']}: {number(exercise['score'])} / "
                         f"{number(exercise['max_score'])}")
            done = "- all correct" if exercise["score"] >= exercise["max_score"] else \
                "- not graded"
            lines += [f"- {line}" for line in exercise["feedback"]] or [done]
            lines.append("")
    return "\n".join(lines)


def _exercise_tests(lesson: str, exercise: dict) -> list[dict]:
    name = f"{lesson}: {exercise['name']}"
    groups = [line for line in exercise["feedback"] if GROUP_LINE.match(line)]
    general = [line for line in exercise["feedback"] if line not in groups]
    if groups:
        general.append(f"Points lost on {len(groups)} kind{'s' if len(groups) > 1 else ''} of "
                       "hidden case: what went wrong is shown after the due date.")
    visible = {"name": name, "score": exercise["score"], "max_score": exercise["max_score"],
               "status": "passed" if exercise["score"] >= exercise["max_score"] else "failed",
               "output": "\n".join(general), "visibility": "visible"}
    hidden = [{"name": f"{name}: {GROUP_LINE.match(line)['label']}",  # type: ignore[index]
               "status": "failed", "output": line, "visibility": "after_due_date"}
              for line in groups]
    return [visible, *hidden]


def gradescope_results(grade: "LessonGrade") -> dict:
    """The Gradescope autograder format (``results.json``); the score is after any penalty."""
    notes = grade.notes + ([grade.late_note] if grade.late_note else [])
    return {
        "score": grade.final_score,
        "output": "\n".join(notes),
        "stdout_visibility": "hidden",
        "tests": [test for exercise in grade.exercises
                  for test in _exercise_tests(grade.lesson, exercise)],
    }


def write_outputs(out: Path, grades: "list[LessonGrade]") -> None:
    write_atomically(out / "grades.csv", grades_csv(grades))
    for student in sorted({grade.student for grade in grades}):
        mine = [grade for grade in grades if grade.student == student]
        write_atomically(out / "feedback" / f"{student}.md", feedback_markdown(student, mine))
        for grade in mine:
            write_atomically(out / "results" / student / grade.lesson / "results.json",
                             json.dumps(gradescope_results(grade), indent=2) + "\n")
