"""Schedules: which server serves each request, when it starts and when it finishes.

This is framework code: the balancer, the demo and the plots use it, and it never needs a
student's solution. A *policy* is any function with the signature of
``scheduling.choose_server``: ``policy(finish_times, request, fleet, now) -> server index``.
"""

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from minilb.costs import DEFAULT_FLEET, FACTORS, Request, check_fleet, check_request

Policy = Callable[[list[float], Request, tuple[str, ...], float], int]


def service_time(kind: str, request: Request) -> int:
    """How long a server of ``kind`` works on a (valid) request, in time units."""
    return request.length * FACTORS[kind][request.type]


@dataclass(frozen=True)
class Placement:
    """One request on one server: ``start`` and ``finish`` in time units."""

    request: Request
    server: int
    start: float
    finish: float


@dataclass
class Schedule:
    """Each server's expected finish time, and every placement made so far.

    Servers serve their queue first in, first out, so a request placed on server ``i`` at time
    ``now`` starts at ``max(now, finish_times[i])``. A schedule that runs for ever (the live
    balancer's) sets ``keep_placements=False``: deciding needs only the finish times, and a list
    of every placement would grow with every request (its timeline comes from the access log).
    """

    fleet: tuple[str, ...] = DEFAULT_FLEET
    finish_times: list[float] = field(default_factory=list)
    placements: list[Placement] = field(default_factory=list)
    keep_placements: bool = True

    def __post_init__(self) -> None:
        self.fleet = check_fleet(self.fleet)
        if not self.finish_times:
            self.finish_times = [0.0] * len(self.fleet)

    def place(self, request: tuple[str, int], server: int, now: float = 0.0) -> Placement:
        """Queue ``request`` on ``server`` at time ``now`` and return where it landed."""
        request = check_request(request)
        if not 0 <= server < len(self.fleet):
            raise ValueError(f"server index {server!r} is not in range 0..{len(self.fleet) - 1}")
        start = max(now, self.finish_times[server])
        finish = start + service_time(self.fleet[server], request)
        self.finish_times[server] = finish
        placement = Placement(request, server, start, finish)
        if self.keep_placements:
            self.placements.append(placement)
        return placement

    @property
    def makespan(self) -> float:
        return max(self.finish_times, default=0.0)

    @property
    def assignment(self) -> list[int]:
        return [p.server for p in self.placements]

    @classmethod
    def from_assignment(
        cls,
        requests: Iterable[tuple[str, int]],
        assignment: Iterable[int],
        fleet: Sequence[str] = DEFAULT_FLEET,
    ) -> "Schedule":
        """The batch schedule (everything arrives at time 0) of a given assignment."""
        schedule = cls(tuple(fleet))
        requests, assignment = list(requests), list(assignment)
        if len(requests) != len(assignment):
            raise ValueError(f"{len(requests)} requests but {len(assignment)} assignments")
        for request, server in zip(requests, assignment, strict=True):
            schedule.place(request, server)
        return schedule

    @classmethod
    def from_placements(
        cls, placements: Iterable[Placement], fleet: Sequence[str] = DEFAULT_FLEET
    ) -> "Schedule":
        """A schedule of placements made elsewhere (a balancer's log, say), taken as they are."""
        schedule = cls(tuple(fleet))
        for placement in placements:
            schedule.placements.append(placement)
            server = placement.server
            schedule.finish_times[server] = max(schedule.finish_times[server], placement.finish)
        return schedule

    @classmethod
    def simulate(
        cls,
        requests: Iterable[tuple[str, int]],
        policy: Policy,
        fleet: Sequence[str] = DEFAULT_FLEET,
        arrivals: Iterable[float] | None = None,
    ) -> "Schedule":
        """Let ``policy`` place each request in order (at its arrival time, default 0)."""
        schedule = cls(tuple(fleet))
        requests = [check_request(r) for r in requests]
        times = list(arrivals) if arrivals is not None else [0.0] * len(requests)
        for request, now in zip(requests, times, strict=True):
            server = policy(list(schedule.finish_times), request, schedule.fleet, now)
            schedule.place(request, server, now)
        return schedule
