"""Policies, and how to name one: ``greedy``, ``round-robin``, ``fastest-kind``,
``module:function`` or a notebook that defines ``choose_server``; and the code of a student's
notebook for the live system (``--student``: lesson 4's socket and fork functions).

A policy has the signature of ``scheduling.choose_server``:
``policy(finish_times, request, fleet, now) -> server index``. It runs in the balancer's parent
process, so a policy object may keep state between calls (round-robin remembers whose turn it
is).
"""

import contextlib
import copy
import importlib
import io
import linecache
from collections.abc import Mapping, Sequence
from pathlib import Path

from minilb.costs import FACTORS, Request
from minilb.exercises import ExerciseNotDone
from minilb.notebook_cells import code_cells
from minilb.timeline import Policy


class RoundRobin:
    """Servers take turns, whatever the request and however busy they are."""

    def __init__(self) -> None:
        self.turn = 0

    def __call__(
        self,
        finish_times: Sequence[float],
        request: Request,
        fleet: Sequence[str],
        now: float = 0.0,
    ) -> int:
        server = self.turn % len(fleet)
        self.turn += 1
        return server


def fastest_kind(
    finish_times: Sequence[float], request: Request, fleet: Sequence[str], now: float = 0.0
) -> int:
    """Among the servers fastest for this request type, the one that frees up first."""
    best_factor = min(FACTORS[kind][request[0]] for kind in fleet)
    fastest = [i for i, kind in enumerate(fleet) if FACTORS[kind][request[0]] == best_factor]
    return min(fastest, key=lambda i: (max(now, finish_times[i]), i))


def reference_policy() -> Policy:
    """The greedy rule of ``minilb.scheduling`` (a stub in the student handout)."""
    from minilb.scheduling import choose_server

    return choose_server


def greedy_policy() -> tuple[Policy, str]:
    """The greedy rule and where it came from: the package's ``choose_server`` if written
    there, else the student's own lesson-2 notebook in this folder (``minilb.earlier``)."""
    from minilb.earlier import find_exercise

    found = find_exercise("choose_server")
    if not found.done:
        hint = found.function.not_done.hint  # type: ignore[attr-defined]
        raise ExerciseNotDone("choose_server", f"{hint}, or pass --policy round-robin")
    return found.function, f"choose_server from {found.source}"


def check_policy(policy: Policy, fleet: Sequence[str]) -> None:
    """Fail early and clearly if ``policy`` is still a stub (or crashes on a simple request)."""
    probe = copy.deepcopy(policy)  # a stateful policy (round-robin) must not lose its turn
    try:
        server = probe([0.0] * len(fleet), Request("V", 1), tuple(fleet), 0.0)
    except ExerciseNotDone:
        raise  # it needs an earlier exercise: the error names it and the notebook to finish
    except NotImplementedError:
        raise ValueError(
            "the policy is not implemented yet (NotImplementedError): implement choose_server "
            "in your notebook, or pass --policy round-robin"
        ) from None
    except Exception as error:
        raise ValueError(f"the policy failed on a simple request: {error!r}") from None
    if not isinstance(server, int) or not 0 <= server < len(fleet):
        raise ValueError(f"the policy returned {server!r}, not a server index 0..{len(fleet) - 1}")


def load_policy(spec: str) -> Policy:
    """``greedy``, ``round-robin``, ``fastest-kind``, ``module:function`` or ``file.ipynb``."""
    return load_policy_from(spec)[0]


def load_policy_from(spec: str) -> tuple[Policy, str]:
    """The policy ``spec`` names, and a few words on where it came from."""
    if spec == "greedy":
        return greedy_policy()
    if spec == "round-robin":
        return RoundRobin(), "round-robin"
    if spec == "fastest-kind":
        return fastest_kind, "fastest-kind"
    if spec.endswith(".ipynb"):
        return notebook_policy(spec), f"choose_server from your {spec}"
    module_name, sep, function_name = spec.partition(":")
    if not sep:
        raise ValueError(
            f"unknown policy {spec!r}: use greedy, round-robin, fastest-kind, "
            "module:function or a notebook path"
        )

    try:
        return getattr(importlib.import_module(module_name), function_name), spec
    except (ImportError, AttributeError) as error:
        raise ValueError(f"cannot load policy {spec!r}: {error}") from None


