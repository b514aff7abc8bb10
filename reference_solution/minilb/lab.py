"""The course's lab network: ``minilb lab up | exec HOST CMD... | down [--prefix P]``.

The original course ran its harness on Mininet: the balancer ``lb1`` between two switches, the
clients ``h1``..``h5`` on one side (10.0.0.0/8), the servers ``serv1``..``serv3`` on the other
(192.168.0.0/24), port 80 everywhere. ``minilb lab up`` builds that network with plain Linux
network namespaces (root only): one namespace per host, named ``PREFIX-HOST``, and one more,
``PREFIX-switches``, that holds the two switches as Linux bridges ``s1`` and ``s2``. Every link
is a veth pair between a host and a switch; no interface, route or bridge is ever made in the
machine's own namespace, so the lab cannot disturb the machine and the machine cannot reach the
lab: traffic stays between the lab's hosts. ``minilb lab down`` stops every process inside those
namespaces and deletes them, which deletes every link and bridge with them.

Inside, the names are Mininet's (``h1-eth0``, ``s1-eth1``, ...), so the course's own scripts
and binaries run unchanged: ``minilb lab exec h1 python2 client.pyc``. The prefix (``--prefix``
or ``$MINILB_LAB_PREFIX``, default ``mlb``) lets tests build their own lab beside an
instructor's without touching it. ``minilb demo --lab`` runs the live demo across these hosts
(``minilb.lab_cluster``).

Why not Mininet's own Python API, even where it is installed: a Mininet network lives only as
long as the Python process that built it (its hosts are shells attached to that process), so a
``lab up`` that returns would need a daemon; its Linux-bridge switches and their ports live in
the machine's own namespace under fixed names (``s1``, ``s1-eth1``), so two labs side by side
would collide; and its clean-up (``mn -c``) kills processes by name and deletes links it does
not own. Named namespaces outlive the command, keep every name inside the lab, and go with one
``ip netns delete`` each.
"""

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence

PREFIX_ENV = "MINILB_LAB_PREFIX"
DEFAULT_PREFIX = "mlb"
PORT = 80
BALANCER = "lb1"
BALANCER_ADDRESS = "10.0.0.1"  # toward the clients; 192.168.0.1 toward the servers
CLIENTS = {f"h{i}": f"10.0.0.{100 + i}" for i in range(1, 6)}
SERVERS = {f"serv{i}": f"192.168.0.{100 + i}" for i in range(1, 4)}
HOSTS = (BALANCER, *CLIENTS, *SERVERS)
SWITCHES = "switches"  # the namespace of the bridges s1 (clients' side) and s2 (servers' side)
# (host, its interface, its address, switch, the switch's port), named as Mininet names them.
LINKS = (
    *((host, f"{host}-eth0", f"{ip}/8", "s1", f"s1-eth{i}")
      for i, (host, ip) in enumerate(CLIENTS.items(), 1)),
    (BALANCER, "lb1-eth0", f"{BALANCER_ADDRESS}/8", "s1", f"s1-eth{len(CLIENTS) + 1}"),
    *((host, f"{host}-eth0", f"{ip}/24", "s2", f"s2-eth{i}")
      for i, (host, ip) in enumerate(SERVERS.items(), 1)),
    (BALANCER, "lb1-eth1", "192.168.0.1/24", "s2", f"s2-eth{len(SERVERS) + 1}"),
)
STOP_TIMEOUT = 5.0  # seconds a process in the lab gets between SIGTERM and SIGKILL
STOP_ROUNDS = 5


class LabError(ValueError):
    """The lab cannot be built, used or removed; the message says why, in one line."""


def namespace(prefix: str, host: str) -> str:
    return f"{prefix}-{host}"


def lab_namespaces(prefix: str) -> list[str]:
    """Every namespace a lab of ``prefix`` owns: its hosts', then its switches'."""
    return [namespace(prefix, host) for host in (*HOSTS, SWITCHES)]


def check_prefix(prefix: str) -> str:
    # No "-": then no lab's names can be another prefix's (``a`` would own ``a-b-h1``).
    if not re.fullmatch(r"[a-z][a-z0-9]{0,11}", prefix):
        raise LabError(f"bad lab prefix {prefix!r}: expected 1-12 lowercase letters and digits, "
                       "starting with a letter")
    return prefix


def check_can_run() -> None:
    """One clear line, before anything is made, where the lab cannot work."""
    if sys.platform != "linux":
        raise LabError("minilb lab needs Linux network namespaces")
    if os.geteuid() != 0:
        raise LabError("minilb lab needs root (it creates network namespaces): run it as root")
    if shutil.which("ip") is None:
        raise LabError("minilb lab needs the 'ip' command (Debian: apt-get install iproute2)")
    _ip("netns", "list")  # says so if this kernel or container has no network namespaces


def _ip(*args: str) -> str:
    result = subprocess.run(["ip", *args], capture_output=True, text=True)
    if result.returncode != 0:
        reason = (result.stderr.strip().splitlines() or ["failed"])[-1]
        raise LabError(f"'ip {' '.join(args)}': {reason}")
    return result.stdout


def existing_namespaces(prefix: str) -> list[str]:
    """The namespaces of this lab that exist now (exact names only: nothing else is ours)."""
    present = {line.split()[0] for line in _ip("netns", "list").splitlines() if line.strip()}
    return [name for name in lab_namespaces(prefix) if name in present]


