"""``minilb balancer``: the command line of the forking balancer (``minilb.balancer``)."""

import argparse
import sys

from minilb.balancer import (
    MAX_CHILDREN,
    READ_TIMEOUT,
    Balancer,
    add_student_argument,
    parse_backends,
    require_live_exercises,
)
from minilb.live_core import choose_live_core
from minilb.policies import load_policy_from
from minilb.protocol import open_listener


def register(subcommands: argparse._SubParsersAction) -> None:
    parser = subcommands.add_parser("balancer", help="run the forking load balancer")
    add_arguments(parser)
    parser.set_defaults(handler=_run)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, required=True, help="port to bind (0: any free port)")
    parser.add_argument(
        "--servers", nargs="+", required=True, metavar="KIND@HOST:PORT", help="the backends"
    )
    parser.add_argument("--unit", type=float, default=1.0, help="seconds per time unit (default 1)")
    parser.add_argument(
        "--policy", default="greedy",
        help="greedy (default), round-robin, fastest-kind, module:function or a notebook",
    )
    parser.add_argument("--log", default="-", help="access log file (default: standard output)")
    parser.add_argument(
        "--decisions", default=None, help="also log each decision as it is made (JSON lines)"
    )
    parser.add_argument(
        "--persistent", action="store_true",
        help="one connection per server, opened at start and kept (the original course's "
        "servers accept exactly one); default: a new connection per request",
    )
    parser.add_argument(
        "--prefork", type=int, default=0, metavar="N",
        help="N relay workers forked once at start and handed each client and server socket "
        "(default 0: fork a child per request); not with --persistent",
    )
    parser.add_argument("--max-children", type=int, default=MAX_CHILDREN)
    parser.add_argument("--read-timeout", type=float, default=READ_TIMEOUT)
    add_student_argument(parser)


def _run(args: argparse.Namespace) -> int:
    core = choose_live_core(args.student)  # before lesson 4 is done: the kit's threaded relay
    backends = parse_backends(args.servers)
    policy, policy_source = load_policy_from(args.policy)
    require_live_exercises(policy)
    listener = open_listener(args.host, args.port)
    balancer = Balancer(
        listener, backends, args.unit, policy, "/dev/stdout" if args.log == "-" else args.log,
        args.decisions, args.max_children, args.read_timeout, args.persistent,
        args.prefork,
    )
    host, port = listener.getsockname()[:2]
    print(f"listening on {host}:{port}", flush=True)
    print(f"{core}; policy: {policy_source}", file=sys.stderr, flush=True)  # stdout: the log
    balancer.serve_forever()
    return 0
