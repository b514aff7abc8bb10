"""The second mutation measure: mutmut's mutants of the reference, graded by the real grader.

``autograder.mutation`` grades the kit's own AST mutants in-process; this module lets an
independent, well-kept tool (mutmut 2.x) pick the mutants, and grades each one exactly as a
student's notebook is graded: the mutated module's source becomes a notebook cell, and
``autograder.grade.grade_submission`` runs it in the sandbox against the rubric. mutmut's runner
command is ``python -m autograder.mutation_mutmut grade FILE...``, which exits non-zero when a
lesson scores below its maximum: a mutant is killed when it loses points.

mutmut rewrites the files it mutates, so it only ever runs on private copies of the kit in a
temporary directory, one per worker (two workers share the mutants module by module). In each
copy every line outside a solution region gets mutmut's ``# pragma: no mutate`` (framework code
and docstrings are not exercises), and so does every ``raise`` statement inside one: it only
holds the error message, whose wording is not graded (the AST tool skips messages too).
"""

import ast
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import tokenize
import xml.etree.ElementTree as ElementTree
from collections import Counter
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from autograder.contract import LESSONS
from autograder.grade import LessonGrade, Submission, grade_submission
from autograder.handout import exercise_modules
from autograder.sandbox import Limits
from minilb.solutions import BEGIN_SOLUTION, END_SOLUTION

KIT = Path(__file__).resolve().parent.parent
PACKAGE = Path("reference_solution") / "minilb"  # relative to the kit, and to each copy
NO_MUTATE = "  # pragma: no mutate"
# mutmut's own timeout must never cut a grading short: the grader's limits decide (a mutant
# that hangs loses its calls' points), so each runner gets the grader's whole time budget.
RUNNER_SECONDS = Limits().notebook_seconds + 30

Line = tuple[Path, int]  # a file (relative to the kit) and a line number (1-based)


def exercise_files() -> list[Path]:
    """The reference modules that define exercises (paths relative to the kit), course order.

    Taken from the exercise API (``minilb.exercises.LESSONS``), so a new lesson module such as
    ``network.py`` is mutated as soon as it defines its exercises.
    """
    modules = exercise_modules()
    names = [modules[f] for functions in LESSONS.values() for f in functions if f in modules]
    return [PACKAGE / f"{name.split('.')[1]}.py" for name in dict.fromkeys(names)]


def lessons_of(file: Path) -> list[str]:
    """The lessons that grade an exercise defined in ``file``."""
    module = f"minilb.{Path(file).stem}"
    modules = exercise_modules()
    return [lesson for lesson, functions in LESSONS.items()
            if any(modules.get(f) == module for f in functions)]


# --- the private copy -------------------------------------------------------------------------


def _string_continuation_lines(source: str) -> set[int]:
    """Lines (1-based) that end inside a multi-line string: a comment there would be text."""
    inside = set()
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.STRING and token.end[0] > token.start[0]:
            inside.update(range(token.start[0], token.end[0]))
    return inside


def _raise_lines(source: str) -> set[int]:
    return {line for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Raise)
            for line in range(node.lineno, node.end_lineno + 1)}  # type: ignore[operator]


def mark_no_mutate(source: str, only: Collection[int] | None = None) -> str:
    """``source`` with mutmut's pragma on each line outside a solution region and on each
    ``raise`` statement inside one (and, given ``only``, on every line not in it); the code
    itself (its AST) is unchanged."""
    skip_text = _string_continuation_lines(source)
    raises = _raise_lines(source)
    lines, inside = source.splitlines(), False
    for number, line in enumerate(lines, start=1):
        marker = line.strip()
        inside = (inside or marker == BEGIN_SOLUTION) and marker != END_SOLUTION
        code = marker and not marker.startswith("#")  # never the markers: they must stay exact
        excluded = not inside or number in raises or only is not None and number not in only
        if excluded and code and number not in skip_text:
            lines[number - 1] = line + NO_MUTATE
    marked = "\n".join(lines) + "\n"
    assert ast.dump(ast.parse(marked)) == ast.dump(ast.parse(source)), "pragma changed code"
    return marked


