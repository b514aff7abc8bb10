"""minilb.optimal against OR-Tools CP-SAT and HiGHS, side by side on the same batches.

For each family of batches every solver runs single-threaded on the same instances, one batch
after another with the solvers taking turns (so that a load spike hits all of them alike), and
every proven value is checked to agree (exit 1 if not). Per family the table shows median times
and, per anchor, the median and the worst ratio (their time / ours). A solve that hits the
anchor's time limit counts as the limit, so its ratio is a lower bound (marked +).
Targets: faster than both anchors on the median batch of every family, and on its worst batch
too (issue 18); at least 10x faster than CP-SAT on the random batches of 100+ requests; 500
requests within 0.2 s.
"""

import random
import statistics
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from independent_solvers import solve_cp_sat, solve_highs  # noqa: E402

from minilb.costs import DEFAULT_FLEET, REQUEST_TYPES  # noqa: E402
from minilb.optimal import optimal_makespan  # noqa: E402

TIME_LIMIT = 60.0  # seconds per anchor solve; one that hits it is counted as a timeout
BUDGET_500 = 0.2  # seconds for 500 requests
ANCHORS = ("CP-SAT", "HiGHS")


def random_lengths(size, longest, types=REQUEST_TYPES):
    return lambda rng: [(rng.choice(types), rng.randint(1, longest)) for _ in range(size)]


def near_equal(size, shortest, longest):
    return lambda rng: [
        (rng.choice(REQUEST_TYPES), rng.randint(shortest, longest)) for _ in range(size)
    ]


# name -> (how a batch is drawn, batches, random family?)
FAMILIES = {
    "200 requests, 1-100": (random_lengths(200, 100), 3, True),
    "500 requests, 1-100": (random_lengths(500, 100), 3, True),
    "40 requests, 1-9": (random_lengths(40, 9), 3, False),
    "one kind (M), 100 requests, 1-100": (random_lengths(100, 100, ("M",)), 3, True),
    "near-equal: 60 requests, 1000-1100": (near_equal(60, 1000, 1100), 8, False),
    "huge: 30 requests, 1-10^6": (random_lengths(30, 10**6), 8, False),
    "huge: 30 requests, 1-10^9": (random_lengths(30, 10**9), 4, False),
}


def ours(requests):
    return optimal_makespan(requests, DEFAULT_FLEET)[0]


def anchor(solver):
    def solve(requests):
        solution = solver(requests, DEFAULT_FLEET, time_limit=TIME_LIMIT)
        return solution.makespan if solution.proven_optimal else None  # None: timed out

    return solve


SOLVERS = {"ours": ours, "CP-SAT": anchor(solve_cp_sat), "HiGHS": anchor(solve_highs)}


def measure(name, draw, batches, disagreements):
    """Per solver: every batch's time, and how many batches timed out."""
    times = {solver: [] for solver in SOLVERS}
    timeouts = dict.fromkeys(SOLVERS, 0)
    for seed in range(batches):
        requests = draw(random.Random(f"{name} {seed}"))
        turn = list(SOLVERS)[seed % 3 :] + list(SOLVERS)[: seed % 3]  # who goes first rotates
        values = {}
        for solver in turn:
            start = time.perf_counter()
            values[solver] = SOLVERS[solver](requests)
            times[solver].append(time.perf_counter() - start)
            timeouts[solver] += values[solver] is None
        if values["ours"] is None or len({v for v in values.values() if v is not None}) > 1:
            disagreements.append((name, seed, values))
    return times, timeouts


def main() -> int:
    console = Console(width=max(Console().width, 190))  # a pipe is 80 wide: too narrow
    table = Table(title="exact batch makespan, default fleet, single thread")
    columns = ["family", "batches", "ours (median)", "CP-SAT (median)", "HiGHS (median)"]
    columns += [f"{a}/ours {kind}" for a in ANCHORS for kind in ("median", "worst")]
    for column in columns:
        table.add_column(column, justify="right")
    disagreements, verdicts = [], []
    for name, (draw, batches, random_family) in FAMILIES.items():
        times, timeouts = measure(name, draw, batches, disagreements)
        cells = [name, str(batches)]
        for solver in SOLVERS:
            late = f" ({timeouts[solver]} timeout)" if timeouts[solver] else ""
            cells.append(f"{statistics.median(times[solver]) * 1000:.1f} ms{late}")
        for other in ANCHORS:
            ratios = [a / b for a, b in zip(times[other], times["ours"], strict=True)]
            plus = "+" if timeouts[other] else ""
            median, worst = statistics.median(ratios), min(ratios)
            cells += [f"{median:.1f}x{plus}", f"{worst:.1f}x"]
            verdicts.append((f"{name}: faster than {other} on the median batch", median, 1))
            verdicts.append((f"{name}: faster than {other} on every batch (worst)", worst, 1))
            if random_family and other == "CP-SAT":
                verdicts.append((f"{name}: >= 10x faster than CP-SAT (median)", median, 10))
        if name.startswith("500 "):
            share = max(times["ours"]) / BUDGET_500
            verdicts.append(
                (f"{name}: slowest run within {BUDGET_500} s (budget / time)", 1 / share, 1)
            )
        table.add_row(*cells)
    console.print(table)
    console.print(
        "(x+ : the anchor hit its time limit on some batch, so the true ratio is larger;"
        " worst: the smallest ratio over the family's batches)"
    )
    for target, ratio, wanted in verdicts:
        console.print(
            f"target {target}: {ratio:.1f}x -> " + ("met" if ratio >= wanted else "NOT met")
        )
    if disagreements:
        console.print(f"[red]solvers disagree: {disagreements}[/red]")
        return 1
    console.print("all proven values agree")
    return 0


if __name__ == "__main__":
    sys.exit(main())
