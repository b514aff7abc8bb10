"""The ``minilb`` command line. Each command lives in its own module, which provides
``register(subcommands)``: it adds its parser and sets ``handler`` to a function that takes the
parsed arguments and returns the exit code.
"""

import argparse
import importlib
import sys
from collections.abc import Sequence

# Instructor-only commands (grading) live in the kit's ``autograder`` package, which the
# student handout does not ship; they are offered only where that package is importable.
COMMAND_MODULES = (
    "minilb.schedule_command",
    "minilb.servers",
    "minilb.balancer",
    "minilb.client",
    "minilb.demo",
    "minilb.release",
    "minilb.check",
)
INSTRUCTOR_COMMAND_MODULES = ("autograder.cli",)


class UsageError(Exception):
    """Bad input from the user: printed as one line, exit code 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="minilb", description="MiniLoadBalancer course kit: scheduling, sockets, grading."
    )
    subcommands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subcommands)
    for name in INSTRUCTOR_COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError:
            continue
        module.register(subcommands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
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
