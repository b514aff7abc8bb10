"""Feedback holds only text the grader wrote: no student string, and so no hidden input.

A hostile notebook raises, from every exercise, exceptions whose class name, message and repr
are a marker followed by the call's arguments (hidden lengths, fleets, sockets) and 95
characters of the harness that called it; it forges the child's replies (a forged exception
name, message and bases; a forged "ready" with load errors in its own words) and raises such an
exception while loading. Graded through ``minilb grade``, the Gradescope entry point and the
nbgrader bridge, no output may hold the marker, a hidden fleet or a harness's text. Positive
controls: the grader's own words for those exceptions ("an exception of its own class") are
found by the same scan, and with the old trust in the child's class names the marker is found.
A subclass of ValueError with such a name still counts as the ValueError the contract asks for.
"""

import ast
import json
from pathlib import Path

import pytest
from notebook_fixtures import solved_notebook, write_notebook

from autograder import child, contract, gradescope, nbgrader_bridge
from autograder.contract import (
    LESSONS,
    OWN_CLASS,
    StudentCallError,
    believed_name,
    cell_error_notes,
)
from autograder.grade import Submission, grade_submission
from autograder.hidden import common
from autograder.hidden.common import call_failure, is_value_error, raised_words
from autograder.reports import feedback_markdown, gradescope_results
from minilb.cli import main

MARKER = "ZQXLEAK"
HIDDEN_FLEETS = [*common.SEVERAL_MUSIC, *common.SEVERAL_VP, *common.FIVE_SERVERS,
                 common.TEN_SERVERS]  # fmt: skip
HARNESS_TEXT = [ast.get_docstring(ast.parse(common.HARNESS)).splitlines()[0],
                "What every lesson-4 harness shares"]  # fmt: skip

LEAK = f'''
import sys

MARKER = {MARKER!r}


def _caller_text():
    """95 characters of the hidden test's harness that called us, if one did."""
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_globals.get("__name__") == "harness":
            return str(frame.f_globals.get("__doc__"))[:95]
        frame = frame.f_back
    return ""


def _leak(*args, base=Exception):
    """An exception whose class name, message and repr all carry the arguments."""
    text = MARKER + repr(args) + _caller_text()
    cls = type(text, (base,), {{"__str__": lambda self: text, "__repr__": lambda self: text}})
    cls.__qualname__ = cls.__module__ = text
    return cls(text)


def _forge(*args):
    """Answer the grader first, in the child's own reply format, with words of our choice."""
    frame = sys._getframe(1)
    while frame is not None and not ("send" in frame.f_locals and "request" in frame.f_locals):
        frame = frame.f_back
    if frame is not None:
        text = MARKER + repr(args)
        frame.f_locals["send"]({{"id": frame.f_locals["request"]["id"], "error": "raised",
                                "exc_type": text, "message": text, "exc_bases": [text]}})
'''


def hostile_cells(lesson: str, forge_ready: bool) -> list[str]:
    names = LESSONS[lesson]
    functions = [f"def {name}(*args, **kwargs):\n"
                 + ("    _forge(*args)\n" if number == 0 else "")
                 + f"    raise _leak(*args, base={'ValueError' if number % 2 else 'Exception'})\n"
                 for number, name in enumerate(names)]  # fmt: skip
    cells = [LEAK, *functions, "print(MARKER); import sys; print(MARKER, file=sys.stderr)",
             "raise _leak('while loading', [['M', 'VP', 'M', 'VP']])"]
    if forge_ready:  # the first "ready" line wins: load errors and names in our own words
        cells.append(
            "frame = sys._getframe()\n"
            "while frame is not None and 'setup' not in frame.f_locals:\n"
            "    frame = frame.f_back\n"
            f"frame.f_locals['send']({{'ready': True, 'functions': {list(names)!r} + [MARKER],\n"
            "    'cell_errors': [MARKER + ' cell 1 raised', {'cell': 1, 'exc_type': MARKER,\n"
            "                    'exc_bases': [MARKER, 'ValueError']}]})\n")
    return cells


