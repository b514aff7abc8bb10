"""Mutation testing of the hidden tests: ``python -m autograder.mutation [--out DIR]``.

Each mutant is the reference solution with one small change in one exercise function (a
comparison flipped, a number changed, ``max`` for ``min``, a tie-break key dropped...). The
autograder grades the mutant's lesson; a mutant is *killed* when it loses points. A good test
suite kills nearly all of them; the report lists the survivors with the reason each one lives.

Mutants are trusted code (the reference, slightly changed), so they run in this process through
``InProcessStudent``, with plain data crossing a JSON round trip exactly as over the sandbox's
pipe. Real grading never uses it: students' code only runs in the sandbox.
"""

import argparse
import ast
import copy
import inspect
import json
import random
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

from rich.console import Console
from rich.progress import track

from autograder.child import bind_harness
from autograder.contract import LESSONS, StudentCallError
from autograder.hidden.common import is_number
from autograder.hidden.lesson03 import optimum, simple_bound
from autograder.rubric import grade_lesson
from minilb import costs, optimal, protocol, scheduling
from minilb.solutions import BEGIN_SOLUTION, END_SOLUTION

EXERCISE_MODULES = (costs, scheduling, optimal, protocol)


LESSONS_BY_FUNCTION = {name: lesson for lesson, names in LESSONS.items() for name in names}


def _solution_lines(source: str) -> list[range]:
    """Line ranges between the nbgrader markers at module level (the solution helpers)."""
    lines = source.splitlines()
    starts = [n for n, line in enumerate(lines, 1) if line == BEGIN_SOLUTION]
    ends = [n for n, line in enumerate(lines, 1) if line == END_SOLUTION]
    return [range(start, end) for start, end in zip(starts, ends, strict=True)]


@cache
def module_source(module: ModuleType) -> str:
    """One snapshot per run, so every mutant and the reference agree even if a file changes."""
    return inspect.getsource(module)


def mutable_functions() -> dict[str, tuple[str, str]]:
    """name -> (lesson, source): the exercise functions and the solution helpers they use."""
    functions = {}
    for module in EXERCISE_MODULES:
        source = module_source(module)
        blocks = _solution_lines(source)
        tree = ast.parse(source)
        names = {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}
        lesson = next(LESSONS_BY_FUNCTION[n] for n in names if n in LESSONS_BY_FUNCTION)
        for name, node in names.items():
            if name in LESSONS_BY_FUNCTION or any(node.lineno in block for block in blocks):
                functions[name] = (lesson, ast.get_source_segment(source, node))
    return functions


class CallTimeout(Exception):
    pass


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    def expire(signum: int, frame: object) -> None:
        raise CallTimeout

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _from_wire(value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {"__bytes__"}:
        return value["__bytes__"].encode("latin-1")
    if isinstance(value, list):
        return [_from_wire(item) for item in value]
    return value


class InProcessStudent:
    """A ``Student`` whose functions are the reference, with some sources replaced.

    Like a notebook, every exercise function is defined in one shared namespace, so a replaced
    ``choose_server`` is the one ``greedy_assign`` calls.
    """

    def __init__(self, replacements: dict[str, str] | None = None, max_timeout: float = 60) -> None:
        self.namespace: dict[str, Any] = {}
        self.max_timeout = max_timeout
        for module in EXERCISE_MODULES:
            exec(compile(module_source(module), module.__name__, "exec"), self.namespace)
        for source in (replacements or {}).values():
            exec(compile(source, "<student>", "exec"), self.namespace)

    def has(self, function: str) -> bool:
        return callable(self.namespace.get(function))

    def call(
        self, function: str, *args: Any, timeout: float = 5.0, harness: str | None = None
    ) -> Any:
        if not self.has(function):
            raise StudentCallError("missing", message=function)
        plain_args = _from_wire(json.loads(json.dumps(args)))
        target = self.namespace[function]
        if harness is not None:  # the same binding the sandboxed child makes
            target = bind_harness(harness, target)
        try:
            with time_limit(min(timeout, self.max_timeout)):
                result = target(*plain_args)
        except CallTimeout:
            raise StudentCallError("timeout") from None
        except Exception as error:
            bases = tuple(cls.__name__ for cls in type(error).__mro__[1:])
            raise StudentCallError("raised", type(error).__name__, str(error), bases) from None
        try:
            return json.loads(json.dumps(result, allow_nan=False))
        except (TypeError, ValueError):
            raise StudentCallError("not-plain-data") from None


# --- mutants ----------------------------------------------------------------------------------

COMPARISONS = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt,
               ast.Eq: ast.NotEq, ast.NotEq: ast.Eq, ast.In: ast.NotIn, ast.NotIn: ast.In,
               ast.Is: ast.IsNot, ast.IsNot: ast.Is}  # fmt: skip