def notebook_policy(path: str) -> Policy:
    """``choose_server`` defined by a notebook's code cells (demo and test cells skipped)."""
    policy = notebook_namespace(path).get("choose_server")
    if not callable(policy):
        raise ValueError(f"{path} defines no function choose_server")
    return policy


# Code from a student's notebook -----------------------------------------------------------

STUDENT_NETWORK_FUNCTIONS = ("recv_exactly", "spawn_relay_child", "reap_children", "serve_forking")


_loaded: dict[tuple, dict] = {}  # notebook and its folder's mtimes -> its names (run once)
_loading: set[Path] = set()  # notebooks being run now: a notebook that needs itself stops


def notebook_namespace(path: str) -> dict:
    """The names a notebook's code cells define (demo and visible-test cells are skipped).

    The cells run in the notebook's own folder, as Jupyter runs them, so that a cell that takes
    an earlier lesson's exercise from its notebook (``minilb.earlier``) finds it beside this
    one. A cell that needs an exercise not written yet is skipped: what it would define is
    missing, and whoever needs it says so later.
    """
    notebook = Path(path).resolve()
    if not notebook.is_file():
        raise ValueError(f"notebook {path!r} not found")
    # Its neighbours count too: this notebook may take an earlier lesson's exercise from them.
    key = (notebook, *(each.stat().st_mtime_ns for each in sorted(notebook.parent.glob("*.ipynb"))))
    if key in _loaded:
        return _loaded[key]
    if notebook in _loading:
        raise ValueError(f"{notebook.name} needs its own functions to run (a circular import)")
    namespace: dict = {"__name__": "__notebook__"}
    _loading.add(notebook)
    try:
        with contextlib.chdir(notebook.parent):
            for number, source in enumerate(code_cells(notebook), start=1):
                _run_cell(path, number, source, namespace)
    finally:
        _loading.discard(notebook)
    _loaded[key] = namespace
    return namespace


def _run_cell(path: str, number: int, source: str, namespace: dict) -> None:
    # Registered like a file, so that tracebacks and inspect.getsource (which tells a stub
    # from a finished exercise) can show the cell's lines.
    filename = f"{path} (code cell {number})"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # the notebook's prints are noise here
            exec(compile(source, filename, "exec"), namespace)
    except (NotImplementedError, ExerciseNotDone):
        pass  # a cell that calls a stub: what it would define is missing, say so later
    except Exception as error:
        raise ValueError(f"a code cell of {path} failed: {error!r}") from None


def use_student_functions(namespace: Mapping[str, object]) -> list[str]:
    """Make the live system use lesson 4's functions that ``namespace`` defines; their names.

    ``recv_exactly``, ``spawn_relay_child``, ``reap_children`` and ``serve_forking`` replace
    those of ``minilb.network``; ``parse_request`` replaces that of ``minilb.protocol``. The
    balancer and the relay look them up in those modules when they call them, so every process
    forked from this one uses the student's versions too. A notebook calls it with
    ``use_student_functions(globals())``.
    """
    from minilb import network, protocol

    installed = []
    for name in (*STUDENT_NETWORK_FUNCTIONS, "parse_request"):
        function = namespace.get(name)
        if callable(function):
            setattr(network, name, function)  # network imports parse_request too: replace both
            if name == "parse_request":
                protocol.parse_request = function
            installed.append(name)
    return installed


def use_student_notebook(path: str) -> list[str]:
    """``use_student_functions`` with the functions a notebook defines (``--student``)."""
    return use_student_functions(notebook_namespace(path))
