"""Clients: single requests, many concurrent ones, and the course's closed-loop hosts.

Every request uses a new connection (the wire protocol has one request per connection), and
every client checks that the reply echoes its own request: the original seed's bug delivered
replies to the wrong client, and only the client can see that.

``minilb client --balancer HOST:PORT M1V2P3 ...`` sends requests; ``minilb hosts --balancer
HOST:PORT`` runs the five classic hosts, each sending its requests one after another.
"""

import argparse
import socket
import sys
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from minilb.costs import Request
from minilb.protocol import (
    REQUEST_SIZE,
    ProtocolError,
    decode_request,
    encode_request,
    parse_address,
    read_until_closed,
)

# The host workloads of the original course (our reconstruction): host -> its requests, in order.
CLASSIC_WORKLOADS = {
    "h1": "M3P3P1M2V2",
    "h2": "V1P3V3M1M2",
    "h3": "P2M1V2P1V3",
    "h4": "M2V1P2M3P3",
    "h5": "V3P1M1V2P2",
}
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
) -> dict[str, list[Exchange]]:
    """Closed-loop hosts: each sends its requests one after another, all hosts at once."""
    plans = {
        host: parse_workload(work) if isinstance(work, str) else [Request(*r) for r in work]
        for host, work in workloads.items()
    }
    results: dict[str, list[Exchange]] = {host: [] for host in plans}
    start = threading.Barrier(len(plans))

    def run(host: str) -> None:
        start.wait()  # all hosts begin together, as in the course's classroom run
        for request in plans[host]:
            results[host].append(send_request(address, request, timeout))

    threads = [threading.Thread(target=run, args=(host,), daemon=True) for host in plans]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
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
    hosts = subcommands.add_parser("hosts", help="run closed-loop hosts (default: the classic 5)")
    hosts.add_argument("--balancer", required=True, metavar="HOST:PORT")
    hosts.add_argument(
        "--workload", action="append", metavar="HOST=REQUESTS", help="e.g. h1=M3P3P1 (repeatable)"
    )
    hosts.set_defaults(handler=_run_hosts)


def _run_client(args: argparse.Namespace) -> int:
    address = parse_address(args.balancer)
    requests = [r for text in args.workloads for r in parse_workload(text)]
    wrong = _report(send_concurrently(address, requests, args.concurrency))
    return 1 if wrong else 0


def _run_hosts(args: argparse.Namespace) -> int:
    address = parse_address(args.balancer)
    workloads = dict(CLASSIC_WORKLOADS)
    if args.workload:
        workloads = {}
        for item in args.workload:
            host, sep, text = item.partition("=")
            if not sep or not host:
                raise ValueError(f"bad --workload {item!r}: expected HOST=REQUESTS, e.g. h1=M3P3")
            workloads[host] = text
        for text in workloads.values():
            parse_workload(text)  # bad input is reported before any host starts
    wrong = sum(_report(ex, f"{host}: ") for host, ex in run_hosts(address, workloads).items())
    if wrong:
        print(f"{wrong} replies did not echo their request", file=sys.stderr)
    return 1 if wrong else 0
