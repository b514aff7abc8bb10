"""Lesson 4's scenarios, played by the GRADER: its own peers, its own clock, its own /proc.

Runs in the grader's process (``autograder/TRUST.md``). The student's function runs in the
sandbox on sockets the grader made and passed in (``SandboxedStudent.call(..., fds=...)``);
``lesson04_harness_call.py`` only calls it there. Every observation below is the grader's:
the bytes its peers received and whether their connections ended, the sandbox's children and
descriptors read from outside (``lesson04_harness_procfs``), the time on the grader's clock.
The function's return value is its answer, checked like any other; nothing the sandbox says
about what happened in there is believed.

Each scenario answers a dict (the keys the judges in ``lesson04`` read). Waits are driven by
events; a wall-clock deadline is only a safety net, and ``"safety_net": True`` says one was
hit, so the grader runs that scenario once more before it takes a point.
A call that failed for another reason than the student's function raising is raised as is.
"""

import contextlib
import os
import socket
import struct
import threading
import time

from autograder.contract import StudentCallError
from autograder.hidden import lesson04_harness_procfs as procfs

SLACK = 1.5  # seconds of grace on every safety net
HUNG, GONE = "hung", "gone"  # a child the grader had to kill; one someone else collected
BLOCKED_AFTER = 1.0  # seconds a reap may take before the grader frees the running child
DRIP_GAP = 0.02
# A read that waits on a silent peer costs next to no CPU time; a polling loop costs about the
# whole wait (less on a busy machine, hence a low share; never more for a correct read).
BUSY_SECONDS, BUSY_SHARE = 0.1, 0.2


def marker(index: int) -> dict:
    """An argument that becomes the ``index``-th socket passed in with the call."""
    return {"__socket__": index}


