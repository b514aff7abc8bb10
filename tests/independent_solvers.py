"""The batch makespan problem written for two general-purpose solvers, to check minilb.optimal.

Shared by tests/test_optimal.py and bench/bench_optimal.py. Both models are the textbook
assignment formulation and share no code with the kit's solver: a 0/1 variable per (request,
server), every request on exactly one server, every server's load at most the makespan,
minimise the makespan. Each solver runs single-threaded (like minilb.optimal) under a time
limit, so a caller can never hang.
"""

from dataclasses import dataclass

import highspy
import numpy as np
from ortools.sat.python import cp_model

from minilb.costs import FACTORS


@dataclass(frozen=True)
class Solution:
    """A solver's answer: ``makespan`` is None when it proved nothing within the time limit."""

    makespan: int | None
    assignment: list[int] | None
    proven_optimal: bool


def _times(requests, fleet) -> list[list[int]]:
    return [[length * FACTORS[kind][type_] for kind in fleet] for type_, length in requests]


def solve_cp_sat(requests, fleet, time_limit: float = 30.0) -> Solution:
    """Minimum makespan with OR-Tools CP-SAT."""
    times = _times(requests, fleet)
    if not times:
        return Solution(0, [], True)
    model = cp_model.CpModel()
    on = [[model.new_bool_var(f"r{r}s{s}") for s in range(len(fleet))] for r in range(len(times))]
    makespan = model.new_int_var(0, sum(max(row) for row in times), "makespan")
    for r in range(len(times)):
        model.add_exactly_one(on[r])
    for s in range(len(fleet)):
        model.add(sum(times[r][s] * on[r][s] for r in range(len(times))) <= makespan)
    model.minimize(makespan)
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = time_limit
    solver.parameters.num_workers = 1
    status = solver.solve(model)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return Solution(None, None, False)
    assignment = [next(s for s, var in enumerate(row) if solver.value(var)) for row in on]
    return Solution(int(solver.value(makespan)), assignment, status == cp_model.OPTIMAL)


def solve_highs(requests, fleet, time_limit: float = 30.0) -> Solution:
    """Minimum makespan as a mixed-integer program with HiGHS."""
    times = _times(requests, fleet)
    if not times:
        return Solution(0, [], True)
    n, m = len(times), len(fleet)
    highs = highspy.Highs()
    highs.setOptionValue("output_flag", False)
    highs.setOptionValue("time_limit", float(time_limit))
    highs.setOptionValue("threads", 1)
    # Its default stops within 0.01 % of the optimum, which huge lengths make a real gap.
    highs.setOptionValue("mip_rel_gap", 0.0)
    # Columns: x[r][s] at r * m + s, then the makespan as the last column.
    columns = n * m + 1
    lower = np.zeros(columns)
    upper = np.ones(columns)
    upper[-1] = highs.getInfinity()
    costs = np.zeros(columns)
    costs[-1] = 1.0
    highs.addVars(columns, lower, upper)
    highs.changeColsCost(columns, np.arange(columns, dtype=np.int32), costs)
    integrality = np.array([highspy.HighsVarType.kInteger] * columns)
    highs.changeColsIntegrality(columns, np.arange(columns, dtype=np.int32), integrality)
    for r in range(n):  # on exactly one server
        indices = np.arange(r * m, r * m + m, dtype=np.int32)
        highs.addRow(1.0, 1.0, m, indices, np.ones(m))
    for s in range(m):  # load - makespan <= 0
        indices = np.array([r * m + s for r in range(n)] + [columns - 1], dtype=np.int32)
        values = np.array([float(times[r][s]) for r in range(n)] + [-1.0])
        highs.addRow(-highs.getInfinity(), 0.0, n + 1, indices, values)
    highs.run()
    status = highs.getModelStatus()
    values = highs.getSolution().col_value
    if len(values) != columns or highs.getInfo().primal_solution_status != 2:  # 2: feasible
        return Solution(None, None, False)
    assignment = [max(range(m), key=lambda s, r=r: values[r * m + s]) for r in range(n)]
    loads = [0] * m
    for r, server in enumerate(assignment):
        loads[server] += times[r][server]
    return Solution(max(loads), assignment, status == highspy.HighsModelStatus.kOptimal)