ARITHMETIC = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Add, ast.Div: ast.Mult,
              ast.FloorDiv: ast.Div, ast.Mod: ast.FloorDiv}  # fmt: skip
SWAPPED_CALLS = {"max": "min", "min": "max", "sorted": "list", "any": "all", "all": "any"}


def _is_none(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and node.value is None


def _mutations(node: ast.AST) -> Iterator[tuple[str, Any]]:
    """(description, change) for every way to mutate this one node; change() edits it."""
    if isinstance(node, ast.Compare):
        for position, op in enumerate(node.ops):
            if type(op) in COMPARISONS:
                new = COMPARISONS[type(op)]()
                yield f"{type(op).__name__} -> {type(new).__name__}", ("ops", position, new)
    elif isinstance(node, ast.BinOp) and type(node.op) in ARITHMETIC:
        new = ARITHMETIC[type(node.op)]()
        yield f"{type(node.op).__name__} -> {type(new).__name__}", ("op", None, new)
    elif isinstance(node, ast.BoolOp):
        new = ast.Or() if isinstance(node.op, ast.And) else ast.And()
        yield f"{type(node.op).__name__} -> {type(new).__name__}", ("op", None, new)
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        yield "drop `not`", ("replace", None, node.operand)
    elif isinstance(node, ast.Constant) and type(node.value) in (int, float):
        yield f"{node.value!r} -> {node.value + 1!r}", ("value", None, node.value + 1)
        if node.value != 0:
            yield f"{node.value!r} -> 0", ("value", None, 0 * node.value)
    elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        if node.func.id in SWAPPED_CALLS:
            yield f"{node.func.id} -> {SWAPPED_CALLS[node.func.id]}", ("call", None, node.func.id)
    elif isinstance(node, ast.Tuple) and isinstance(node.ctx, ast.Load) and len(node.elts) > 1:
        for position in range(len(node.elts)):
            yield f"drop tuple element {position + 1}", ("drop", position, None)
    elif isinstance(node, ast.Raise):
        yield "raise -> pass", ("replace", None, ast.Pass())
    elif isinstance(node, ast.Return) and node.value is not None and not _is_none(node.value):
        yield "return value -> None", ("replace", None, ast.Return(value=ast.Constant(None)))


def _apply(tree: ast.AST, target: int, change: tuple[str, Any, Any]) -> ast.AST:
    """A copy of ``tree`` with ``change`` applied to the ``target``-th node (walk order)."""
    tree = copy.deepcopy(tree)
    node = list(ast.walk(tree))[target]
    what, position, new = change
    if what == "ops":
        node.ops[position] = new  # type: ignore[attr-defined]
    elif what == "op":
        node.op = new  # type: ignore[attr-defined]
    elif what == "value":
        node.value = new  # type: ignore[attr-defined]
    elif what == "call":
        node.func.id = SWAPPED_CALLS[new]  # type: ignore[attr-defined]
    elif what == "drop":
        del node.elts[position]  # type: ignore[attr-defined]
    elif what == "replace":
        for parent in ast.walk(tree):
            for field_name, value in ast.iter_fields(parent):
                if value is node:
                    setattr(parent, field_name, new)
                elif isinstance(value, list) and any(item is node for item in value):
                    value[[id(item) for item in value].index(id(node))] = new
    return ast.fix_missing_locations(tree)


@dataclass(frozen=True)
class Mutant:
    function: str
    lesson: str
    line: int  # within the function's source
    description: str
    source: str


def _inert_nodes(tree: ast.AST) -> set[int]:
    """Docstrings, annotations and message texts: mutating them changes nothing graded."""
    inert: list[ast.AST] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef):
            if ast.get_docstring(node):
                inert.append(node.body[0])
            inert.extend(a.annotation for a in ast.walk(node.args) if isinstance(a, ast.arg))
            inert.append(node.returns)
        elif isinstance(node, ast.AnnAssign):
            inert.append(node.annotation)
        elif isinstance(node, ast.JoinedStr):  # the wording of error messages is not graded
            inert.append(node)
    return {id(n) for root in inert if root is not None for n in ast.walk(root)}


