"""A busy machine on demand: ``n`` CPU-bound processes beside a test or a command.

``with cpu_burners(6): ...`` in a test, or ``python tests/cpu_load.py 6 -- COMMAND ...`` around
a whole command (CI's second pass of the grading tests). Only the processes started here are
ever killed, by their own pids.
"""

import contextlib
import subprocess
import sys
from collections.abc import Iterator

BURN = "while True: pass"


@contextlib.contextmanager
def cpu_burners(count: int) -> Iterator[list[int]]:
    burners = [subprocess.Popen([sys.executable, "-c", BURN]) for _ in range(count)]
    try:
        yield [burner.pid for burner in burners]
    finally:
        for burner in burners:
            burner.kill()
        for burner in burners:
            burner.wait()


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "--" or not argv[0].isdigit():
        print("usage: python tests/cpu_load.py N -- COMMAND [ARG...]", file=sys.stderr)
        return 2
    with cpu_burners(int(argv[0])):
        return subprocess.run(argv[2:]).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
