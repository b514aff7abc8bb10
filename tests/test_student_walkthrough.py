"""Play the student, with the handout alone: what `minilb release` builds must stand on its own.

The handout is built afresh into a temporary folder (never the committed `starter/`, which may
be stale), copied to a second folder as a student would receive it, and used with the kit's
Python but with `import minilb` resolving to the handout's own package (checked). First the
blank handout: the commands a student can see either work or say in one line which exercise
they need. Then the handout is walked lesson by lesson, as a student works: the notebooks of the
lessons done so far hold the reference solutions, the later ones are blank, and the package is
never touched (a student never edits `minilb/*.py`: later lessons take earlier exercises from
the student's own notebooks). At each point every command that the handout's README or a
lesson has shown so far must work. Finally every notebook is finished: `minilb check` passes on
each, each runs headless, and lesson 4's code serves real traffic through `minilb relay` and
`minilb demo --student`.
"""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from minilb.exercises import LESSONS
from minilb.solutions import stub_solutions

KIT = Path(__file__).resolve().parents[1]
REFERENCE = KIT / "reference_solution" / "minilb"
LESSON_4 = "04_sockets_and_forking.ipynb"
INSTRUCTOR_COMMANDS = ("release", "grade", "gradescope-package")
# Documents and folders of the kit that the handout does not ship.
MISSING_DOCUMENTS = re.compile(r"DESIGN|CONVENTIONS|docs/|reference_solution")

pytestmark = pytest.mark.slow


