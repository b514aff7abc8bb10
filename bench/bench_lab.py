"""The course's hosts on the lab network vs on loopback, side by side in one run (``make bench``).

For each of the course's workload sets (2017, 2020) the five closed-loop hosts run once on
loopback (``Cluster``) and once across the lab's hosts (``LabCluster``: h1..h5 -> lb1 -> serv1..3,
over two Linux bridges), and the balancer's measured makespan is divided by its own prediction.
The lab's set-up time (``minilb lab up``) is compared with starting the loopback system. Needs
root and network namespaces; otherwise it says so and skips.
"""

import time
import uuid

from minilb.client import COURSE_WORKLOADS
from minilb.cluster import Cluster
from minilb.lab import LabError, check_can_run, lab_down, lab_up
from minilb.lab_cluster import LabCluster

UNIT = 0.05
TARGETS = "targets: measured/predicted <= 1.02 on both, lab/loopback ratio <= 1.01"


def makespans(cluster: Cluster, workload: dict[str, str]) -> tuple[float, float]:
    """(measured, predicted) makespan in time units of one run of ``workload``."""
    with cluster:
        results = cluster.run_hosts(workload)
        log = cluster.access_log()
    assert all(e.ok for exchanges in results.values() for e in exchanges), "a wrong reply"
    return max(r["measured_finish"] for r in log), max(r["finish"] for r in log)


def main() -> None:
    try:
        check_can_run()
    except LabError as error:
        print(f"skipped: {error}")
        return
    prefix = "bench" + uuid.uuid4().hex[:6]
    loopback = Cluster(unit=UNIT)
    started = time.monotonic()
    loopback.__enter__()
    loopback_start = time.monotonic() - started
    loopback.close()
    try:
        lab_setup = lab_up(prefix)
        print(f"lab set-up {lab_setup:.3f} s = {lab_setup / loopback_start:.1f} x starting the "
              f"loopback system ({loopback_start:.3f} s)")
        print(f"unit {UNIT} s; makespans in time units")
        print(f"{'workload':>8} {'where':>9} {'measured':>9} {'predicted':>9} {'ratio':>7}")
        for year in ("2017", "2020"):
            ratios = {}
            for where, cluster in (("loopback", Cluster(unit=UNIT)),
                                   ("lab", LabCluster(prefix, UNIT))):
                measured, predicted = makespans(cluster, COURSE_WORKLOADS[year])
                ratios[where] = measured / predicted
                print(f"{year:>8} {where:>9} {measured:9.2f} {predicted:9.2f} "
                      f"{ratios[where]:7.4f}")
            print(f"{'':>8} lab/loopback measured/predicted = "
                  f"{ratios['lab'] / ratios['loopback']:.4f}")
    finally:
        lab_down(prefix)
    print(TARGETS)


if __name__ == "__main__":
    main()
