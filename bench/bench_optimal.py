"""minilb.optimal against OR-Tools CP-SAT and HiGHS, side by side on the same random batches.

Every solver runs single-threaded on the same instances in one run; the table shows median
times and median ratios (their time / ours), and every value is checked to agree.
Targets: at least 10x faster than CP-SAT from 100 requests on; 500 requests within 0.2 s.
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

SIZES = (10, 50, 100, 200, 500)
LONGEST = (9, 100)
SEEDS = 5
TIME_LIMIT = 5.0  # seconds per external solve; a solve that hits it is reported as a timeout
BUDGET_500 = 0.2  # seconds for 500 requests
OTHERS = ("CP-SAT", "HiGHS")


def timed(solve, requests):
    start = time.perf_counter()
    result = solve(requests)
    return result, time.perf_counter() - start


def ours(requests):
    return optimal_makespan(requests, DEFAULT_FLEET)[0]


def external(solver):
    def solve(requests):
        solution = solver(requests, DEFAULT_FLEET, time_limit=TIME_LIMIT)
        return solution.makespan if solution.proven_optimal else None  # None: timed out

    return solve


def batch(size, longest, seed):
    rng = random.Random(f"{size} {longest} {seed}")
    return [(rng.choice(REQUEST_TYPES), rng.randint(1, longest)) for _ in range(size)]


def measure(size, longest, solvers, disagreements):
    """Per solver: every run's time and how many runs timed out."""
    times = {name: [] for name in solvers}
    timeouts = dict.fromkeys(solvers, 0)
    for seed in range(SEEDS):
        requests = batch(size, longest, seed)
        values = {}
        for name, solve in solvers.items():
            values[name], elapsed = timed(solve, requests)
            times[name].append(elapsed)
            timeouts[name] += values[name] is None
        if len({value for value in values.values() if value is not None}) > 1:
            disagreements.append((size, longest, seed, values))
    return times, timeouts


def median_ratio(theirs, ours):
    return statistics.median(a / b for a, b in zip(theirs, ours, strict=True))


def main() -> int:
    console = Console(width=max(Console().width, 100))  # a pipe is 80 wide: too narrow
    table = Table(title="exact batch makespan, default fleet, single thread: median over seeds")
    for column in ("requests", "lengths", "ours", "CP-SAT", "HiGHS", "CP-SAT/ours", "HiGHS/ours"):
        table.add_column(column, justify="right")
    solvers = {"ours": ours, "CP-SAT": external(solve_cp_sat), "HiGHS": external(solve_highs)}
    disagreements, cp_sat_ratios, ours_at_500 = [], [], []
    for size in SIZES:
        for longest in LONGEST:
            times, timeouts = measure(size, longest, solvers, disagreements)
            ratios = {name: median_ratio(times[name], times["ours"]) for name in OTHERS}
            if size >= 100:
                cp_sat_ratios.append(ratios["CP-SAT"])
            if size == 500:
                ours_at_500.extend(times["ours"])
            late = {name: f" ({n} timeout)" if n else "" for name, n in timeouts.items()}
            table.add_row(
                str(size),
                f"1-{longest}",
                *(f"{statistics.median(times[n]) * 1000:.1f} ms{late[n]}" for n in solvers),
                *(f"{ratios[name]:.1f}x{'+' if timeouts[name] else ''}" for name in ratios),
            )
    console.print(table)
    console.print("(x+ : the other solver hit its time limit, so the true ratio is larger)")
    worst = min(cp_sat_ratios)
    console.print(
        f"target >= 10x vs CP-SAT at 100+ requests: smallest median ratio {worst:.1f}x -> "
        + ("met" if worst >= 10 else "NOT met")
    )
    share = max(ours_at_500) / BUDGET_500
    console.print(
        f"target 500 requests < {BUDGET_500} s: slowest run took {share:.1%} of that budget -> "
        + ("met" if share < 1 else "NOT met")
    )
    if disagreements:
        console.print(f"[red]solvers disagree: {disagreements}[/red]")
        return 1
    console.print("all proven values agree")
    return 0


if __name__ == "__main__":
    sys.exit(main())