def mutants() -> list[Mutant]:
    """Every single-site mutant of every exercise function and solution helper."""
    found = []
    for function, (lesson, source) in mutable_functions().items():
        tree = ast.parse(source)
        skip = _inert_nodes(tree)
        for target, node in enumerate(ast.walk(tree)):
            if id(node) in skip or isinstance(node, ast.FunctionDef) and node is tree.body[0]:
                continue
            for description, change in _mutations(node):
                mutated = ast.unparse(_apply(tree, target, change))
                line = getattr(node, "lineno", 0)
                found.append(Mutant(function, lesson, line, description, mutated))
    return found


# --- grading the mutants ----------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    mutant: Mutant
    score: float
    max_score: float
    explanation: str = ""  # for survivors only

    @property
    def killed(self) -> bool:
        return self.score < self.max_score


def grade_mutant(mutant: Mutant, max_timeout: float = 2.0) -> Verdict:
    """Grade the mutant's lesson; a mutant that does not even load scores 0 (killed)."""
    try:
        student = InProcessStudent({mutant.function: mutant.source}, max_timeout)
    except Exception:
        return Verdict(mutant, 0.0, 10.0)
    results = grade_lesson(mutant.lesson, student)
    return Verdict(
        mutant, sum(r.score for r in results), sum(r.max_score for r in results)
    )


def _random_args(function: str, rng: random.Random) -> tuple[Any, ...]:
    """A random call of ``function``, sometimes invalid, for telling survivors apart."""
    fleet = rng.choice([["VP", "VP", "M"], ["M"], ["VP", "M"], ["M", "VP", "VP", "M"]])
    batch = [[rng.choice("VPM"), rng.randint(1, 12)] for _ in range(rng.randint(0, 8))]
    times = [rng.choice([0, 1, 2.5, 4, 7, 10]) for _ in fleet]
    calls = {
        "processing_time": lambda: (rng.choice(["VP", "M", "X"]), rng.choice("VPMQ"),
                                    rng.randint(-1, 20)),
        "cost_matrix": lambda: (rng.choice([fleet, [], ["VP", "Z"]]),),
        "makespan": lambda: (times[: rng.randint(0, len(times))],),
        "choose_server": lambda: (times, [rng.choice("VPM"), rng.randint(1, 9)], fleet,
                                  rng.choice([0, 0, 1.5, 5, 20])),
        "greedy_assign": lambda: (batch, fleet),
        "finish_times": lambda: (batch, [rng.randrange(len(fleet)) for _ in batch], fleet),
        "lower_bound": lambda: (batch, fleet),
        "optimal_makespan": lambda: (batch, fleet),
        "parse_request": lambda: ({"__bytes__": "".join(
            rng.choice("VPMv0123456789:/ \xff") for _ in range(rng.choice([1, 2, 2, 2, 3])))},),
    }  # fmt: skip
    return calls[function]()


def _observable(student: InProcessStudent, function: str, args: tuple[Any, ...]) -> Any:
    """What a hidden test can see of one call (any valid optimal assignment is as good)."""
    try:
        answer = student.call(function, *args)
    except StudentCallError as error:
        return ("error", error.kind, "ValueError" in (error.exc_type, *error.exc_bases))
    if function == "lower_bound":  # any valid bound will do
        requests, fleet = args
        return is_number(answer) and simple_bound(*args) <= answer <= optimum(*args)
    if function == "optimal_makespan" and isinstance(answer, list) and len(answer) == 2:
        value, assignment = answer
        try:
            return value, max(scheduling.finish_times(args[0], assignment, args[1]), default=0)
        except (TypeError, ValueError):
            return value, "invalid assignment"
    return answer


def explain_survivor(mutant: Mutant, trials: int = 300) -> str:
    """Probe the survivor on random calls: equivalent, or a gap in the hidden tests?"""
    reference = InProcessStudent()
    student = InProcessStudent({mutant.function: mutant.source}, 2.0)
    rng = random.Random(7)
    for _ in range(trials):
        for function in LESSONS[mutant.lesson]:
            args = _random_args(function, rng)
            if _observable(student, function, args) != _observable(reference, function, args):
                return f"NOT equivalent: `{function}` answers differently on a random call"
    return (
        f"equivalent as far as observable: agrees with the reference on {trials} random calls "
        "of each function of the lesson (a change that only affects speed, or a redundant check)"
    )


# --- the report -------------------------------------------------------------------------------


