"""The live demo: ``minilb demo [--unit U] [--policy P] [--student NOTEBOOK] [--out DIR]
[--no-live] [--workload 2017|2020] [--hosts-file FILE] [--lab [--lab-prefix P]]``.

Starts three servers and the balancer on loopback (with ``--lab``: on serv1..3 and lb1 of the
course's network, ``minilb lab up``), runs the course's five hosts against it and
shows each server's queue and timeline while they run (a live view in a terminal, plain
progress lines in a pipe). Then it compares, for the same requests: the predicted and measured
finish of every server, the exact offline optimum, and round-robin (simulated with the same
closed-loop hosts), and writes a Gantt chart of predicted vs measured.
"""

import argparse
import os
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from minilb.balancer import add_student_argument, require_live_exercises
from minilb.client import (
    Exchange,
    add_workload_arguments,
    parse_workload,
    workloads_from_arguments,
)
from minilb.cluster import Cluster
from minilb.costs import DEFAULT_FLEET, Request, server_names
from minilb.live_core import choose_live_core
from minilb.policies import RoundRobin, load_policy_from
from minilb.protocol import decode_request
from minilb.timeline import Placement, Policy, Schedule, service_time

DEFAULT_UNIT = 0.5  # seconds per time unit: the course's 2017 hosts then take about 7 s


def predicted_schedule(log: Sequence[dict], fleet: Sequence[str]) -> Schedule:
    """What the balancer expected for every request it placed (served or still queued)."""
    return Schedule.from_placements(
        [Placement(_request(r), r["server_index"], r["start"], r["finish"])
         for r in log if "server_index" in r and not r["error"]],
        fleet,
    )


def measured_schedule(log: Sequence[dict], fleet: Sequence[str]) -> Schedule:
    """What happened. A server works on one request at a time, so a measured start is the
    measured finish minus the service time."""
    placements = []
    for r in log:
        if r["measured_finish"] is not None:
            request, server = _request(r), r["server_index"]
            start = r["measured_finish"] - service_time(fleet[server], request)
            placements.append(Placement(request, server, start, r["measured_finish"]))
    return Schedule.from_placements(placements, fleet)


def _request(record: dict) -> Request:
    return decode_request(record["request"].encode())


def simulate_hosts(
    workloads: Mapping[str, Sequence[Request]], policy: Policy, fleet: Sequence[str]
) -> Schedule:
    """Closed-loop hosts without network delays: a host sends its next request the moment its
    previous one is done; all hosts start at time 0."""
    schedule = Schedule(tuple(fleet))
    ready_at = dict.fromkeys(workloads, 0.0)
    position = dict.fromkeys(workloads, 0)
    while ready_at:
        host = min(ready_at, key=lambda h: ready_at[h])  # dicts keep host order on ties
        request, now = workloads[host][position[host]], ready_at[host]
        placement = schedule.place(request, policy(list(schedule.finish_times), request,
                                                   schedule.fleet, now), now)
        position[host] += 1
        if position[host] == len(workloads[host]):
            del ready_at[host]
        else:
            ready_at[host] = placement.finish
    return schedule


def optimum_text(requests: list[Request], fleet: Sequence[str]) -> str:
    try:
        from minilb.optimal import optimal_makespan

        return f"{optimal_makespan(requests, fleet)[0]:g}"
    except NotImplementedError:  # the student handout stubs it
        return "not available"


def live_view(log: Sequence[dict], fleet: Sequence[str], now: float) -> Group:
    """Each server's queue and counts, and the predicted timeline of everything placed."""
    from minilb.plots import text_timeline

    names = server_names(fleet)
    table = Table(title=f"t = {now:5.1f} units")
    for column in ("server", "queue (placed, not done)", "done", "predicted finish"):
        table.add_column(column)
    for server, name in enumerate(names):
        mine = [r for r in log if r.get("server_index") == server and not r["error"]]
        queue = [r["request"] for r in mine if r["measured_finish"] is None]
        done = len(mine) - len(queue)
        finish = max((r["finish"] for r in mine), default=0.0)
        table.add_row(f"{name} ({fleet[server]})", " ".join(queue) or "-", str(done),
                      f"{finish:.1f}")
    placed = predicted_schedule(log, fleet)
    timeline = text_timeline(placed, server_names=names) if placed.placements else ""
    return Group(table, Text(timeline))