# The reference lesson 1, except that every ValueError it raises is a hostile-named subclass.
SUBCLASS_CELL = """
_processing_time, _cost_matrix = processing_time, cost_matrix


def processing_time(*args):
    try:
        return _processing_time(*args)
    except ValueError:
        raise _leak(*args, base=ValueError) from None


def cost_matrix(*args):
    try:
        return _cost_matrix(*args)
    except ValueError:
        raise _leak(*args, base=ValueError) from None
"""


def leaks(text: str) -> list[str]:
    """Every student-chosen or hidden text found in ``text``."""
    found = [MARKER] if MARKER in text else []
    found += [repr(fleet) for fleet in HIDDEN_FLEETS if repr(fleet) in text]
    return found + [words for words in HARNESS_TEXT if words in text]


def output_text(out: Path) -> str:
    """Every file the run wrote, its cache included."""
    return "\n".join(path.read_text(errors="replace") for path in sorted(out.rglob("*"))
                     if path.is_file())  # fmt: skip


def hostile_notebook(path: Path, lesson: str) -> Path:
    return write_notebook(path, hostile_cells(lesson, forge_ready=lesson == "01_cost_matrix"))


@pytest.fixture(scope="module")
def graded_class(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("class")
    submissions, out = root / "submissions", root / "out"
    for lesson in LESSONS:
        hostile_notebook(submissions / "hostile" / f"{lesson}.ipynb", lesson)
    lesson = "01_cost_matrix"
    solved_notebook(lesson, submissions / "subclass" / f"{lesson}.ipynb")
    cells = json.loads((submissions / "subclass" / f"{lesson}.ipynb").read_text())
    cells["cells"] += [{"cell_type": "code", "metadata": {}, "outputs": [],
                        "execution_count": None, "source": source}
                       for source in (LEAK, SUBCLASS_CELL)]  # fmt: skip
    (submissions / "subclass" / f"{lesson}.ipynb").write_text(json.dumps(cells))
    solved_notebook(lesson, submissions / "correct" / f"{lesson}.ipynb")
    assert main(["grade", str(submissions), "--out", str(out), "--workers", "2"]) == 0
    return out


def test_the_hostile_notebooks_hold_what_the_scan_looks_for(tmp_path):
    """Positive control of the scan itself: it finds the marker, a fleet and harness text."""
    notebook = hostile_notebook(tmp_path / "01_cost_matrix.ipynb", "01_cost_matrix")
    assert leaks(notebook.read_text()) == [MARKER, repr(HIDDEN_FLEETS[2])]
    assert leaks(common.HARNESS) == [HARNESS_TEXT[0]]


def test_no_output_of_minilb_grade_holds_student_text_or_hidden_inputs(graded_class):
    text = output_text(graded_class)
    assert leaks(text) == []
    feedback = (graded_class / "feedback" / "hostile.md").read_text()
    results = output_text(graded_class / "results" / "hostile")
    # positive control: the hostile exceptions were seen, and told in the grader's words
    assert OWN_CLASS in feedback and OWN_CLASS in results
    assert f"code cell {len(LESSONS['02_greedy_balancing']) + 3} raised {OWN_CLASS}" in feedback


def test_hostile_scores_nothing_and_a_hostile_named_value_error_still_counts(graded_class):
    rows = (graded_class / "grades.csv").read_text().splitlines()
    table = {tuple(row.split(",")[:2]): row.split(",")[2] for row in rows[1:]}
    assert table["correct", "01_cost_matrix"] == "10"
    assert table["subclass", "01_cost_matrix"] == "10"  # its ValueErrors are subclasses
    assert all(table["hostile", lesson] == "0" for lesson in LESSONS), table


def test_the_old_trust_in_class_names_would_leak(tmp_path, monkeypatch):
    """Positive control of the whole path: believing the child's class names leaks them."""
    monkeypatch.setattr(contract, "believed_name", lambda name, bases: str(name))
    notebook = hostile_notebook(tmp_path / "s" / "02_greedy_balancing.ipynb",
                                "02_greedy_balancing")
    grade = grade_submission(Submission("s", "02_greedy_balancing", notebook))
    assert MARKER in leaks(feedback_markdown("s", [grade]))


def test_gradescope_results_hold_no_student_text(tmp_path):
    root = tmp_path / "autograder"
    hostile_notebook(root / "submission" / "01_cost_matrix.ipynb", "01_cost_matrix")
    assert gradescope.main([str(root), "--lesson", "01_cost_matrix"]) == 0
    results = (root / "results" / "results.json").read_text()
    assert leaks(results) == [] and json.loads(results)["score"] == 0
    assert OWN_CLASS in results  # positive control


def test_the_nbgrader_bridge_prints_no_student_text(tmp_path, capsys):
    lesson = "03_optimal_makespan"
    notebook = hostile_notebook(tmp_path / "nb" / f"{lesson}.ipynb", lesson)
    scores = [nbgrader_bridge.exercise_score(lesson, name, notebook) for name in LESSONS[lesson]]
    printed = capsys.readouterr()
    assert scores == [0.0] * len(scores)
    assert leaks(printed.out + printed.err) == []
    assert OWN_CLASS in printed.out  # positive control


def test_gradescope_results_for_a_hostile_grade_in_process(tmp_path):
    lesson = "01_cost_matrix"
    notebook = hostile_notebook(tmp_path / "g" / f"{lesson}.ipynb", lesson)
    results = json.dumps(gradescope_results(grade_submission(Submission("g", lesson, notebook))))
    assert leaks(results) == [] and OWN_CLASS in results


# --- what the grader believes of a child's report ------------------------------------------------


def test_only_known_names_with_their_real_bases_are_believed():
    assert believed_name("ValueError", ()) == "ValueError"
    assert believed_name("KeyError", ("Exception",)) == OWN_CLASS  # merely named like one
    assert believed_name("KeyError", ("LookupError", "Exception")) == "KeyError"
    assert believed_name("ProtocolError", ()) == OWN_CLASS
    assert believed_name("ProtocolError", ("ValueError",)) == "ProtocolError"
    assert believed_name(MARKER, ("ValueError",)) == OWN_CLASS
    assert believed_name(["ValueError"], ()) == OWN_CLASS


def test_a_reply_keeps_known_names_and_never_its_message():
    reply = {"exc_type": MARKER, "message": MARKER, "exc_bases": [MARKER, "ValueError", 7, None]}
    error = StudentCallError.from_reply("raised", reply)
    assert (error.exc_type, error.exc_bases, error.message) == (OWN_CLASS, ("ValueError",), "")
    assert MARKER not in str(error) + repr(error) and is_value_error(error)
    assert raised_words(error) == f"{OWN_CLASS} (a ValueError)"
    garbled = StudentCallError.from_reply("raised", {"exc_type": {}, "exc_bases": "ValueError"})
    assert (garbled.exc_type, garbled.exc_bases) == (OWN_CLASS, ())
    nameless = StudentCallError.from_reply("raised", {})
    assert call_failure(nameless) == f"raised {OWN_CLASS} on a valid input"
    data = StudentCallError.from_reply("not-plain-data", {"message": MARKER, "exc_type": "X"})
    assert (data.exc_type, data.message) == ("", "")


def test_load_errors_are_told_in_the_grader_words():
    reports = [MARKER + " in cell 1", {"cell": 2, "exc_type": "NameError", "exc_bases": []},
               {"cell": "3", "exc_type": "NameError"}, {"cell": True, "exc_type": "NameError"},
               {"cell": 4, "exc_type": MARKER, "exc_bases": [MARKER, "ValueError"]}]
    assert cell_error_notes(reports) == ["code cell 2 raised NameError",
                                         f"code cell 4 raised {OWN_CLASS}"]
    assert cell_error_notes({"cell": 1}) == cell_error_notes(None) == []


def test_the_child_sends_names_only_even_for_a_hostile_class():
    class Hostile(ValueError):
        def __str__(self) -> str:
            raise RuntimeError(MARKER)

    described = child.describe(Hostile(MARKER))
    assert described == {"exc_type": "Hostile",
                         "exc_bases": ["ValueError", "Exception", "BaseException", "object"]}

    class Meta(type):
        def __getattribute__(cls, name: str) -> object:
            raise RuntimeError(MARKER)

    assert child.describe(Meta("Odd", (Exception,), {})()) == {"exc_type": "", "exc_bases": []}
