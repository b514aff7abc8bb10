"""``minilb schedule M1V2P3M2V2P3 ...``: the greedy schedule of a batch next to the optimum.

Prints each request's server, start and finish under the greedy rule, the greedy makespan, the
exact optimum and their ratio; ``--plot FILE.png`` draws both schedules. The exercises it
runs come from the package or from your own notebooks in this folder (``minilb.earlier``).
"""

import argparse

from rich.console import Console
from rich.table import Table

from minilb.costs import DEFAULT_FLEET, check_fleet, requests_from_text
from minilb.earlier import find_exercise
from minilb.exercises import is_stub, require_done
from minilb.timeline import Schedule


def fleet_from_text(text: str) -> tuple[str, ...]:
    """``"VP,VP,M"`` -> ``("VP", "VP", "M")``."""
    return check_fleet([kind.strip() for kind in text.split(",") if kind.strip()])


def register(subcommands: argparse._SubParsersAction) -> None:
    parser = subcommands.add_parser(
        "schedule",
        help="greedy vs optimal schedule of a batch of requests",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "requests", nargs="*", help="requests such as M1V2P3 (lengths may exceed 9)"
    )
    parser.add_argument(
        "--fleet", default=",".join(DEFAULT_FLEET), help="server kinds in order (default VP,VP,M)"
    )
    parser.add_argument("--plot", metavar="FILE.png", help="draw greedy and optimal Gantt charts")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    # Imported here, not at the top: matplotlib is slow to load and every `minilb` command
    # builds the whole parser.
    from minilb.plots import gantt, server_labels, text_timeline

    requests = requests_from_text(" ".join(args.requests))
    fleet = fleet_from_text(args.fleet)
    # The greedy schedule needs lessons 1 and 2 (choose_server calls processing_time): when
    # neither the package nor the student's notebooks have them yet, say so in one line.
    processing_time, choose_server, lower_bound, optimal_makespan = (
        find_exercise(name).function
        for name in ("processing_time", "choose_server", "lower_bound", "optimal_makespan")
    )
    require_done(processing_time, choose_server)
    greedy = Schedule.simulate(requests, choose_server, fleet)
    labels = server_labels(fleet)
    console = Console()

    table = Table(title=f"greedy schedule of {len(requests)} requests", title_justify="left")
    for column in ("#", "request", "server", "start", "finish"):
        table.add_column(column, justify="right" if column != "server" else "left")
    for number, placement in enumerate(greedy.placements, start=1):
        table.add_row(
            str(number),
            str(placement.request),
            labels[placement.server],
            f"{placement.start:g}",
            f"{placement.finish:g}",
        )
    console.print(table)
    console.print(text_timeline(greedy), highlight=False, markup=False)
    console.print(f"greedy makespan:  {greedy.makespan:g}")

    schedules = {f"greedy (makespan {greedy.makespan:g})": greedy}
    missing = next((f for f in (lower_bound, optimal_makespan) if is_stub(f)), None)
    if missing is not None:  # lesson 3 is optional here: the greedy half still helps
        console.print(f"optimal makespan: not available ({missing.not_done})")
    else:
        best, assignment = optimal_makespan(requests, fleet)
        console.print(f"optimal makespan: {best:g}")
        console.print(f"ratio greedy / optimal: {greedy.makespan / best:.3f}")
        schedules[f"optimal (makespan {best:g})"] = Schedule.from_assignment(
            requests, assignment, fleet
        )
    if args.plot:
        gantt(schedules, args.plot, title=" ".join(str(r) for r in requests))
        console.print(f"wrote {args.plot}")
    return 0