def lab_up(prefix: str) -> float:
    """Build the lab; the seconds it took. Refuses if any part of it exists already."""
    check_can_run()
    if found := existing_namespaces(prefix):
        raise LabError(f"lab {prefix!r} is already up ({len(found)} namespaces, e.g. "
                       f"{found[0]}): run 'minilb lab down --prefix {prefix}' first")
    started = time.monotonic()
    try:
        _build(prefix)
    except BaseException:
        lab_down(prefix)  # leave nothing half-built behind
        raise
    return time.monotonic() - started


def _build(prefix: str) -> None:
    switches = namespace(prefix, SWITCHES)
    for name in lab_namespaces(prefix):
        _ip("netns", "add", name)
        _ip("-n", name, "link", "set", "lo", "up")
    for bridge in ("s1", "s2"):
        _ip("-n", switches, "link", "add", bridge, "type", "bridge")
        _ip("-n", switches, "link", "set", bridge, "up")
    for host, interface, address, bridge, port in LINKS:
        inside = namespace(prefix, host)
        # Created in the switches' namespace with its peer put straight into the host's: not
        # even for a moment does a lab interface exist in the machine's own namespace.
        _ip("-n", switches, "link", "add", port, "type", "veth",
            "peer", "name", interface, "netns", inside)
        _ip("-n", switches, "link", "set", port, "master", bridge, "up")
        _ip("-n", inside, "addr", "add", address, "dev", interface)
        _ip("-n", inside, "link", "set", interface, "up")


def lab_down(prefix: str) -> list[str]:
    """Stop every process inside the lab, then delete its namespaces; the ones deleted."""
    check_can_run()
    found = existing_namespaces(prefix)
    # Again and again: a balancer being stopped may still fork a child. A namespace deleted
    # with a process in it would live on, unnamed, with its links.
    for _ in range(STOP_ROUNDS):
        pids = {int(pid) for name in found for pid in _ip("netns", "pids", name).split()}
        pids.discard(os.getpid())  # 'minilb lab exec h1 minilb lab down' stops the others
        if not pids:
            break
        _stop_all(pids)
    else:
        raise LabError(f"processes keep starting in lab {prefix!r}: not removed, try again")
    for name in found:
        _ip("netns", "delete", name)  # takes its interfaces, and so every link, with it
    return found


def _stop_all(pids: set[int]) -> None:
    """SIGTERM, then SIGKILL what is still there after ``STOP_TIMEOUT`` seconds."""
    for pid in pids:
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    while pids and time.monotonic() < deadline:
        time.sleep(0.05)
        pids = {pid for pid in pids if _alive(pid)}
    for pid in pids:
        _signal(pid, signal.SIGKILL)


def _signal(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie is done
    except (OSError, IndexError):
        return False


def require_up(prefix: str) -> None:
    check_can_run()
    missing = set(lab_namespaces(prefix)) - set(existing_namespaces(prefix))
    if missing:
        raise LabError(f"lab {prefix!r} is not up (no namespace {sorted(missing)[0]}): "
                       f"run 'minilb lab up --prefix {prefix}' first")


def lab_exec(prefix: str, host: str, command: Sequence[str]) -> int:
    """Run ``command`` on ``host`` (its exit code): any program, the course's own included."""
    if host not in HOSTS:
        raise LabError(f"unknown lab host {host!r}: expected one of {', '.join(HOSTS)}")
    if not command:
        raise LabError(f"no command to run on {host}")
    require_up(prefix)
    code = subprocess.run(["ip", "netns", "exec", namespace(prefix, host), *command]).returncode
    return code if code >= 0 else 128 - code  # killed by a signal: the shell's convention


# The command line ----------------------------------------------------------------------------


def default_prefix() -> str:
    return os.environ.get(PREFIX_ENV, DEFAULT_PREFIX)


def add_prefix_argument(parser: argparse.ArgumentParser, flag: str = "--prefix") -> None:
    parser.add_argument(flag, default=None, metavar="PREFIX",
                        help=f"names of the lab's namespaces start with PREFIX- (default "
                        f"${PREFIX_ENV} or {DEFAULT_PREFIX})")


def register(subcommands: argparse._SubParsersAction) -> None:
    lab = subcommands.add_parser("lab", help="the course's network on namespaces (root)")
    actions = lab.add_subparsers(dest="action", required=True, metavar="ACTION")
    up = actions.add_parser("up", help="build lb1, h1..h5, serv1..3 and the two switches")
    exec_ = actions.add_parser("exec", help="run a command on a lab host")
    down = actions.add_parser("down", help="stop the lab's processes, remove all it made")
    for parser in (up, exec_, down):
        add_prefix_argument(parser)
    exec_.add_argument("host", metavar="HOST", help=", ".join(HOSTS))
    # Not dest "command": that one names the minilb command (``minilb lab: error: ...``).
    exec_.add_argument("program", nargs=argparse.REMAINDER, metavar="CMD...")
    lab.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    prefix = check_prefix(args.prefix or default_prefix())
    if args.action == "up":
        seconds = lab_up(prefix)
        print(f"lab {prefix!r} up in {seconds:.2f} s: lb1 {BALANCER_ADDRESS} and 192.168.0.1, "
              f"h1..h5 10.0.0.101-105, serv1..3 192.168.0.101-103 "
              f"(namespaces {namespace(prefix, '*')})", flush=True)
        return 0
    if args.action == "exec":
        return lab_exec(prefix, args.host, args.program)
    removed = lab_down(prefix)
    print(f"lab {prefix!r} down: removed {len(removed)} namespaces" if removed
          else f"lab {prefix!r} was not up: nothing to remove", flush=True)
    return 0
