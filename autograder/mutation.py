"""Mutation testing of the hidden tests: ``python -m autograder.mutation`` (``make mutation``).

Two independent measures, one report (``docs/MUTATION.md``): the kit's own AST mutator below,
and mutmut (``autograder.mutation_mutmut``). Survivors argued to be equivalent are listed, with
their argument, in ``autograder/equivalent_mutants.toml``; every other survivor is a gap in the
hidden tests. The rest of this docstring is about the AST mutator.

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
import importlib
import inspect
import json
import multiprocessing
import random
import signal
import sys
import time
import tomllib
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

from rich.console import Console
from rich.progress import track

from autograder import mutation_mutmut
from autograder.child import bind_harness, message_checks
from autograder.contract import LESSONS, StudentCallError
from autograder.handout import exercise_modules
from autograder.hidden.common import is_number
from autograder.hidden.lesson03 import optimum, simple_bound
from autograder.rubric import grade_lesson
from minilb import scheduling
from minilb.solutions import BEGIN_SOLUTION, END_SOLUTION

# Every reference module that defines an exercise, in course order (from the exercise API).
EXERCISE_MODULES = tuple(importlib.import_module(name) for name in dict.fromkeys(
    exercise_modules()[f] for fs in LESSONS.values() for f in fs if f in exercise_modules()))
KIT = mutation_mutmut.KIT
EQUIVALENT_MUTANTS = Path(__file__).with_name("equivalent_mutants.toml")


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
        self.cpu_seconds_of_last_call: float | None = None
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
        started = time.process_time()  # budgets are CPU time, as the sandbox measures them
        try:
            with time_limit(min(timeout, self.max_timeout)):
                result = target(*plain_args)
        except CallTimeout:
            raise StudentCallError("timeout") from None
        except Exception as error:
            bases = tuple(cls.__name__ for cls in type(error).__mro__[1:])
            checks = message_checks(error, plain_args)
            raise StudentCallError("raised", type(error).__name__, str(error), bases,
                                   checks["message_nonempty"],
                                   tuple(checks["message_mentions"])) from None
        finally:
            self.cpu_seconds_of_last_call = time.process_time() - started
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
    key: str = ""  # a stable id: function, the line's text, the change (see ``mutants``)


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
        lines = source.splitlines()
        for target, node in enumerate(ast.walk(tree)):
            if id(node) in skip or isinstance(node, ast.FunctionDef) and node is tree.body[0]:
                continue
            for description, change in _mutations(node):
                mutated = ast.unparse(_apply(tree, target, change))
                line = getattr(node, "lineno", 0)
                key = f"{function}: {lines[line - 1].strip()}: {description}"
                keys = sum(m.key.startswith(key) for m in found)  # the same change twice
                key += f" #{keys + 1}" if keys else ""
                found.append(Mutant(function, lesson, line, description, mutated, key))
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


# Lessons whose exercises fork and use sockets: a mutant may end or fork the process it runs in
# (``os._exit`` in the wrong branch), so they are graded in the sandbox, as a notebook.
SANDBOXED_LESSONS = {"04_sockets_and_forking"}


def module_with(mutant: Mutant) -> dict[str, str]:
    """Module name -> source of every exercise module, the mutant's function replaced."""
    sources = {}
    for module in EXERCISE_MODULES:
        source = module_source(module)
        for node in ast.parse(source).body:
            if isinstance(node, ast.FunctionDef) and node.name == mutant.function:
                lines = source.splitlines()
                lines[node.lineno - 1 : node.end_lineno] = mutant.source.splitlines()
                source = "\n".join(lines) + "\n"
        sources[module.__name__] = source
    return sources


def grade_mutant(mutant: Mutant, max_timeout: float = 2.0) -> Verdict:
    """Grade the mutant's lesson; a mutant that does not even load scores 0 (killed)."""
    if mutant.lesson in SANDBOXED_LESSONS:
        grade = mutation_mutmut.grade_as_notebook(mutant.lesson, module_with(mutant))
        return Verdict(mutant, grade.score if grade.status == "graded" else 0.0, grade.max_score)
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


PROBED = {"processing_time", "cost_matrix", "makespan", "choose_server", "greedy_assign",
          "finish_times", "lower_bound", "optimal_makespan", "parse_request"}  # fmt: skip


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
    """Probe the survivor on random calls: a hint whether it is equivalent or a gap in the
    hidden tests (the verdict is the argued table, ``equivalent_mutants.toml``)."""
    reference = InProcessStudent()
    student = InProcessStudent({mutant.function: mutant.source}, 2.0)
    rng = random.Random(7)
    probed = [function for function in LESSONS[mutant.lesson] if function in PROBED]
    if not probed:
        return "not probed: no random calls for this lesson's functions"
    for _ in range(trials):
        for function in probed:
            args = _random_args(function, rng)
            if _observable(student, function, args) != _observable(reference, function, args):
                return f"probe: `{function}` answers differently on a random call"
    return f"probe: agrees with the reference on {trials} random calls of each function"


