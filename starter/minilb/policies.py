"""Policies, and how to name one: ``greedy``, ``round-robin``, ``fastest-kind``,
``module:function`` or a notebook that defines ``choose_server``.

A policy has the signature of ``scheduling.choose_server``:
``policy(finish_times, request, fleet, now) -> server index``. It runs in the balancer's parent
process, so a policy object may keep state between calls (round-robin remembers whose turn it
is).
"""

import contextlib
import copy
import importlib
import io
import os
from collections.abc import Sequence
from pathlib import Path

from minilb.costs import FACTORS, Request
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


def check_policy(policy: Policy, fleet: Sequence[str]) -> None:
    """Fail early and clearly if ``policy`` is still a stub (or crashes on a simple request)."""
    probe = copy.deepcopy(policy)  # a stateful policy (round-robin) must not lose its turn
    try:
        server = probe([0.0] * len(fleet), Request("V", 1), tuple(fleet), 0.0)
    except NotImplementedError:
        raise ValueError(
            "the policy is not implemented yet (NotImplementedError): implement choose_server "
            "in minilb/scheduling.py or your notebook, or pass --policy round-robin"
        ) from None
    except Exception as error:
        raise ValueError(f"the policy failed on a simple request: {error!r}") from None
    if not isinstance(server, int) or not 0 <= server < len(fleet):
        raise ValueError(f"the policy returned {server!r}, not a server index 0..{len(fleet) - 1}")


def load_policy(spec: str) -> Policy:
    """``greedy``, ``round-robin``, ``fastest-kind``, ``module:function`` or ``file.ipynb``."""
    if spec == "greedy":
        return reference_policy()
    if spec == "round-robin":
        return RoundRobin()
    if spec == "fastest-kind":
        return fastest_kind
    if spec.endswith(".ipynb"):
        return notebook_policy(spec)
    module_name, sep, function_name = spec.partition(":")
    if not sep:
        raise ValueError(
            f"unknown policy {spec!r}: use greedy, round-robin, fastest-kind, "
            "module:function or a notebook path"
        )

    try:
        return getattr(importlib.import_module(module_name), function_name)
    except (ImportError, AttributeError) as error:
        raise ValueError(f"cannot load policy {spec!r}: {error}") from None


def notebook_policy(path: str) -> Policy:
    """``choose_server`` defined by a notebook's code cells (demo and test cells skipped)."""
    if not os.path.exists(path):
        raise ValueError(f"notebook {path!r} not found")
    namespace: dict = {"__name__": "__notebook__"}
    for source in code_cells(Path(path)):
        try:
            with contextlib.redirect_stdout(io.StringIO()):  # the notebook's prints are noise here
                exec(compile(source, path, "exec"), namespace)
        except NotImplementedError:
            continue
        except Exception as error:
            raise ValueError(f"a code cell of {path} failed: {error!r}") from None
    policy = namespace.get("choose_server")
    if not callable(policy):
        raise ValueError(f"{path} defines no function choose_server")
    return policy
