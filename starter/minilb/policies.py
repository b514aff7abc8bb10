"""Policies to compare against greedy. Each has the signature of ``scheduling.choose_server``.

A policy runs in the balancer's parent process, so a policy object may keep state between
calls (round-robin remembers whose turn it is).
"""

from collections.abc import Sequence

from minilb.costs import FACTORS, Request


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