# --- running both tools -----------------------------------------------------------------------


def _parallel(function: Any, items: list, workers: int, description: str) -> list:
    """``[function(item) ...]`` on ``workers`` forked processes, with a progress bar."""
    context = multiprocessing.get_context("fork")  # the workers inherit the imported grader
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        results = pool.map(function, items, chunksize=2)
        console = Console(stderr=True)
        return list(track(results, total=len(items), description=description, console=console))


def _grade_and_probe(mutant: Mutant) -> Verdict:
    verdict = grade_mutant(mutant)
    if verdict.killed:
        return verdict
    return Verdict(mutant, verdict.score, verdict.max_score, explain_survivor(mutant))


@dataclass(frozen=True)
class Outcome:
    """One mutant of either tool, as the report shows it."""

    tool: str  # "ast" or "mutmut"
    key: str  # stable across runs: the key of ``equivalent_mutants.toml``
    function: str  # what was mutated: an exercise function or a solution helper
    lesson: str
    killed: bool
    change: str  # the AST mutator's description, or mutmut's changed lines
    probe: str = ""  # survivors only: what random calls say


def run_ast(limit: int = 0, workers: int = 2) -> list[Outcome]:
    candidates = mutants()[: limit or None]
    verdicts = _parallel(_grade_and_probe, candidates, workers, "AST mutants")
    return [Outcome("ast", v.mutant.key, v.mutant.function, v.mutant.lesson, v.killed,
                    v.mutant.description, v.explanation) for v in verdicts]


def _as_mutant(result: mutation_mutmut.MutmutResult) -> Mutant | None:
    """A mutmut survivor as an AST-tool ``Mutant`` (its function's mutated source), so the
    same random probe can look at it; None when it is not a one-line change of a function."""
    changed = result.diff.splitlines()
    functions = mutable_functions()
    if result.owner not in functions or len(changed) != 2:
        return None
    lesson, source = functions[result.owner]
    old, new = changed[0][1:], changed[1][1:]
    if source.count(old) != 1:
        return None
    return Mutant(result.owner, lesson, result.line, "mutmut", source.replace(old, new))


def _probe_mutmut(result: mutation_mutmut.MutmutResult) -> str:
    if result.killed:
        return ""
    mutant = _as_mutant(result)
    return explain_survivor(mutant) if mutant else "not probed: not a one-line change of a function"


def run_mutmut(files: list[Path] | None = None, workers: int = 2) -> list[Outcome]:
    results = mutation_mutmut.run(files, workers, KIT)
    probes = _parallel(_probe_mutmut, results, workers, "probing mutmut survivors")
    return [Outcome("mutmut", r.key, f"{r.module}.{r.owner}",
                    ", ".join(mutation_mutmut.lessons_of(Path(f"{r.module}.py"))),
                    r.killed, r.diff, probe) for r, probe in zip(results, probes, strict=True)]


# --- the report -------------------------------------------------------------------------------


def equivalent_arguments(path: Path = EQUIVALENT_MUTANTS) -> dict[str, dict[str, str]]:
    """tool -> {stable mutant id: why that survivor is equivalent}, maintained by hand."""
    return tomllib.loads(path.read_text()) if path.exists() else {}


def _percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"


def summarise(tool: str, outcomes: list[Outcome], arguments: dict[str, str],
              seconds: float) -> str:
    """Killed / total, the argued equivalents, and the kill rate on the rest; then the same
    per lesson, for the exercise functions and the solution helpers apart."""
    killed = sum(o.killed for o in outcomes)
    equivalent = sum(not o.killed and o.key in arguments for o in outcomes)
    rest = len(outcomes) - equivalent
    lines = [f"{tool}: {killed}/{len(outcomes)} killed ({_percent(killed, len(outcomes))}); "
             f"{equivalent} survivors argued equivalent; {killed}/{rest} of the non-equivalent "
             f"killed ({_percent(killed, rest)}); {rest - killed} gaps; {seconds:.0f} s"]
    groups: dict[str, list[Outcome]] = {}
    for o in outcomes:
        kind = "exercises" if o.function.split(".")[-1] in LESSONS_BY_FUNCTION else "helpers"
        groups.setdefault(f"{o.lesson} {kind}", []).append(o)
    for group, mine in sorted(groups.items()):
        hit = sum(o.killed for o in mine)
        rest = sum(o.killed or o.key not in arguments for o in mine)
        lines.append(f"  {group}: {hit}/{rest} of the non-equivalent killed "
                     f"({_percent(hit, rest)}), of {len(mine)} mutants")
    return "\n".join(lines)


