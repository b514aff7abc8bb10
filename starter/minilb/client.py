"""Clients: single requests, many concurrent ones, and the course's closed-loop hosts.

Every request uses a new connection (the wire protocol has one request per connection), and
every client checks that the reply echoes its own request: the original seed's bug delivered
replies to the wrong client, and only the client can see that.

``minilb client --balancer HOST:PORT M1V2P3 ...`` sends requests; ``minilb hosts --balancer
HOST:PORT [--workload 2017|2020] [--hosts-file h1.in ...]`` runs the course's five hosts, each
sending its requests one after another.
"""

import argparse
import re
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from minilb.costs import Request
from minilb.protocol import (
    REQUEST_SIZE,
    ProtocolError,
    decode_request,
    encode_request,
    parse_address,
    read_until_closed,
)

# The original course's hosts, by year: host -> its requests, in order (its h1.in..h5.in).
# 2019 ran the 2017 set again; 2020 doubled every host's list.
COURSE_WORKLOADS = {
    "2017": {"h1": "M1V2P3", "h2": "M1M2M3", "h3": "M1P2V3", "h4": "M2P1V4", "h5": "V1V2V4"},
    "2020": {
        "h1": "M1V2P3M2V2P3",
        "h2": "M1M2M3M3M2M1",
        "h3": "M1P2V3V3M1M1",
        "h4": "M2P1V4M1M1M2",
        "h5": "V1V2V4V2V4V3",
    },
}
COURSE_WORKLOADS["2019"] = COURSE_WORKLOADS["2017"]
DEFAULT_WORKLOAD = "2017"
CLASSIC_WORKLOADS = COURSE_WORKLOADS[DEFAULT_WORKLOAD]  # what every "run the hosts" defaults to
REPLY_TIMEOUT = 60.0


@dataclass(frozen=True)
class Exchange:
    """One request and what came back; times are ``time.monotonic()`` seconds."""

    request: Request
    reply: bytes
    sent_at: float
    replied_at: float

    @property
    def ok(self) -> bool:
        return self.reply == encode_request(self.request)


def parse_workload(text: str) -> list[Request]:
    """``"M3P3P1"`` -> ``[Request("M", 3), Request("P", 3), Request("P", 1)]``."""
    if not text or len(text) % REQUEST_SIZE:
        raise ValueError(f"bad workload {text!r}: expected 2-character requests such as M3P3P1")
    try:
        return [decode_request(text[i : i + 2].encode()) for i in range(0, len(text), 2)]
    except (ProtocolError, UnicodeEncodeError) as error:
        raise ValueError(f"bad workload {text!r}: {error}") from None