def tcp_pair() -> tuple[socket.socket, socket.socket]:
    """Both ends of a fresh loopback TCP connection, blocking: (the grader's, the sandbox's)."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        ours = socket.create_connection(listener.getsockname()[:2])
        theirs, _ = listener.accept()
    ours.settimeout(None)
    return ours, theirs


def read_until_closed(sock: socket.socket, seconds: float) -> tuple[bytes, bool]:
    """What the peer sends within ``seconds`` (at most 256 bytes), and whether it then closed."""
    deadline, data = time.monotonic() + seconds, b""
    while len(data) < 256:
        left = deadline - time.monotonic()
        if left <= 0:
            return data, False
        sock.settimeout(left)
        try:
            chunk = sock.recv(256 - len(data))
        except TimeoutError:
            return data, False
        except OSError:
            return data, True
        if not chunk:
            return data, True
        data += chunk
    return data, False


def waiting(sock: socket.socket) -> bytes:
    """The bytes waiting on ``sock`` now, without waiting or changing its mode."""
    try:
        return sock.recv(64, socket.MSG_DONTWAIT)
    except OSError:
        return b""


def call(student: object, source: str, function: str, args: list, sockets: list,
         seconds: float) -> tuple[object, StudentCallError | None]:  # fmt: skip
    """(the answer, None) or (None, the exception the student's function raised)."""
    try:
        fds = tuple(sock.fileno() for sock in sockets)
        return student.call(function, *args, timeout=seconds, harness=source, fds=fds), None
    except StudentCallError as error:
        if error.kind != "raised" or error.exc_type == "NotImplementedError":
            raise
        return None, error


def names(error: StudentCallError | None) -> list[str] | None:
    return None if error is None else [error.exc_type, *error.exc_bases]


def serving(student: object) -> int:
    pid = getattr(student, "serving_pid", None)
    if pid is None:
        raise StudentCallError("crashed", message="the sandbox's process could not be found")
    return pid


# --- recv_exactly -----------------------------------------------------------------------------


def _play(peer: socket.socket, kind: str, data: bytes, seconds: float, watch: socket.socket
          ) -> None:  # fmt: skip
    with contextlib.suppress(OSError):
        if kind == "pieces":
            peer.sendall(data[:1])
            procfs.wait_until(lambda: waiting_peek(watch), SLACK)  # it arrived,
            procfs.wait_until(lambda: not waiting_peek(watch), SLACK)  # and the reader took it
            peer.sendall(data[1:])
        elif kind in ("drip", "slow-drip"):
            for byte in data:
                peer.sendall(bytes([byte]))
                time.sleep(DRIP_GAP if kind == "drip" else seconds / 5)
        elif kind in ("closes", "silent"):
            peer.sendall(data[:1])
            if kind == "closes":
                peer.shutdown(socket.SHUT_WR)


def waiting_peek(sock: socket.socket) -> bytes:
    try:
        return sock.recv(64, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except OSError:
        return b""


def recv(student: object, source: str, peer: str, data: bytes, size: object, timeout: object,
         mode: str = "blocking") -> dict:  # fmt: skip
    """``mode``: the reader's end goes in blocking, or (``"non-blocking"``) set so by the
    grader; ``blocking_after`` says what the sandbox's descriptor of it was after the call."""
    ours, theirs = tcp_pair()
    theirs.setblocking(mode != "non-blocking")
    inode = os.fstat(theirs.fileno()).st_ino  # how the sandbox's descriptor of it is found
    watch = theirs.dup()  # the grader's view of the reader's end: what it left unread
    seconds = timeout if type(timeout) in (int, float) and timeout > 0 else 1.0
    if peer in ("burst", "invalid"):
        ours.sendall(data)
        procfs.wait_until(lambda: len(waiting_peek(watch)) >= len(data), SLACK)
    player = threading.Thread(target=_play, args=(ours, peer, data, seconds, watch), daemon=True)
    blocked = threading.Event()

    def unblock() -> None:  # a blocked recv returns b"" once the stream ends
        blocked.set()
        with contextlib.suppress(OSError):
            ours.shutdown(socket.SHUT_RDWR)

    guard = threading.Timer(seconds + SLACK, unblock)
    player.start()
    guard.start()
    pid = getattr(student, "serving_pid", None)
    cpu = procfs.cpu_seconds(pid) if pid else 0.0
    started = time.monotonic()
    try:
        answer, error = call(student, source, "recv_exactly", ["call", marker(0), size, timeout],
                             [theirs], seconds + 3 * SLACK)  # fmt: skip
    except StudentCallError as failure:
        if failure.kind != "timeout":
            raise
        return {"blocked": True, "never_returned": True}
    finally:
        elapsed = time.monotonic() - started
        guard.cancel()
        player.join(timeout=seconds + SLACK)
        theirs.close()
    busy = (procfs.cpu_seconds(pid) - cpu if pid else 0.0) > max(BUSY_SECONDS, BUSY_SHARE * elapsed)
    # Read before the next call: until then the sandbox holds the socket it was given.
    blocking_after = procfs.socket_blocking(pid, inode) if pid else None
    seen = {"returned": _text(answer), "raised": names(error), "seconds": elapsed, "busy": busy,
            "message_nonempty": None if error is None else error.message_nonempty,
            "blocked": blocked.is_set(), "never_returned": False, "valid_read": None,
            "safety_net": blocked.is_set(), "blocking_after": blocking_after}  # fmt: skip
    if peer == "invalid":
        again, _ = call(student, source, "recv_exactly", ["call", marker(0), 2, 2.0],
                        [watch], 2.0 + 3 * SLACK)  # fmt: skip
        seen["valid_read"] = _text(again)
    seen["unread"] = waiting(watch).decode("latin-1")
    sent = data[:1] if peer in ("closes", "silent") else data  # all the grader's peer sent
    seen["took_bytes"] = len(seen["unread"]) < len(sent)  # some are no longer waiting: read
    ours.close()
    watch.close()
    return seen


def _text(value: object) -> str | None:
    return value.decode("latin-1") if type(value) is bytes else None


# --- spawn_relay_child ------------------------------------------------------------------------


def exit_code(pid: int, child: int, seconds: float) -> int | str:
    """The exit code of the serving process's child ``child`` (its pid in the sandbox) within
    ``seconds``, read from /proc: ``HUNG`` if the grader had to kill it, ``GONE`` if it was
    collected already (or never was its child)."""

    def find() -> procfs.Child | None:
        return next((found for found in procfs.children(pid) if found.pid == child), None)

    if procfs.wait_until(lambda: getattr(find(), "state", "Z") == "Z", seconds):
        found = find()
        return found.code if found is not None else GONE
    found = find()
    if found is not None:
        procfs.kill(found)
        procfs.wait_until(lambda: getattr(find(), "state", "Z") == "Z", SLACK)
    return HUNG


REFUSALS = {"hook-fails": "RuntimeError", "hook-refuses": "ConnectionError"}  # on_reply raises


def _reset(sock: socket.socket) -> None:
    """Close ``sock`` so that its peer sees a reset, not an orderly end."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def relay(student: object, source: str, server: str, reply: bytes, timeout: float) -> dict:
    pid = serving(student)
    client_peer, client = tcp_pair()
    backend, server_end = tcp_pair()
    told_peer, told = socket.socketpair()
    if server in ("answers", "hook-fails", "hook-refuses"):
        server_end.sendall(reply)
    elif server == "closes":
        server_end.shutdown(socket.SHUT_RDWR)
    elif server == "resets":
        _reset(server_end)
    inodes = {name: os.fstat(sock.fileno()).st_ino
              for name, sock in (("client", client), ("backend", backend), ("told", told))}
    before = procfs.socket_inodes(pid)
    try:
        answer, error = call(student, source, "spawn_relay_child",
                             ["relay", marker(0), marker(1), timeout, marker(2),
                              REFUSALS.get(server)], [client, backend, told],
                             timeout + 3 * SLACK)  # fmt: skip
        for sock in (client, backend, told):
            sock.close()  # the sandbox has its own copies now
        if error is not None:
            raise error
        after = procfs.socket_inodes(pid)
        child = answer if type(answer) is int and answer > 0 else None
        known = {found.pid for found in procfs.children(pid)}
        seen: dict = {
            "pid": child is not None and child in known,
            "client_open": inodes["client"] in after,
            "backend_open": inodes["backend"] in after,
            "new_sockets": len(after - before - set(inodes.values())),
        }
        deadline = time.monotonic() + timeout + SLACK
        if server == "answers" and seen["pid"]:
            got, ended = read_until_closed(client_peer, timeout + SLACK)
            seen.update(reply=got.decode("latin-1"), ended=ended)
        if seen["pid"]:
            seen["code"] = exit_code(pid, child, max(deadline - time.monotonic(), 0.5))
            seen["safety_net"] = seen["code"] == HUNG
        else:
            seen["code"] = None
        if server in REFUSALS and seen["pid"]:
            seen["reply"] = waiting(client_peer).decode("latin-1")
        told_peer.setblocking(False)
        seen["on_reply"] = waiting(told_peer).decode("latin-1") or None
        return seen
    finally:
        for sock in (client_peer, server_end, told_peer, client, backend, told):
            sock.close()


# --- reap_children ----------------------------------------------------------------------------


def reap(student: object, source: str, exits: list[int], one_running: bool) -> dict:
    """The grader asks for children with exit codes of its choosing, checks in /proc that they
    are there (zombies, and one still running), then lets the student's function reap them."""
    pid = serving(student)
    hold_peer, hold = socket.socketpair()
    earlier = {child.host_pid for child in procfs.children(pid) if child.state != "Z"}

    def ours() -> list[procfs.Child]:  # children still running from before are not ours
        return [child for child in procfs.children(pid) if child.host_pid not in earlier]

    try:
        _, error = call(student, source, "reap_children", ["children", exits, marker(0)
                                                            if one_running else None],
                        [hold], 5 * SLACK)  # fmt: skip
        hold.close()
        if error is not None:  # a fork refused: the sandbox's process limit, say
            raise StudentCallError("raised", "HarnessFailure", "the children could not start")

        def ready() -> bool:
            found = ours()
            return (sum(child.state == "Z" for child in found) == len(exits)
                    and sum(child.state != "Z" for child in found) == one_running)

        if not procfs.wait_until(ready, SLACK):  # they are zombies when the call returns
            return {"tampered": True}
        found = ours()
        zombies = {child.code: child.pid for child in found if child.state == "Z"}
        if sorted(zombies) != sorted(exits):
            return {"tampered": True}
        pids = [zombies[code] for code in exits]
        running = next((child.pid for child in found if child.state != "Z"), None)
        released = threading.Event()

        def release() -> None:
            released.set()
            with contextlib.suppress(OSError):
                hold_peer.sendall(b"go")

        watchdog = threading.Timer(BLOCKED_AFTER, release)
        watchdog.start()
        started = time.monotonic()
        try:
            answer, error = call(student, source, "reap_children", ["call"], [],
                                 BLOCKED_AFTER + 3 * SLACK)  # fmt: skip
        finally:
            watchdog.cancel()
            watchdog.join()
        seen: dict = {"raised": names(error), "seconds": time.monotonic() - started,
                      "blocked": released.is_set(), "safety_net": released.is_set()}
        left = {child.pid for child in procfs.children(pid) if child.state == "Z"}
        seen["left"] = sum(child in left for child in pids)
        seen.update(_reported(answer, pids, running))
        return seen
    finally:
        with contextlib.suppress(OSError):
            hold_peer.sendall(b"go")
        hold_peer.close()
        hold.close()
        procfs.wait_until(lambda: all(child.state == "Z" for child in ours()), SLACK)


def _reported(answer: object, pids: list[int], running: int | None) -> dict:
    if not (isinstance(answer, dict) and answer.get("kind") == "dict"):
        kind = "NoneType" if answer is None else "other"
        return {"kind": kind, "codes": [None] * len(pids), "others": 0,
                "running_reported": False}  # fmt: skip
    items = {key: value for key, value in answer["items"] if type(key) is int}
    return {
        "kind": "dict",
        "codes": [items.get(child) for child in pids],
        "others": sum(key not in {*pids, running} for key, _ in answer["items"]),
        "running_reported": running is not None and running in items,
    }
