"""The balancer's memory stays flat however many requests it serves (``make bench``).

The balancer runs for ever, so whatever it keeps per request is a leak: it must keep only what
it needs to decide (each server's finish time, the requests in flight). Zero-cost requests
(``unit = 0``) at concurrency 16 go through the forking balancer; its resident set (VmRSS of
the parent, read from /proc) is read after the first ``WARM_UP`` requests and again after
``TOTAL``. Target: at most 1 MiB of growth between the two readings. Exit 1 when a reply is
wrong or the target is not met.
"""

import sys
import tempfile

from bench_live import lean_balancer

from minilb.client import send_concurrently
from minilb.cluster import Cluster

WARM_UP, TOTAL, CONCURRENCY, BATCH = 1_000, 100_000, 16, 5_000
TARGET_BYTES = 1 << 20


def resident_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        line = next(line for line in status if line.startswith("VmRSS:"))
    return int(line.split()[1]) * 1024


def send(address: tuple[str, int], count: int) -> None:
    exchanges = send_concurrently(address, [("V", 1)] * count, CONCURRENCY, timeout=60)
    bad = sum(not exchange.ok for exchange in exchanges)
    if bad:
        sys.exit(f"bench_memory: {bad} of {count} replies were wrong")


def main() -> int:
    with (
        Cluster(unit=0.0) as cluster,
        tempfile.TemporaryDirectory(prefix="minilb-bench-") as log_dir,
        lean_balancer(cluster.fleet, cluster.server_addresses, log_dir) as balancer,
    ):
        send(balancer.address, WARM_UP)
        after_warm_up = resident_bytes(balancer.process.pid)
        for _ in range((TOTAL - WARM_UP) // BATCH):
            send(balancer.address, BATCH)
        send(balancer.address, (TOTAL - WARM_UP) % BATCH)
        after_total = resident_bytes(balancer.process.pid)
    growth = after_total - after_warm_up
    met = growth <= TARGET_BYTES
    print(f"balancer RSS after {WARM_UP:,} requests: {after_warm_up / 2**20:.2f} MiB; after "
          f"{TOTAL:,}: {after_total / 2**20:.2f} MiB")
    print(f"growth {growth / 1024:+.0f} KiB = {growth / max(TOTAL - WARM_UP, 1):.1f} bytes per "
          f"request (target <= 1 MiB: {'met' if met else 'NOT met'})")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