def make_copy(root: Path, kit: Path = KIT, lines: Collection[Line] | None = None) -> Path:
    """A private copy of the reference package, ready for mutmut to mutate, in ``root``;
    given ``lines``, mutmut may mutate only those.

    Only the notebook cells come from the copy: the grader (hidden tests, their reference
    oracles, the sandbox's lesson package) runs from the kit itself, untouched, as in real
    grading.
    """
    shutil.copytree(kit / PACKAGE, root / PACKAGE,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for file in exercise_files():
        path = root / file
        only = None if lines is None else {n for f, n in lines if f == file}
        path.write_text(mark_no_mutate(path.read_text(), only))
    (root / "mutmut_config.py").write_text(
        "from autograder.mutation_mutmut import pre_mutation  # noqa: F401\n"
    )
    (root / "tmp").mkdir()
    root.chmod(0o755)  # the sandbox may read the lesson packages as an unprivileged user
    return root


def _environment(copy: Path, kit: Path) -> dict[str, str]:
    """The kit's grader and reference package (never the copy's); scratch files in the copy."""
    path = [str(kit), str(kit / "reference_solution")]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(path), "TMPDIR": str(copy / "tmp")}


# --- the runner: grade a (mutated) module through the real grader -----------------------------


def runner_command(files: Iterable[Path | str]) -> str:
    return " ".join([sys.executable, "-m", "autograder.mutation_mutmut", "grade",
                     *map(str, files)])


def pre_mutation(context: object) -> None:
    """mutmut's hook (``mutmut_config.py`` in the copy): grade only the mutated file's lessons."""
    context.config.test_command = runner_command([context.filename])  # type: ignore[attr-defined]


def notebook(cells: Iterable[str]) -> dict:
    """A minimal notebook of code cells, written as plain JSON: nbformat's schema validation
    would cost every runner (one per mutant) about as much as the grading itself."""
    code = [{"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [],
             "source": cell} for cell in cells]
    return {"cells": code, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}


def grade_as_notebook(lesson: str, sources: dict[str, str]) -> LessonGrade:
    """Grade ``lesson`` through the real grader, the notebook being the source of each module
    that defines its exercises (``sources``: module name -> source)."""
    # Later modules first: ``network`` imports ``parse_request`` from the lesson's package,
    # where it is a stub, so the module defining it must come after.
    modules = [exercise_modules()[f] for f in LESSONS[lesson] if f in exercise_modules()]
    cells = [sources[module] for module in reversed(dict.fromkeys(modules))]
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / f"{lesson}.ipynb"
        path.write_text(json.dumps(notebook(cells)))
        return grade_submission(Submission("mutant", lesson, path))


def grade(files: Sequence[Path]) -> int:
    """Grade, as a student's notebook, every lesson with an exercise in ``files``; 1 if any
    lesson loses points, else 0. Runs in a copy (its current directory), which holds the
    (mutated) module files; the grader itself is imported from the kit."""
    sources = {f"minilb.{path.stem}": path.read_text() for path in PACKAGE.glob("*.py")}
    all_full = True
    for lesson in dict.fromkeys(lesson for file in files for lesson in lessons_of(file)):
        result = grade_as_notebook(lesson, sources)
        print(f"{lesson}: {result.score:g}/{result.max_score:g} ({result.status})")
        all_full &= result.status == "graded" and result.score >= result.max_score
    return 0 if all_full else 1


# --- running mutmut ---------------------------------------------------------------------------


def count_mutants(copy: Path, files: Iterable[Path]) -> Counter[Line]:
    """How many mutants mutmut makes on each line of ``files`` in ``copy`` (its enumeration)."""
    from mutmut import Context, list_mutations  # imported late: mutmut reads the cwd on import

    return Counter((file, mutation.line_number + 1) for file in files
                   for mutation in list_mutations(Context(filename=str(copy / file))))


def share_out(counts: Counter[Line], workers: int) -> list[set[Line]]:
    """Lines split between ``workers`` so that each gets about as many mutants: one module
    (``optimal``) holds most of them, so whole files would not balance."""
    shares: list[set[Line]] = [set() for _ in range(workers)]
    loads = [0] * workers
    for line, count in counts.most_common():
        lightest = loads.index(min(loads))
        shares[lightest].add(line)
        loads[lightest] += count
    return [share for share in shares if share]


def start_mutmut(copy: Path, files: Sequence[Path], kit: Path) -> subprocess.Popen:
    command = [sys.executable, "-m", "mutmut", "run", "--paths-to-mutate",
               ",".join(map(str, files)), "--runner", runner_command(files),
               "--tests-dir", "tmp", "--test-time-base", str(RUNNER_SECONDS),
               "--no-progress", "--simple-output"]
    log = (copy / "mutmut.log").open("w")
    return subprocess.Popen(command, cwd=copy, env=_environment(copy, kit), stdout=log,
                            stderr=subprocess.STDOUT)


