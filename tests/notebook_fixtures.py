"""Submitted notebooks for the grading tests: solved, blank (the handout) and hand-made ones.

A solved lesson is the instructor's notebook (lessons/NN/NN.ipynb) when it exists, else one
code cell holding the reference module that defines the lesson's exercises. The blank handout
is the same notebook with every solution region stubbed, as ``minilb release`` does.
"""

import shutil
from pathlib import Path

import nbformat

from autograder.contract import LESSONS
from autograder.handout import REFERENCE_PACKAGE, exercise_modules
from minilb.solutions import stub_solutions

KIT = Path(__file__).resolve().parent.parent


def write_notebook(path: Path, cells: list[str], tags: dict[int, list[str]] | None = None) -> Path:
    notebook = nbformat.v4.new_notebook()
    for number, source in enumerate(cells):
        cell = nbformat.v4.new_code_cell(source)
        if tags and number in tags:
            cell.metadata["tags"] = tags[number]
        notebook.cells.append(cell)
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, path)
    return path


def reference_source(lesson: str) -> str:
    """The reference module that defines ``lesson``'s exercises, as one cell of code."""
    module = exercise_modules()[LESSONS[lesson][0]].split(".")[1]
    return (REFERENCE_PACKAGE / f"{module}.py").read_text()


def solved_notebook(lesson: str, path: Path) -> Path:
    instructor = KIT / "lessons" / lesson / f"{lesson}.ipynb"
    if instructor.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(instructor, path)
        return path
    return write_notebook(path, [reference_source(lesson)])


def blank_notebook(lesson: str, path: Path) -> Path:
    solved = nbformat.read(solved_notebook(lesson, path), as_version=4)
    for cell in solved.cells:
        if cell.cell_type == "code":
            cell.source = stub_solutions(cell.source)
    nbformat.write(solved, path)
    return path


def mistaken_notebook(lesson: str, path: Path, old: str, new: str) -> Path:
    """The solved notebook with one piece of a solution replaced (``old`` must occur)."""
    solved = nbformat.read(solved_notebook(lesson, path), as_version=4)
    hits = [cell for cell in solved.cells if cell.cell_type == "code" and old in cell.source]
    assert hits, f"{old!r} is not in the solved {lesson}"
    hits[0].source = hits[0].source.replace(old, new, 1)
    nbformat.write(solved, path)
    return path


# Wrong or slow solutions of lesson 3, as text to put in front of a reference solution body
# (after its "### BEGIN SOLUTION" line): the early return replaces the whole solution.

# optimal_makespan by trying every assignment: exact, and hopeless on 40 requests (3 ** 40).
BRUTE_FORCE_OPTIMUM = """\
    import itertools

    kinds = check_fleet(fleet)
    jobs = [check_request(request) for request in requests]
    best = None
    for assignment in itertools.product(range(len(kinds)), repeat=len(jobs)):
        loads = [0] * len(kinds)
        for (request_type, length), server in zip(jobs, assignment):
            loads[server] += length * FACTORS[kinds[server]][request_type]
        if best is None or max(loads) < best[0]:
            best = (max(loads), list(assignment))
    return best
"""

# lower_bound right on the default fleet only: it lets requests be cut between the kinds, like
# the reference, but gives the Music servers the room of one server.
ONE_MUSIC_SERVER_BOUND = """\
    kinds = check_fleet(fleet)
    jobs = [check_request(request) for request in requests]
    fastest = [length * min(FACTORS[kind][type_] for kind in kinds) for type_, length in jobs]
    bound = max(max(fastest, default=0), sum(fastest) / len(kinds))
    if set(kinds) != {"VP", "M"}:
        return float(bound)
    work = {type_: sum(length for t, length in jobs if t == type_) for type_ in "MPV"}

    def fits(target):
        m_room, vp_room = target, kinds.count("VP") * target  # one Music server's room
        for type_ in "MPV":
            on_m = min(work[type_], m_room / FACTORS["M"][type_])
            m_room -= on_m * FACTORS["M"][type_]
            vp_room -= (work[type_] - on_m) * FACTORS["VP"][type_]
        return vp_room >= -1e-9

    low, high = bound, bound + sum(fastest) + 1
    for _ in range(60):
        middle = (low + high) / 2
        low, high = (low, middle) if fits(middle) else (middle, high)
    return float(max(bound, low))
"""

# optimal_makespan as the lesson's ideas put it, and no more: longest requests first, start from
# the longest-first schedule, skip interchangeable servers, cut a branch that cannot beat the
# best schedule (even spreading the rest perfectly), stop at the simple bound. Exact, quick on
# servers of one kind; on 40 requests over mixed kinds it does not finish within seconds.
TEXTBOOK_BRANCH_AND_BOUND = """\
    kinds = check_fleet(fleet)
    jobs = [check_request(request) for request in requests]
    if not jobs:
        return 0, []
    cost = [[length * FACTORS[kind][type_] for kind in kinds] for type_, length in jobs]
    fastest = [min(row) for row in cost]
    bound = max(max(fastest), ceil(sum(fastest) / len(kinds)))
    order = sorted(range(len(jobs)), key=lambda i: -fastest[i])
    rest = [0] * (len(order) + 1)
    for depth in reversed(range(len(order))):
        rest[depth] = rest[depth + 1] + fastest[order[depth]]
    loads, assignment = [0] * len(kinds), [0] * len(jobs)
    for i in order:  # longest first, each where it finishes first
        server = min(range(len(kinds)), key=lambda s: loads[s] + cost[i][s])
        loads[server] += cost[i][server]
        assignment[i] = server
    best = [max(loads), list(assignment)]
    loads = [0] * len(kinds)

    def search(depth, current):
        if best[0] == bound:
            return
        if depth == len(order):
            best[0], best[1] = current, list(assignment)
            return
        i, tried = order[depth], set()
        for server in sorted(range(len(kinds)), key=lambda s: loads[s] + cost[i][s]):
            new = loads[server] + cost[i][server]
            spread = ceil((sum(loads) + cost[i][server] + rest[depth + 1]) / len(kinds))
            if (kinds[server], loads[server]) in tried or max(current, new, spread) >= best[0]:
                continue
            tried.add((kinds[server], loads[server]))
            loads[server], assignment[i] = new, server
            search(depth + 1, max(current, new))
            loads[server] -= cost[i][server]

    search(0, 0)
    return best[0], best[1]
"""