def _rate(verdicts: list[Verdict]) -> str:
    """Killed among all mutants, and among those that are not (observably) equivalent."""
    killed = sum(v.killed for v in verdicts)
    distinct = sum(v.killed or v.explanation.startswith("NOT") for v in verdicts)
    return (
        f"{killed}/{len(verdicts)} killed ({100 * killed / max(len(verdicts), 1):.1f}%), "
        f"{killed}/{distinct} of the non-equivalent ({100 * killed / max(distinct, 1):.1f}%)"
    )


def write_report(verdicts: list[Verdict], seconds: float, path: Path) -> str:
    """Write the Markdown report; return the one-paragraph summary it starts with."""
    exercises = [v for v in verdicts if v.mutant.function in LESSONS_BY_FUNCTION]
    helpers = [v for v in verdicts if v.mutant.function not in LESSONS_BY_FUNCTION]
    survivors = [v for v in verdicts if not v.killed]
    gaps = [v for v in survivors if v.explanation.startswith("NOT")]
    summary = (
        f"exercise functions: {_rate(exercises)}\nsolution helpers: {_rate(helpers)}\n"
        f"all: {_rate(verdicts)}\nsurvivors a random probe tells apart from the reference: "
        f"{len(gaps)} ({seconds:.0f} s)"
    )
    lines = [
        "# Mutation report",
        "",
        "Each mutant is the reference solution with one change in one exercise function or in a",
        "helper of the reference solution (the exact solver's internals); the autograder grades",
        "the mutant's lesson, and a mutant is killed when it loses points. A survivor is",
        "probed with random calls: if it always answers like the reference (as far as a",
        "hidden test can see) it counts as equivalent, else as a gap in the hidden tests.",
        "",
        "```",
        summary,
        "```",
        "",
        "| function | lesson | mutants | killed |",
        "|---|---|---|---|",
    ]
    for function in dict.fromkeys(v.mutant.function for v in verdicts):
        mine = [v for v in verdicts if v.mutant.function == function]
        killed = sum(v.killed for v in mine)
        lines.append(f"| `{function}` | {mine[0].mutant.lesson} | {len(mine)} | {killed} |")
    lines += ["", "## Survivors", ""]
    lines += [
        f"- `{v.mutant.function}` line {v.mutant.line}: {v.mutant.description}. {v.explanation}"
        for v in survivors
    ]
    lines += ["", "## Why survivors survive", "", SURVIVOR_NOTES]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return summary


SURVIVOR_NOTES = """\
- Minimising the resulting makespan and then the request's own finish time picks the same
  server as minimising the own finish time alone (the earliest-finishing server also gives the
  smallest makespan), so mutants of `choose_server` that drop or blunt the makespan part (the
  `others` list, the first key element) are equivalent.
- Shifting every initial finish time by the same amount (`greedy_assign`'s start at 0.0) never
  changes a greedy decision.
- Checks that a later line repeats (`zip(..., strict=True)` raises on mismatched lengths; the
  wire only carries bytes) and numbers inside error messages change no graded behaviour.
- The exact solver's helpers (`_fit_within`, `_relaxed_*`, `_split_fits`, `_longest_first`)
  mostly prune the search or tighten the bound: a weaker pruning rule or a worse starting
  schedule changes the speed, not the answer, and a weaker lower bound is still a valid bound
  (the graded contract is: at most the optimum, at least the simple bound).
- A survivor marked NOT equivalent differs from the reference on some random call that the
  hidden tests do not contain; each one is a candidate for a new hidden case.
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m autograder.mutation", description="Grade mutants of the reference."
    )
    parser.add_argument("--out", type=Path, default=Path(".mutation"), help="report directory")
    parser.add_argument("--limit", type=int, default=0, help="grade only the first N mutants")
    args = parser.parse_args(argv)
    if args.limit < 0:
        parser.error("--limit must be 0 (all mutants) or more")
    started = time.monotonic()
    candidates = mutants()[: args.limit or None]
    verdicts = []
    for mutant in track(candidates, description="grading mutants", console=Console(stderr=True)):
        verdict = grade_mutant(mutant)
        if not verdict.killed:
            verdict = Verdict(mutant, verdict.score, verdict.max_score, explain_survivor(mutant))
        verdicts.append(verdict)
    report = args.out / "mutation_report.md"
    summary = write_report(verdicts, time.monotonic() - started, report)
    print(f"{summary}\nreport: {report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
