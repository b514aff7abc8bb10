"""What a class run writes: ``grades.csv``, ``feedback/<student>.md`` and Gradescope's
``results.json``, all made only from the grader's own results.

In ``results.json`` each exercise is a visible test (its points, and feedback that does not
depend on a kind of hidden case); what went wrong in each group of hidden cases ("other fleets
(-1): ...") is a separate test shown only after the due date (Gradescope's ``after_due_date``),
so repeated submissions cannot probe the hidden tests. The feedback files, which the instructor
hands out, keep every line.

A student's name is a folder name the student may have chosen, so it is escaped wherever it is
written: ``shown_name`` (control characters, newlines and bytes that are not UTF-8 become
backslash escapes) in every text, a leading ``' `` before a spreadsheet formula in grades.csv,
Markdown punctuation escaped in the feedback heading, and ``file_name`` for the paths under
``--out`` (one plain path component, never a dot name, never too long).
"""

import csv
import hashlib
import io
import json
import os
import re
import urllib.parse
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from autograder.grade import LessonGrade

CSV_COLUMNS = ["student", "lesson", "score", "max_score", "percent", "status",  # the contract
               "submitted_at", "late_days", "penalty", "final_score",  # added at the end
               "handout"]  # the handout version the notebook came from (hex, "" if none)
# A line about one group of hidden cases, as autograder.hidden.common writes it.
GROUP_LINE = re.compile(r"^(?P<label>.+?) \(-[^)]*\): ")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # a spreadsheet reads these as a formula
MARKDOWN_PUNCTUATION = re.compile(r"([\\`*_{}\[\]<>()#+\-.!|~])")
MAX_NAME_BYTES = 120  # far below a file system's 255, with room for a suffix


def _raw(name: str) -> bytes:
    """The bytes of a file name (a name that is not UTF-8 holds surrogate escapes)."""
    try:
        return os.fsencode(name)
    except UnicodeEncodeError:  # not from the file system; escaped all the same
        return name.encode("utf-8", "backslashreplace")


def shown_name(name: str) -> str:
    """``name`` as printable text on one line: a backslash, a control character, a newline or a
    byte that is not UTF-8 becomes an escape, so two names never look the same."""
    text = _raw(name).replace(b"\\", b"\\\\").decode("utf-8", "backslashreplace")
    return "".join(char if char.isprintable() else char.encode("unicode_escape").decode()
                   for char in text)


def csv_cell(text: str) -> str:
    """``text`` that a spreadsheet shows as text, never runs as a formula."""
    return f"'{text}" if text.startswith(FORMULA_STARTS) else text


def file_name(student: str) -> str:
    """One safe path component for ``student``: the name itself when it is plain printable
    text of sane length, else a percent-encoded (and, if long, shortened and hashed) form;
    different names always give different files."""
    raw = _raw(student)
    plain = (student.isprintable() and "%" not in student and "/" not in student
             and not student.startswith(".") and len(raw) <= MAX_NAME_BYTES)
    if plain:
        return student
    quoted = urllib.parse.quote(raw, safe="")
    if len(quoted) > MAX_NAME_BYTES or quoted.startswith("."):
        quoted = f"%{quoted[:MAX_NAME_BYTES - 40]}-{hashlib.sha256(raw).hexdigest()[:32]}"
    return quoted


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
        writer.writerow([shown_name(csv_cell(grade.student)), grade.lesson, number(grade.score),
                         number(grade.max_score), number(percent), grade.status,
                         grade.submitted_at, grade.late_days, number(grade.penalty),
                         number(grade.final_score), grade.handout])
    return out.getvalue()


def feedback_markdown(student: str, grades: "list[LessonGrade]") -> str:
    heading = MARKDOWN_PUNCTUATION.sub(r"\\\1", shown_name(student))
    lines = [f"# Feedback for {heading}", ""]
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
        folder = file_name(student)
        write_atomically(out / "feedback" / f"{folder}.md", feedback_markdown(student, mine))
        for grade in mine:
            write_atomically(out / "results" / folder / grade.lesson / "results.json",
                             json.dumps(gradescope_results(grade), indent=2) + "\n")
