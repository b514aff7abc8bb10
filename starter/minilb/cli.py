"""The ``minilb`` command line.

Each command lives in its own module, which provides ``register(subcommands)``: it adds its
parser and sets ``handler`` to a function that takes the parsed arguments and returns the exit
code. Only the module of the command being run is imported, so that ``minilb server`` does not
pay for matplotlib or nbgrader: servers and balancers are started often, by tests and demos.
"""

import argparse
import importlib
import importlib.util
import sys
from collections.abc import Sequence
from pathlib import Path

# command -> (module, one-line help).
COMMANDS = {
    "schedule": ("minilb.schedule_command", "greedy vs optimal schedule of a batch of requests"),
    "server": ("minilb.servers", "run one simulated FIFO server"),
    "balancer": ("minilb.balancer_command", "run the forking load balancer"),
    "relay": ("minilb.relay", "run a forking relay in front of servers (lesson 4)"),
    "client": ("minilb.client", "send requests to the balancer"),
    "hosts": ("minilb.client", "run closed-loop client hosts (default: the course's five)"),
    "demo": ("minilb.demo", "the live demo: servers, balancer, hosts, live view, report"),
    "lab": ("minilb.lab", "the course's network on namespaces (root): up, exec HOST CMD, down"),
    "release": ("minilb.release", "build the student handout from the lessons (instructors)"),
    "check": ("minilb.check", "run a notebook's visible tests, report each exercise"),
    "grade": ("autograder.cli", "grade a class of submissions (instructors)"),
    "gradescope-package": ("autograder.cli", "build a Gradescope autograder zip (instructors)"),
}
# Offered only inside the course kit, where the `autograder` package sits next to this `minilb`:
# the student handout never ships it, so a student's `minilb --help` does not list them.
INSTRUCTOR_COMMANDS = ("release", "grade", "gradescope-package")
KIT_DIR = Path(__file__).resolve().parent.parent.parent  # the kit, when this minilb is its own


class UsageError(Exception):
    """Bad input from the user: printed as one line, exit code 2."""


def is_instructor_kit() -> bool:
    """Whether the kit's ``autograder`` is importable and belongs to this ``minilb``'s kit.

    A handout used from a machine where the kit is installed too can import an ``autograder``,
    but not its own: it still shows the student's commands only.
    """
    try:
        spec = importlib.util.find_spec("autograder")
    except (ImportError, ValueError):
        return False
    if spec is None or spec.origin is None:
        return False
    return Path(spec.origin).resolve().parent == KIT_DIR / "autograder"


def available_commands() -> dict[str, tuple[str, str]]:
    instructor = is_instructor_kit()
    available = {}
    for command, (module, help_text) in COMMANDS.items():
        if command in INSTRUCTOR_COMMANDS and not instructor:
            continue
        try:
            found = importlib.util.find_spec(module) is not None
        except ImportError:  # its package is missing (`minilb.relay` before lesson 4 ships it)
            found = False
        if found:
            available[command] = (module, help_text)
    return available


def build_parser(command: str | None) -> argparse.ArgumentParser:
    """The parser, with the full sub-parser of ``command`` only (the rest are listed)."""
    commands = available_commands()
    parser = argparse.ArgumentParser(
        prog="minilb", description="MiniLoadBalancer course kit: scheduling, sockets, grading."
    )
    subcommands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    if command in commands:
        importlib.import_module(commands[command][0]).register(subcommands)
    for name, (_, help_text) in commands.items():
        if name not in subcommands.choices:
            subcommands.add_parser(name, help=help_text)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((arg for arg in argv if not arg.startswith("-")), None)
    args = build_parser(command).parse_args(argv)
    try:
        return args.handler(args)
    except (UsageError, ValueError) as error:
        print(f"minilb {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"minilb {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
