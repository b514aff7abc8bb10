"""Every graded rule is stated in the handout: the hidden groups and the sentences that state them.

Each hidden group of each exercise (``Group.label`` in ``autograder.hidden.lessonNN``) maps to a
short quote of the student handout (``starter/``): a sentence of the lesson's notebook, markdown
or code, or a docstring of the handout's package. The mapping lives in one place,
``stated_rules.toml``; a group whose rule the handout does not state yet is listed there under
``[gaps]`` instead, with what is missing. ``docs/RULES.md`` shows the mapping as a table.

    python -m autograder.stated_rules          # rewrite docs/RULES.md
    python -m autograder.stated_rules --check  # exit 1 if docs/RULES.md is out of date

Quotes are compared after ``normalised``: Markdown emphasis and code marks dropped, runs of
white space (line breaks, docstring indentation) read as one space.
"""

import ast
import importlib
import json
import re
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

from autograder.contract import ExerciseResult
from autograder.rubric import RUBRIC

KIT = Path(__file__).resolve().parent.parent
MAPPING = Path(__file__).with_name("stated_rules.toml")
HANDOUT = KIT / "starter"
PAGE = KIT / "docs" / "RULES.md"


@dataclass(frozen=True)
class HiddenGroup:
    lesson: str
    exercise: str
    label: str
    points: float