@dataclass(frozen=True)
class MutmutResult:
    module: str  # "scheduling"
    owner: str  # the top-level function (or class.method, or constant) the line belongs to
    line: int
    status: str  # killed, survived, timeout
    diff: str  # the changed lines, "- old" / "+ new" (empty for killed mutants)

    @property
    def key(self) -> str:
        """A stable id: where, and the line before and after (line numbers shift too often)."""
        old = " / ".join(d[1:].strip() for d in self.diff.splitlines() if d.startswith("-"))
        new = " / ".join(d[1:].strip() for d in self.diff.splitlines() if d.startswith("+"))
        return f"{self.module}.{self.owner}: {old} => {new}"

    @property
    def killed(self) -> bool:
        return self.status == "killed"


def owner_of(source: str, line: int) -> str:
    """The name of the top-level definition (``Class.method`` for methods) holding ``line``."""
    for node in ast.parse(source).body:
        if node.lineno <= line <= node.end_lineno:  # type: ignore[operator]
            if isinstance(node, ast.ClassDef):
                for item in node.body:
                    if item.lineno <= line <= item.end_lineno and hasattr(item, "name"):  # type: ignore[operator]
                        return f"{node.name}.{item.name}"
            if hasattr(node, "name"):
                return node.name  # type: ignore[no-any-return]
            targets = [t.id for t in ast.walk(node) if isinstance(t, ast.Name)]
            return targets[0] if targets else f"line {line}"
    return f"line {line}"


def _changed_lines(diff: str) -> str:
    kept = [line for line in diff.splitlines() if line[:1] in "-+"
            and not line.startswith(("---", "+++"))]
    return "\n".join(line.replace(NO_MUTATE, "").rstrip() for line in kept)


def collect(copy: Path, kit: Path) -> list[MutmutResult]:
    """Every mutant's verdict, from mutmut's JUnit XML report of the run in ``copy``."""
    xml = subprocess.run([sys.executable, "-m", "mutmut", "junitxml"], cwd=copy,
                         env=_environment(copy, kit), capture_output=True, text=True,
                         check=True)
    results = []
    for case in ElementTree.fromstring(xml.stdout).iter("testcase"):
        file, line = Path(case.get("file", "")), int(case.get("line", "0"))
        failure, error = case.find("failure"), case.find("error")
        verdict = failure if failure is not None else error
        status = "killed" if verdict is None else verdict.get("message", "survived")
        status = {"bad_survived": "survived", "bad_timeout": "timeout"}.get(status, status)
        diff = _changed_lines(verdict.text or "") if verdict is not None else ""
        source = (copy / file).read_text()
        results.append(MutmutResult(file.stem, owner_of(source, line), line, status, diff))
    return results


def run(files: Sequence[Path] | None = None, workers: int = 2,
        kit: Path = KIT) -> list[MutmutResult]:
    """Run mutmut on ``files`` (default: every exercise module) in ``workers`` private copies,
    in parallel, and return every mutant's verdict."""
    files = list(files or exercise_files())
    with tempfile.TemporaryDirectory(prefix="minilb-mutmut-") as scratch:
        counts = count_mutants(make_copy(Path(scratch) / "count", kit), files)
        shares = share_out(counts, workers)
        copies = [make_copy(Path(scratch) / f"worker{n}", kit, share)
                  for n, share in enumerate(shares)]
        processes = [start_mutmut(copy, sorted({file for file, _ in share}), kit)
                     for copy, share in zip(copies, shares, strict=True)]
        for copy, process in zip(copies, processes, strict=True):
            if process.wait() & 1:  # mutmut's bit 1: a fatal error (the others report mutants)
                log = (copy / "mutmut.log").read_text()[-3000:]
                raise RuntimeError(f"mutmut failed in {copy}:\n{log}")
        return [result for copy in copies for result in collect(copy, kit)]


def main(argv: list[str] | None = None) -> int:
    """``grade FILE...``: the runner mutmut calls (exit 1 when a lesson loses points)."""
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] != "grade":
        print("usage: python -m autograder.mutation_mutmut grade FILE...", file=sys.stderr)
        return 2
    return grade([Path(file) for file in args[1:]])


if __name__ == "__main__":
    sys.exit(main())
