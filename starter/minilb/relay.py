"""A forking relay in front of one server: lesson 4's ``serve_forking`` as a command.

``minilb relay --port P --to HOST:PORT [--host H] [--connections N] [--timeout S]
[--student NOTEBOOK]``

It prints ``listening on HOST:PORT`` once it accepts connections, then relays every request to
the ``--to`` server (for ever, or for ``N`` connections). Unlike the balancer it reads each
request in turn, so a client that dawdles holds up the ones behind it for up to ``--timeout``
seconds: the simplest forking server, to be read beside the balancer that fixes this.
"""

import argparse

from minilb import network, protocol
from minilb.balancer import add_student_argument
from minilb.exercises import require_done
from minilb.policies import use_student_notebook
from minilb.protocol import open_listener, parse_address

TIMEOUT = 10.0  # seconds for a client's request, and for the server's reply


def register(subcommands: argparse._SubParsersAction) -> None:
    parser = subcommands.add_parser(
        "relay", help="run a forking relay in front of one server (lesson 4's serve_forking)"
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, required=True, help="port to bind (0: any free port)")
    parser.add_argument("--to", required=True, metavar="HOST:PORT", help="the server")
    parser.add_argument(
        "--connections", type=int, default=None, metavar="N",
        help="stop after N connections (default: serve for ever)",
    )
    parser.add_argument(
        "--timeout", type=float, default=TIMEOUT,
        help=f"seconds for a request and for its reply (default {TIMEOUT:g})",
    )
    add_student_argument(parser)
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    if args.student:
        use_student_notebook(args.student)
    require_done(
        protocol.parse_request, network.recv_exactly, network.spawn_relay_child,
        network.reap_children, network.serve_forking,
    )
    server = parse_address(args.to)
    if args.connections is not None and args.connections < 0:
        raise ValueError(f"--connections must be at least 0, got {args.connections}")
    if not args.timeout > 0:
        raise ValueError(f"--timeout must be positive, got {args.timeout}")
    with open_listener(args.host, args.port) as listener:
        host, port = listener.getsockname()[:2]
        print(f"listening on {host}:{port}", flush=True)
        network.serve_forking(listener, lambda request: server, args.connections, args.timeout)
    return 0