def run_demo(
    unit: float,
    policy: Policy | None,
    out_dir: str,
    live: bool,
    workloads: Mapping[str, str],
    cluster: Cluster | None = None,
    persistent: bool = False,
    prefork: int = 0,
    about: Sequence[str] = (),
) -> int:
    """Run ``workloads`` on ``cluster`` (default: one on loopback) and report; ``about``: lines
    printed once the system listens (its core, its policy)."""
    console = Console()
    fleet = DEFAULT_FLEET
    plans = {host: parse_workload(text) for host, text in workloads.items()}
    results: dict[str, list[Exchange]] = {}
    with cluster or Cluster(fleet, unit, policy, persistent=persistent, prefork=prefork) as cluster:
        console.print(f"balancer listening on {cluster.address[0]}:{cluster.address[1]}, "
                      f"servers {', '.join(f'{h}:{p}' for h, p in cluster.server_addresses)}")
        for line in about:
            console.print(line, highlight=False, markup=False, soft_wrap=True)
        failures: list[BaseException] = []

        def run_hosts() -> None:
            try:
                results.update(cluster.run_hosts(plans))
            except BaseException as error:  # raised below, in this thread
                failures.append(error)

        hosts = threading.Thread(target=run_hosts, daemon=True)
        started = time.monotonic()
        hosts.start()
        if live:
            with Live(console=console, refresh_per_second=8) as screen:
                while hosts.is_alive():
                    now = (time.monotonic() - started) / unit
                    screen.update(live_view(cluster.access_log(), fleet, now))
                    hosts.join(0.1)
                screen.update(live_view(cluster.access_log(), fleet,
                                        (time.monotonic() - started) / unit))
        else:
            while hosts.is_alive():
                hosts.join(1.0)
                done = sum(r["measured_finish"] is not None for r in cluster.access_log())
                print(f"t = {time.monotonic() - started:5.1f} s: {done} requests done", flush=True)
        log = cluster.access_log()
    wrong = sum(not e.ok for exchanges in results.values() for e in exchanges)
    if failures:
        raise failures[0]
    report(console, log, plans, fleet, out_dir)
    if wrong:
        console.print(f"[red]{wrong} replies did not echo their request[/red]")
    return 1 if wrong else 0


def report(
    console: Console,
    log: Sequence[dict],
    workloads: Mapping[str, Sequence[Request]],
    fleet: Sequence[str],
    out_dir: str,
) -> None:
    predicted, measured = predicted_schedule(log, fleet), measured_schedule(log, fleet)
    table = Table(title="predicted vs measured (time units)")
    for column in ("server", "requests", "predicted finish", "measured finish"):
        table.add_column(column, justify="right")
    for server, name in enumerate(server_names(fleet)):
        count = sum(p.server == server for p in predicted.placements)
        predicted_finish, measured_finish = (s.finish_times[server] for s in (predicted, measured))
        table.add_row(f"{name} ({fleet[server]})", str(count),
                      f"{predicted_finish:.2f}", f"{measured_finish:.2f}")
    console.print(table)
    requests = [r for work in workloads.values() for r in work]
    round_robin = simulate_hosts(workloads, RoundRobin(), fleet)
    summary = Table(title="makespan (time units)", show_header=False)
    summary.add_row("measured (live balancer)", f"{measured.makespan:.2f}")
    summary.add_row("predicted by the balancer", f"{predicted.makespan:.2f}")
    summary.add_row("exact optimum (offline: all requests known at 0)",
                    optimum_text(requests, fleet))
    summary.add_row("round-robin (simulated, same closed-loop hosts)", f"{round_robin.makespan:g}")
    console.print(summary)
    from minilb.plots import gantt

    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, "demo_gantt.png")
    gantt({"predicted": predicted, "measured": measured}, path)
    console.print(f"Gantt chart: {path}")


def register(subcommands: argparse._SubParsersAction) -> None:
    parser = subcommands.add_parser("demo", help="run the live demo on loopback")
    parser.add_argument("--unit", type=float, default=DEFAULT_UNIT,
                        help=f"seconds per time unit (default {DEFAULT_UNIT})")
    parser.add_argument("--policy", default="greedy",
                        help="greedy (default), round-robin, fastest-kind, module:function "
                        "or a notebook")
    parser.add_argument("--out", default=None, help="directory for the Gantt chart (default: temp)")
    parser.add_argument("--no-live", action="store_true", help="plain progress lines, no live view")
    add_workload_arguments(parser)
    parser.add_argument("--lab", action="store_true",
                        help="run on the course's network (root; 'minilb lab up' first): servers "
                        "on serv1..3, the balancer on lb1 port 80, the hosts on h1..h5")
    parser.add_argument("--lab-prefix", default=None, metavar="PREFIX",
                        help="the lab's prefix (as 'minilb lab --prefix'; default "
                        "$MINILB_LAB_PREFIX or mlb)")
    parser.add_argument("--persistent", action="store_true",
                        help="the balancer keeps one connection per server (the course's model)")
    parser.add_argument("--prefork", type=int, default=0, metavar="N",
                        help="the balancer relays through N workers forked once")
    add_student_argument(parser)
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    if args.unit <= 0:
        raise ValueError(f"--unit must be positive, got {args.unit}")
    # The balancer is forked from here: it inherits the core and the policy chosen now.
    core = choose_live_core(args.student)
    workloads = workloads_from_arguments(args)
    policy, policy_source = load_policy_from(args.policy)
    require_live_exercises(policy)  # before any server starts
    cluster = None
    if args.prefork and args.persistent:
        raise ValueError("--prefork and --persistent cannot be combined")
    if args.lab:
        from minilb.lab import check_prefix, default_prefix
        from minilb.lab_cluster import LabCluster, check_client_hosts

        check_client_hosts(workloads)
        cluster = LabCluster(check_prefix(args.lab_prefix or default_prefix()), args.unit, policy,
                             persistent=args.persistent, prefork=args.prefork)
    out_dir = args.out or tempfile.mkdtemp(prefix="minilb-demo-")
    live = not args.no_live and sys.stdout.isatty()
    about = [core, f"policy: {policy_source}"]
    return run_demo(args.unit, policy, out_dir, live, workloads, cluster, args.persistent,
                    args.prefork, about)