class _NoStudent:
    """Stands in for a submission while the groups are collected: nothing is ever called."""

    def has(self, function: str) -> bool:
        return True

    def call(self, function: str, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("collecting the groups must not call the student")


def hidden_groups() -> list[HiddenGroup]:
    """Every group of every exercise, in rubric order, as each exercise's grader builds it.

    The graders build their groups and hand them to ``grade_exercise``; while collecting, that
    name is replaced in each hidden module by a recorder that keeps the groups and grades
    nothing."""
    found: list[HiddenGroup] = []
    for lesson, exercises in RUBRIC.items():
        for exercise in exercises:
            module = importlib.import_module(exercise.grade.__module__)

            def record(lesson: str, name: str, student: Any, groups: list, *args: Any,
                       **kwargs: Any) -> ExerciseResult:  # fmt: skip
                found.extend(HiddenGroup(lesson, name, g.label, g.points) for g in groups)
                points = float(sum(group.points for group in groups))
                return ExerciseResult(lesson, name, points, points, [])

            with mock.patch.object(module, "grade_exercise", record):
                exercise.grade(_NoStudent())  # type: ignore[arg-type]
    return found


# --- the mapping --------------------------------------------------------------------------------


@dataclass(frozen=True)
class StatedRule:
    """A group's entry in ``stated_rules.toml``: the quotes that state it, or a known gap."""

    quotes: tuple[str, ...] = ()
    gap: str = ""


Key = tuple[str, str, str]  # lesson, exercise, group label


def load_mapping(path: Path = MAPPING) -> dict[Key, StatedRule]:
    """(lesson, exercise, label) -> its entry; ``ValueError`` naming a malformed one."""
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    rules = {}
    for lesson, exercises in data.items():
        for exercise, labels in exercises.items():
            for label, value in labels.items():
                if isinstance(value, str):
                    value = [value]
                if isinstance(value, dict) and set(value) == {"gap"} and value["gap"]:
                    rules[lesson, exercise, label] = StatedRule(gap=str(value["gap"]))
                elif isinstance(value, list) and value and all(isinstance(q, str) and q.strip()
                                                               for q in value):  # fmt: skip
                    rules[lesson, exercise, label] = StatedRule(quotes=tuple(value))
                else:
                    raise ValueError(f"{path.name}: {lesson} {exercise} {label!r}: expected a "
                                     "quote, a list of quotes or { gap = \"...\" }")  # fmt: skip
    return rules


def mapping_problems(groups: list[HiddenGroup], rules: dict[Key, StatedRule]) -> list[str]:
    """What does not match between the hidden groups and the mapping, one line each ([] if
    nothing): a group without an entry, or an entry for no group (a label reworded or a group
    dropped: update ``stated_rules.toml``)."""
    keys = {(g.lesson, g.exercise, g.label) for g in groups}
    problems = [f"{lesson} {exercise}: the hidden group {label!r} has no entry in {MAPPING.name}"
                for lesson, exercise, label in sorted(keys - rules.keys())]
    problems += [f"{lesson} {exercise}: {MAPPING.name} has an entry for {label!r}, which is no "
                 "hidden group (reworded or dropped?)"
                 for lesson, exercise, label in sorted(rules.keys() - keys)]  # fmt: skip
    return problems


# --- the handout --------------------------------------------------------------------------------


def normalised(text: str) -> str:
    """``text`` as quotes are compared: no Markdown emphasis or code marks, one space for any run
    of white space (a quote may span a line break or a docstring's indentation)."""
    return " ".join(re.sub(r"[`*]", "", text).split())


def _notebook_texts(path: Path) -> Iterator[tuple[str, str]]:
    """(where, text) for each cell of a handout notebook."""
    for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
        source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
        grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id", "")
        if cell["cell_type"] == "markdown":
            yield "text", source
        elif grade_id.startswith("test_"):
            yield "visible test", source
        elif grade_id:
            yield "exercise cell", source
        else:
            yield "code cell", source


def _docstrings(package: Path) -> Iterator[tuple[str, str]]:
    """(where, docstring) for every module, class and function of the handout's package."""
    for path in sorted(package.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef):
                docstring = ast.get_docstring(node)
                if docstring:
                    name = getattr(node, "name", "")
                    yield f"minilb/{path.name}" + (f" {name}" if name else ""), docstring


def handout_texts(lesson: str, handout: Path = HANDOUT) -> list[tuple[str, str]]:
    """Where a rule of ``lesson`` may be stated, each text ``normalised``: its handout notebook,
    the earlier lessons' notebooks (the course runs in order), the package's docstrings."""
    lessons = list(RUBRIC)
    earlier = lessons[: lessons.index(lesson)]
    texts = [(f"{name}.ipynb ({where})", text)
             for name in [lesson, *reversed(earlier)]
             for where, text in _notebook_texts(handout / f"{name}.ipynb")]  # fmt: skip
    texts += _docstrings(handout / "minilb")
    return [(where, normalised(text)) for where, text in texts]


def where_stated(quote: str, texts: list[tuple[str, str]]) -> str:
    """The first place of ``texts`` that holds ``quote`` ("" if none does)."""
    wanted = normalised(quote)
    return next((where for where, text in texts if wanted and wanted in text), "")


def quotes_not_found(handout: Path = HANDOUT) -> list[str]:
    """Every quote of the mapping that its lesson's handout does not hold, one line each."""
    texts = {lesson: handout_texts(lesson, handout) for lesson in RUBRIC}
    return [f"{lesson} {exercise} {label!r}: {quote!r} is not in the handout"
            for (lesson, exercise, label), rule in load_mapping().items()
            for quote in rule.quotes if not where_stated(quote, texts.get(lesson, []))]  # fmt: skip


# --- docs/RULES.md ------------------------------------------------------------------------------


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def rules_page(handout: Path = HANDOUT) -> str:
    """docs/RULES.md: per lesson, each hidden group, its points and the words stating it."""
    rules = load_mapping()
    lines = [
        "# Every graded rule, and where the handout states it",
        "",
        "<!-- generated by `python -m autograder.stated_rules` from the hidden tests and "
        "autograder/stated_rules.toml; do not edit -->",
        "",
        "Each group of hidden cases (the unit of points: see the rubric in INSTRUCTOR.md) and "
        "the words of the student handout (`starter/`) that state its rule. A **gap** is a "
        "rule the handout does not state (or only in part) yet: a student can lose those "
        "points without having been told the rule.",
    ]
    lesson, texts = "", []
    for group in hidden_groups():
        if group.lesson != lesson:
            lesson, texts = group.lesson, handout_texts(group.lesson, handout)
            lines += ["", f"## `{lesson}`", "",
                      "| exercise | hidden group | points | stated in | the words |",
                      "|---|---|---|---|---|"]  # fmt: skip
        rule = rules.get((group.lesson, group.exercise, group.label), StatedRule(gap="no entry"))
        if rule.gap:
            where, said = "**gap**", rule.gap
        else:
            places = (where_stated(quote, texts) or "**not found**" for quote in rule.quotes)
            where = "; ".join(dict.fromkeys(places))
            said = " … ".join(f"“{quote}”" for quote in rule.quotes)
        lines.append(f"| `{group.exercise}` | {_cell(group.label)} | {group.points:g} | "
                     f"{_cell(where)} | {_cell(said)} |")  # fmt: skip
    gaps = [key for key, rule in rules.items() if rule.gap]
    lines += ["", f"{len(gaps)} of {len(rules)} groups are gaps."]
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    fresh = rules_page()
    if "--check" in argv:
        if not PAGE.exists() or PAGE.read_text(encoding="utf-8") != fresh:
            print(f"{PAGE.name} is out of date: run `python -m autograder.stated_rules`")
            return 1
        return 0
    PAGE.write_text(fresh, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