def _section(tool: str, outcomes: list[Outcome], arguments: dict[str, str],
             summary: str) -> list[str]:
    survivors = [o for o in outcomes if not o.killed]
    gaps = [o for o in survivors if o.key not in arguments]
    equivalent = [o for o in survivors if o.key in arguments]
    lines = [f"## {TOOL_TITLES[tool]}", "", "```", summary, "```", "",
             "| function | lesson | mutants | killed | argued equivalent | gaps |",
             "|---|---|---|---|---|---|"]
    for function in dict.fromkeys(o.function for o in outcomes):
        mine = [o for o in outcomes if o.function == function]
        counts = [sum(o.killed for o in mine), sum(o in equivalent for o in mine),
                  sum(o in gaps for o in mine)]
        lines.append(f"| `{function}` | {mine[0].lesson} | {len(mine)} | "
                     + " | ".join(map(str, counts)) + " |")
    lines += ["", f"### Gaps: survivors not argued equivalent ({len(gaps)})", ""]
    for o in gaps:
        lines += [f"- `{o.key}` ({o.probe})"]
        if tool == "mutmut":
            lines += ["  ```diff", *[f"  {line}" for line in o.change.splitlines()], "  ```"]
    lines += ["", f"### Survivors argued equivalent ({len(equivalent)})", ""]
    lines += [f"- `{o.key}`: {arguments[o.key]}" for o in equivalent]
    keys = {o.key for o in survivors}
    stale = [key for key in arguments if key not in keys]
    if stale:
        lines += ["", "### Arguments that match no survivor now (killed, or the code moved)",
                  ""] + [f"- `{key}`" for key in stale]
    return lines + [""]


TOOL_TITLES = {"ast": "The kit's AST mutator", "mutmut": "mutmut"}
HEADER = """# Mutation report

Generated by `make mutation` (`python -m autograder.mutation`); do not edit by hand.

Two independent tools make mutants of the reference solution's exercise functions and of the
helpers inside its solution regions (never docstrings, framework code, or the wording of error
messages, which is not graded). The autograder grades each mutant's lesson; a mutant is
**killed** when it loses points. The AST mutator grades in-process; mutmut's mutants go through
the real grader: the mutated module is a notebook cell, graded in the sandbox.

A survivor is **equivalent** when `autograder/equivalent_mutants.toml` argues that no correct
grader could tell it from the reference (it only changes speed, or a later line repeats the
check it weakens...); every other survivor is a **gap** in the hidden tests. The random probe
beside each gap is a hint: random calls that tell the mutant apart from the reference make
a ready-made new hidden case.
"""


def write_report(path: Path, tools: dict[str, tuple[list[Outcome], float]],
                 total_seconds: float) -> str:
    """Write the Markdown report; return its summary (one line per tool)."""
    table = equivalent_arguments()
    summaries = {tool: summarise(tool, outcomes, table.get(tool, {}), seconds)
                 for tool, (outcomes, seconds) in tools.items()}
    summary = "\n".join([*summaries.values(), f"total: {total_seconds:.0f} s"])
    lines = [HEADER, "```", summary, "```", ""]
    for tool, (outcomes, _) in tools.items():
        lines += _section(tool, outcomes, table.get(tool, {}), summaries[tool])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m autograder.mutation",
        description="Grade mutants of the reference with two mutation tools; write the report.")
    parser.add_argument("--report", type=Path, default=KIT / "docs" / "MUTATION.md")
    parser.add_argument("--tools", nargs="+", choices=TOOL_TITLES, default=list(TOOL_TITLES))
    parser.add_argument("--limit", type=int, default=0,
                        help="AST mutator: grade only the first N mutants (0: all)")
    parser.add_argument("--modules", nargs="+", type=Path, default=None,
                        help="mutmut: only these files (default: every exercise module)")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    if args.limit < 0 or args.workers < 1:
        parser.error("--limit must be 0 or more and --workers at least 1")
    started = time.monotonic()
    tools = {}
    for tool in args.tools:
        began = time.monotonic()
        outcomes = (run_ast(args.limit, args.workers) if tool == "ast"
                    else run_mutmut(args.modules, args.workers))
        tools[tool] = (outcomes, time.monotonic() - began)
    summary = write_report(args.report, tools, time.monotonic() - started)
    print(f"{summary}\nreport: {args.report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
