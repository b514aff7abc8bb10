"""Without bubblewrap: grading refuses, or with --unsafe-no-sandbox runs student code in the
root-only jail, where the kit's hidden tests and reference solution cannot be read on any path.
"""

import pytest
from notebook_fixtures import blank_notebook, write_notebook

from autograder import sandbox
from autograder.sandbox import Limits, SandboxedStudent
from minilb.cli import main

KIT = sandbox.Path(sandbox.__file__).resolve().parent.parent
LESSON = "01_cost_matrix"
SECRETS = [*sorted((KIT / "autograder" / "hidden").glob("*.py")),
           *sorted((KIT / "reference_solution" / "minilb").glob("*.py"))]
STEAL = """
import glob, os
PATHS = {paths!r}
MARKERS = {markers!r}
PATTERNS = [{kit!r} + '/autograder/**/*.py', {kit!r} + '/reference_solution/**/*.py',
            '/proc/1/root' + {kit!r} + '/autograder/hidden/*.py', '/proc/self/cwd/*.py',
            '/tmp/*/*.py', '/tmp/*/*/*/minilb/*.py', '/opt/lesson/**/*.py', '/*/*/hidden/*.py',
            '/*/*/reference_solution/minilb/*.py']
def _read(path):
    try:
        with open(path) as handle:
            return handle.read()
    except Exception:
        return None
def stolen():
    found = {{}}
    candidates = list(PATHS) + [os.path.relpath(path) for path in PATHS]
    for pattern in PATTERNS:
        try:
            candidates += glob.glob(pattern, recursive=True)[:200]
        except Exception:
            pass
    for path in candidates:
        text = _read(path)
        if text and any(marker in text for marker in MARKERS):
            found[path] = text
    return found
STOLEN = stolen()
print(STOLEN)
def processing_time(kind, request_type, length):
    return '\\n'.join(STOLEN.values()) or 'nothing'
def cost_matrix(fleet=None):
    raise ValueError('\\n'.join(STOLEN.values()) or 'nothing')
"""
# Text found only in the hidden tests and in the lesson's reference solution.
MARKERS = ["EXERCISES = [", "def grade_exercise", "length * FACTORS[kind][request_type]"]
FAST = Limits(startup_seconds=10, call_seconds=2, notebook_seconds=60)


@pytest.fixture
def no_bubblewrap(monkeypatch):
    monkeypatch.setattr(sandbox, "bubblewrap_works", lambda: False)


def steal_source() -> str:
    return STEAL.format(paths=[str(path) for path in SECRETS], kit=str(KIT), markers=MARKERS)


def test_grading_refuses_without_bubblewrap_unless_asked(tmp_path, capsys, no_bubblewrap):
    blank_notebook(LESSON, tmp_path / "class" / "ann" / f"{LESSON}.ipynb")
    assert main(["grade", str(tmp_path / "class"), "--out", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err
    assert "bubblewrap" in error and "--unsafe-no-sandbox" in error
    assert not (tmp_path / "out" / "grades.csv").exists()


def test_the_jail_shows_no_hidden_source_on_any_path(no_bubblewrap):
    assert sandbox.require_isolation(allow_unsafe=True) == "jail"
    outside: dict = {}
    exec(steal_source(), outside)  # the same code, unsandboxed, finds every kind of secret
    assert all(any(marker in text for text in outside["STOLEN"].values()) for marker in MARKERS)
    with SandboxedStudent(steal_source(), LESSON, FAST) as student:
        assert student.startup_note == "" and student.cell_errors == []
        assert student.call("stolen") == {}
        assert student.call("processing_time", "M", "V", 2) == "nothing"


def test_unsafe_grading_leaks_nothing_into_the_results(tmp_path, no_bubblewrap):
    submissions, out = tmp_path / "class", tmp_path / "out"
    blank = blank_notebook(LESSON, submissions / "ann" / f"{LESSON}.ipynb")
    cells = [cell for cell in __import__("nbformat").read(blank, as_version=4).cells
             if cell.cell_type == "code"]
    write_notebook(submissions / "mallory" / f"{LESSON}.ipynb",
                   [cell.source for cell in cells] + [steal_source()])
    assert main(["grade", str(submissions), "--out", str(out), "--unsafe-no-sandbox",
                 "--workers", "1"]) == 0
    written = "\n".join(path.read_text() for path in out.rglob("*") if path.is_file())
    assert "mallory,01_cost_matrix,0," in written
    assert not any(marker in written for marker in MARKERS)