def run(handout: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """``python ARGS`` as the student runs it: from the handout, whose ``minilb`` comes first."""
    env = {**os.environ, "PYTHONPATH": str(handout), "COLUMNS": "100"}
    return subprocess.run(
        [sys.executable, *args], cwd=handout, env=env, capture_output=True, text=True,
        timeout=timeout,
    )  # fmt: skip


def minilb(handout: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return run(handout, "-m", "minilb.cli", *args, timeout=timeout)


def assert_no_traceback(result: subprocess.CompletedProcess, what: str) -> None:
    output = result.stdout + result.stderr
    assert "Traceback" not in output, f"{what} showed a traceback:\n{output[-3000:]}"


@pytest.fixture(scope="module")
def blank(tmp_path_factory) -> Path:
    """A fresh handout, copied to where a student would keep it."""
    built = tmp_path_factory.mktemp("release") / "handout"
    result = subprocess.run(
        [sys.executable, "-m", "minilb.cli", "release", "--out", str(built)],
        cwd=KIT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    student = tmp_path_factory.mktemp("student") / "handout"
    shutil.copytree(built, student)
    imported = run(student, "-c", "import minilb; print(minilb.__file__)")
    assert imported.stdout.strip() == str(student / "minilb" / "__init__.py"), imported
    return student


@pytest.fixture(scope="module")
def filled(blank: Path, tmp_path_factory) -> Path:
    """The handout with every notebook's exercises written: the student's finished work (the
    package stays as handed out)."""
    return done_up_to(blank, tmp_path_factory.mktemp("finished"), len(LESSONS))


def done_up_to(blank: Path, where: Path, lessons_done: int) -> Path:
    """A copy of the handout in which the first ``lessons_done`` notebooks are finished."""
    student = where / "handout"
    shutil.copytree(blank, student)
    for lesson in list(LESSONS)[:lessons_done]:
        fill_notebook(student / f"{lesson}.ipynb", KIT / "lessons" / lesson / f"{lesson}.ipynb")
    return student


def fill_package(package: Path) -> None:
    """Put the reference bodies where the handout's package has its stubs."""
    for path in sorted(package.rglob("*.py")):
        reference = REFERENCE / path.relative_to(package)
        assert reference.is_file(), f"the handout ships {path.name}, which the kit does not have"
        source = reference.read_text(encoding="utf-8")
        # The handout's file must be exactly the reference with its solution regions stubbed:
        # then writing the reference fills each stub region with its body, and nothing else.
        assert path.read_text(encoding="utf-8") == stub_solutions(source, path.name), path.name
        path.write_text(source, encoding="utf-8")


def fill_notebook(notebook: Path, lesson: Path) -> None:
    """Replace each solution cell of the handout notebook by the lesson's, by grade_id."""
    solutions = {
        cell.metadata["nbgrader"]["grade_id"]: cell.source
        for cell in nbformat.read(lesson, as_version=4).cells
        if cell.metadata.get("nbgrader", {}).get("solution")
    }
    handout = nbformat.read(notebook, as_version=4)
    filled = 0
    for cell in handout.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if cell.metadata.get("nbgrader", {}).get("solution"):
            assert "NotImplementedError" in cell.source, f"{notebook.name}: {grade_id} not stubbed"
            cell.source = solutions[grade_id]
            filled += 1
    assert filled == len(solutions), f"{notebook.name}: {filled} of {len(solutions)} filled"
    nbformat.write(handout, notebook)


# --- the blank handout -------------------------------------------------------------------------


def test_the_handout_mentions_no_document_it_does_not_ship(blank):
    offenders = []
    for path in sorted(blank.rglob("*")):
        if not path.is_file() or path.suffix not in (".py", ".md", ".ipynb", ".toml", ".txt"):
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if MISSING_DOCUMENTS.search(line):
                offenders.append(f"{path.relative_to(blank)}:{number}: {line.strip()[:100]}")
    assert not offenders, "the handout refers to files it lacks:\n" + "\n".join(offenders)


def test_the_students_help_lists_no_instructor_command(blank):
    result = minilb(blank, "--help")
    assert result.returncode == 0, result.stderr
    listed = re.findall(r"^    (\S+)", result.stdout, re.MULTILINE)
    assert "check" in listed and "schedule" in listed, result.stdout
    assert not set(INSTRUCTOR_COMMANDS) & set(listed), result.stdout
    refused = minilb(blank, "grade", "anything")
    assert refused.returncode == 2 and "invalid choice" in refused.stderr


@pytest.mark.parametrize(
    "args",
    [
        ("schedule", "M1V2P3"),
        ("demo", "--unit", "0.01", "--no-live"),
        ("demo", "--unit", "0.01", "--no-live", "--student", LESSON_4),
    ],
    ids=["schedule", "demo", "demo --student"],
)
def test_commands_that_need_an_exercise_say_which_in_one_line(blank, tmp_path, args):
    if args[0] == "demo":
        args = (*args, "--out", str(tmp_path))
    result = minilb(blank, *args)
    assert_no_traceback(result, f"minilb {' '.join(args)} on the blank handout")
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "exercise not done yet: " in lines[0], result.stderr


def test_schedule_after_lesson_2_shows_greedy_and_names_what_the_optimum_needs(blank, tmp_path):
    # Lessons 1 and 2 released into the package, lesson 3 not yet.
    partial = tmp_path / "handout"
    shutil.copytree(blank, partial)
    keep = (*LESSONS["01_cost_matrix"], *LESSONS["02_greedy_balancing"])
    for path in sorted((partial / "minilb").glob("*.py")):
        source = (REFERENCE / path.name).read_text(encoding="utf-8")
        path.write_text(stub_solutions(source, path.name, keep=keep), encoding="utf-8")
    result = minilb(partial, "schedule", "M1V2P3")
    assert_no_traceback(result, "minilb schedule after lesson 2")
    assert result.returncode == 0, result.stdout + result.stderr
    text = " ".join(result.stdout.split())  # the table may wrap long lines
    assert "greedy makespan: 3" in text, result.stdout
    assert "optimal makespan: not available (exercise not done yet: lower_bound" in text


def test_the_handouts_package_is_the_reference_with_its_exercises_stubbed(blank, tmp_path):
    package = tmp_path / "minilb"
    shutil.copytree(blank / "minilb", package)
    fill_package(package)


def test_minilb_check_on_a_blank_notebook_says_not_implemented(blank):
    result = minilb(blank, "check", LESSON_4)
    assert_no_traceback(result, "minilb check on the blank lesson 4")
    assert result.returncode == 1
    assert "recv_exactly: … not implemented yet" in result.stdout, result.stdout


# --- the finished handout ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "notebook",
    ["01_cost_matrix", "02_greedy_balancing", "03_optimal_makespan", "04_sockets_and_forking"],
)
def test_minilb_check_passes_on_every_finished_notebook(filled, notebook):
    result = minilb(filled, "check", f"{notebook}.ipynb")
    assert_no_traceback(result, f"minilb check {notebook}")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "other cell failed" not in result.stdout
    assert re.search(r"(\d+) of \1 exercises pass", result.stdout), result.stdout


RUN_NOTEBOOK = """
import json, sys
import nbformat
from nbclient import NotebookClient

path = sys.argv[1]
notebook = nbformat.read(path, as_version=4)
probe = nbformat.v4.new_code_cell("import minilb; print('MINILB', minilb.__file__)")
notebook.cells.insert(0, probe)
NotebookClient(notebook, timeout=300, kernel_name="python3", allow_errors=True,
               resources={"metadata": {"path": "."}}).execute()
errors = [f"cell {i}: {o.ename}: {o.evalue}" for i, cell in enumerate(notebook.cells)
          if cell.cell_type == "code" for o in cell.outputs if o.output_type == "error"]
text = "".join(o.get("text", "") for cell in notebook.cells if cell.cell_type == "code"
               for o in cell.outputs)
print(json.dumps({"errors": errors, "minilb": probe.outputs[0]["text"], "text": text}))
"""


@pytest.mark.parametrize(
    "notebook",
    ["01_cost_matrix", "02_greedy_balancing", "03_optimal_makespan", "04_sockets_and_forking"],
)
def test_every_finished_notebook_runs_headless_demos_included(filled, notebook):
    result = run(filled, "-c", RUN_NOTEBOOK, f"{notebook}.ipynb", timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["minilb"].split()[1] == str(filled / "minilb" / "__init__.py"), report["minilb"]
    assert not report["errors"], f"{notebook}: " + "\n".join(report["errors"])
    assert "Traceback" not in report["text"], report["text"][-3000:]


def test_the_students_relay_serves_a_kit_server(filled):
    env = {**os.environ, "PYTHONPATH": str(filled)}
    command = [sys.executable, "-m", "minilb.cli"]
    server = subprocess.Popen(
        [*command, "server", "VP", "--port", "0", "--unit", "0.01"],
        cwd=filled, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    relay = None
    try:
        server_address = listening_address(server)
        relay = subprocess.Popen(
            [*command, "relay", "--port", "0", "--to", server_address, "--connections", "3",
             "--timeout", "10", "--student", LESSON_4],
            cwd=filled, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        relay_address = listening_address(relay)
        client = minilb(filled, "client", "--balancer", relay_address, "V3P1M2", timeout=60)
        assert client.returncode == 0, client.stdout + client.stderr
        assert client.stdout.count(" ok ") == 3, client.stdout
        out, err = relay.communicate(timeout=60)  # it stops after its 3 connections
        assert relay.returncode == 0, out + err
        assert "Traceback" not in out + err, out + err
    finally:
        for process in (relay, server):
            if process is not None and process.poll() is None:
                process.terminate()
                process.communicate(timeout=30)


def listening_address(process: subprocess.Popen) -> str:
    """The HOST:PORT of the process's ``listening on HOST:PORT`` line (its first line)."""
    line = process.stdout.readline()
    match = re.search(r"listening on (\S+:\d+)", line)
    if match is None:
        process.terminate()
        out, err = process.communicate(timeout=30)
        raise AssertionError(f"no 'listening on' line: {line!r}{out}{err}")
    return match.group(1)


def test_the_live_demo_runs_on_the_students_code(filled, tmp_path):
    result = minilb(
        filled, "demo", "--unit", "0.01", "--no-live", "--student", LESSON_4,
        "--out", str(tmp_path), timeout=300,
    )  # fmt: skip
    assert_no_traceback(result, "minilb demo --student")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


# --- the walk, lesson by lesson ----------------------------------------------------------------

# What the handout's README and the lessons show, from the lesson after which it must work: the
# command, and what its output must say. `minilb check` of an earlier lesson is not run again at
# every later point: each runs once at its own point, and all four on the finished handout above.
UNIT = ("--unit", "0.01", "--no-live")
SHOWN = [
    (1, ("check", "01_cost_matrix.ipynb"), r"2 of 2 exercises pass"),
    (2, ("check", "02_greedy_balancing.ipynb"), r"4 of 4 exercises pass"),
    (2, ("demo", *UNIT, "--policy", "02_greedy_balancing.ipynb"),
     r"core: the kit's threaded relay.*\npolicy: choose_server from your 02_greedy_balancing"),
    (2, ("schedule", "M1V2P3M2V2P3"), r"greedy makespan: +\d"),
    (3, ("check", "03_optimal_makespan.ipynb"), r"2 of 2 exercises pass"),
    (3, ("schedule", "M1V2P3M2V2P3"), r"optimal makespan: \d+\nratio greedy / optimal"),
    (4, ("check", LESSON_4), r"5 of 5 exercises pass"),
    (4, ("demo", *UNIT, "--student", LESSON_4),
     r"core: your lesson 4 functions from 04_sockets_and_forking.ipynb.*\n"
     r"policy: choose_server from your 02_greedy_balancing.ipynb"),
]  # fmt: skip
WALK = [
    (point, shown, args, expected)
    for point in range(1, len(LESSONS) + 1)
    for shown, args, expected in SHOWN
    if shown == point or (shown < point and args[0] != "check")
]


@pytest.fixture(scope="module")
def walk(blank, tmp_path_factory):
    """``walk(n)``: the handout with the first n lessons' notebooks done (built once each)."""
    built: dict[int, Path] = {}

    def at(lessons_done: int) -> Path:
        if lessons_done not in built:
            where = tmp_path_factory.mktemp(f"after-lesson-{lessons_done}")
            built[lessons_done] = done_up_to(blank, where, lessons_done)
        return built[lessons_done]

    return at


@pytest.mark.parametrize(
    "point, shown, args, expected", WALK,
    ids=[f"after-{p}:{' '.join(a[:1] + a[-1:])}" for p, _, a, _ in WALK],
)  # fmt: skip
def test_every_command_shown_so_far_works(walk, tmp_path, point, shown, args, expected):
    student = walk(point)
    if args[0] == "demo":
        args = (*args, "--out", str(tmp_path))
    result = minilb(student, *args)
    what = f"minilb {' '.join(args)} after lesson {point} (shown after lesson {shown})"
    assert_no_traceback(result, what)
    assert result.returncode == 0, f"{what}:\n{result.stdout[-3000:]}{result.stderr[-3000:]}"
    assert re.search(expected, result.stdout), f"{what}:\n{result.stdout[-3000:]}"


def test_a_later_lesson_names_the_earlier_exercise_it_waits_for(blank, tmp_path):
    # Lesson 2 written, lesson 1 not: the student's own functions are never "not implemented".
    student = done_up_to(blank, tmp_path, 0)
    lesson = "02_greedy_balancing"
    fill_notebook(student / f"{lesson}.ipynb", KIT / "lessons" / lesson / f"{lesson}.ipynb")
    result = minilb(student, "check", f"{lesson}.ipynb")
    assert_no_traceback(result, "minilb check 02 with lesson 1 blank")
    assert result.returncode == 1
    out = " ".join(result.stdout.split())
    assert "not implemented" not in out, result.stdout
    assert (
        "choose_server: … waits for an earlier lesson: exercise not done yet: processing_time "
        "(lesson 01_cost_matrix): finish it in 01_cost_matrix.ipynb"
    ) in out, result.stdout
    demo = minilb(student, "demo", *UNIT, "--policy", f"{lesson}.ipynb", "--out", str(tmp_path))
    assert_no_traceback(demo, "minilb demo --policy 02 with lesson 1 blank")
    assert demo.returncode == 2 and demo.stdout == "", demo.stdout[-2000:] + demo.stderr
    assert demo.stderr == (
        "minilb demo: error: exercise not done yet: processing_time (lesson 01_cost_matrix): "
        "finish it in 01_cost_matrix.ipynb\n"
    )