def read_hosts_file(path: str | Path) -> tuple[str, str]:
    """A course's ``h1.in``: the host is the file name without ``.in``, the requests its text.

    The text is one line such as ``M1V2P3``; spaces, commas, line breaks and a byte-order mark
    are ignored, so a file written by any editor reads the same.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"cannot read hosts file {str(path)!r}: {error}") from None
    requests = re.sub(r"[\s,]+", "", text)
    if not requests:
        raise ValueError(f"hosts file {str(path)!r} is empty: expected requests such as M1V2P3")
    try:
        parse_workload(requests)
    except ValueError as error:
        raise ValueError(f"hosts file {str(path)!r}: {error}") from None
    return path.name.removesuffix(".in"), requests


def hosts_files(paths: Iterable[str | Path]) -> dict[str, str]:
    """Read ``h1.in`` files, or every ``*.in`` of a directory; host -> requests, in name order."""
    files: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            found = sorted(path.glob("*.in"))
            if not found:
                raise ValueError(f"no *.in hosts files in {str(path)!r}")
            files.extend(found)
        else:
            files.append(path)
    workloads: dict[str, str] = {}
    for file in files:
        host, requests = read_hosts_file(file)
        if host in workloads:
            raise ValueError(f"host {host!r} given twice (hosts file {str(file)!r})")
        workloads[host] = requests
    return workloads


def send_bytes(address: tuple[str, int], data: bytes, timeout: float = REPLY_TIMEOUT) -> bytes:
    """Send raw ``data`` on a new connection and return everything sent back before close."""
    with socket.create_connection(address, timeout=timeout) as sock:
        sock.sendall(data)
        # Says "no more requests": a kit server, which takes many per connection, then closes
        # once it has echoed this one.
        sock.shutdown(socket.SHUT_WR)
        return read_until_closed(sock, timeout)


def send_request(
    address: tuple[str, int], request: tuple[str, int], timeout: float = REPLY_TIMEOUT
) -> Exchange:
    """Send one request on its own connection and wait for the reply."""
    request = Request(*request)
    sent_at = time.monotonic()
    try:
        reply = send_bytes(address, encode_request(request), timeout)
    except OSError as error:  # refused, reset or timed out: report it as the reply
        reply = f"ERR client: {error}".encode()
    return Exchange(request, reply, sent_at, time.monotonic())


def send_concurrently(
    address: tuple[str, int],
    requests: Iterable[tuple[str, int]],
    concurrency: int = 16,
    timeout: float = REPLY_TIMEOUT,
) -> list[Exchange]:
    """Send ``requests`` with up to ``concurrency`` connections open at once; results in order."""
    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, got {concurrency}")
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        return list(pool.map(lambda r: send_request(address, r, timeout), requests))


def run_hosts(
    address: tuple[str, int],
    workloads: Mapping[str, Sequence[tuple[str, int]] | str] = CLASSIC_WORKLOADS,
    timeout: float = REPLY_TIMEOUT,
    enter_host: Callable[[str], None] | None = None,
) -> dict[str, list[Exchange]]:
    """Closed-loop hosts: each sends its requests one after another, all hosts at once.

    Each host runs in its own thread; ``enter_host(host)``, if given, runs first in that thread
    (``minilb demo --lab`` moves the thread into the host's network namespace there).
    """
    plans = {
        host: parse_workload(work) if isinstance(work, str) else [Request(*r) for r in work]
        for host, work in workloads.items()
    }
    results: dict[str, list[Exchange]] = {host: [] for host in plans}
    start = threading.Barrier(len(plans))

    failures: list[BaseException] = []

    def run(host: str) -> None:
        try:
            if enter_host is not None:
                enter_host(host)
        except BaseException as error:  # reported below, in the caller's thread
            failures.append(error)
        finally:
            start.wait()  # all hosts begin together, as in the course's classroom run
        if not failures:
            for request in plans[host]:
                results[host].append(send_request(address, request, timeout))

    threads = [threading.Thread(target=run, args=(host,), daemon=True) for host in plans]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]
    return results


def _report(exchanges: Iterable[Exchange], label: str = "") -> int:
    """Print one line per exchange; return how many replies were wrong."""
    wrong = 0
    for exchange in exchanges:
        verdict = "ok" if exchange.ok else "WRONG REPLY"
        wrong += not exchange.ok
        seconds = exchange.replied_at - exchange.sent_at
        print(f"{label}{exchange.request} -> {exchange.reply!r} {verdict} ({seconds:.3f} s)")
    return wrong


def register(subcommands: argparse._SubParsersAction) -> None:
    client = subcommands.add_parser("client", help="send requests to the balancer")
    client.add_argument("--balancer", required=True, metavar="HOST:PORT")
    client.add_argument("workloads", nargs="+", metavar="REQUESTS", help="e.g. M1V2P3")
    client.add_argument("--concurrency", type=int, default=1, help="connections at once")
    client.set_defaults(handler=_run_client)
    hosts = subcommands.add_parser(
        "hosts", help=f"run closed-loop hosts (default: the course's {DEFAULT_WORKLOAD} five)"
    )
    hosts.add_argument("--balancer", required=True, metavar="HOST:PORT")
    add_workload_arguments(hosts)
    hosts.set_defaults(handler=_run_hosts)


def _run_client(args: argparse.Namespace) -> int:
    address = parse_address(args.balancer)
    requests = [r for text in args.workloads for r in parse_workload(text)]
    wrong = _report(send_concurrently(address, requests, args.concurrency))
    return 1 if wrong else 0


def add_workload_arguments(parser: argparse.ArgumentParser) -> None:
    """``--workload`` and ``--hosts-file``, shared by ``minilb hosts`` and ``minilb demo``."""
    years = "|".join(sorted(COURSE_WORKLOADS))
    parser.add_argument(
        "--workload", action="append", metavar=f"{years}|HOST=REQUESTS",
        help=f"the course's hosts of that year (default {DEFAULT_WORKLOAD}), or one host such "
        "as h1=M3P3P1 (repeatable: hosts given later replace earlier ones of the same name)",
    )
    parser.add_argument(
        "--hosts-file", action="append", metavar="FILE|DIR",
        help="a course's own h1.in (host h1; one line of requests such as M1V2P3), or a "
        "directory of *.in files (repeatable)",
    )


def workloads_from_arguments(args: argparse.Namespace) -> dict[str, str]:
    """host -> requests, from ``--workload`` and ``--hosts-file``; every one checked."""
    workloads: dict[str, str] = {}
    for item in args.workload or []:
        if item in COURSE_WORKLOADS:
            workloads.update(COURSE_WORKLOADS[item])
            continue
        host, sep, text = item.partition("=")
        if not sep or not host:
            years = ", ".join(sorted(COURSE_WORKLOADS))
            raise ValueError(f"bad --workload {item!r}: expected {years} or HOST=REQUESTS, "
                             "e.g. h1=M3P3")
        parse_workload(text)  # bad input is reported before any host starts
        workloads[host] = text
    workloads.update(hosts_files(args.hosts_file or []))
    return workloads or dict(COURSE_WORKLOADS[DEFAULT_WORKLOAD])


def _run_hosts(args: argparse.Namespace) -> int:
    address = parse_address(args.balancer)
    workloads = workloads_from_arguments(args)
    wrong = sum(_report(ex, f"{host}: ") for host, ex in run_hosts(address, workloads).items())
    if wrong:
        print(f"{wrong} replies did not echo their request", file=sys.stderr)
    return 1 if wrong else 0
