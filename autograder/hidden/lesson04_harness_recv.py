"""Harness for ``recv_exactly``: the harness plays the peer, the student's function reads.

``run(recv_exactly, peer, data, size, timeout)`` opens a loopback TCP connection. The student's
function reads one end in a forked child, so a call that never returns can still be stopped and
named; the harness plays the peer on the other end, sending ``data`` in the way ``peer`` says:

- ``drip``: one byte at a time, a moment apart;
- ``burst``: all at once, before the call (more bytes than ``size``: the rest must stay unread);
- ``pieces``: the first byte; once the reader has taken it, all the rest at once (more bytes
  than ``size``: a reader that asks ``recv`` for more than the bytes still missing reads past
  the message);
- ``closes``: the first byte, then the end of the stream;
- ``silent``: the first byte, then nothing;
- ``slow-drip``: one byte every fifth of ``timeout``, so the whole read takes longer than that
  while no single byte is late;
- ``invalid``: all at once, then a call with this invalid ``size`` or ``timeout``, then a valid
  call on the same socket (whose result is ``valid_read``).

Answers ``{"returned": text or None, "raised": names or None, "seconds": float, "unread": text,
"blocked": bool, "never_returned": bool, "valid_read": text or None}``; bytes as latin-1 text.
"""

import json
import os
import select
import socket
import threading

from autograder.hidden.lesson04_harness_tools import (
    SLACK,
    exception_names,
    exit_code,
    fork,
    leave,
    monotonic,
    setting_up,
    sleep,
    tcp_pair,
)

DRIP_GAP = 0.02  # seconds between the bytes of a drip
MAX_UNREAD = 64


def _drip(peer: socket.socket, data: bytes, gap: float) -> None:
    for byte in data:
        peer.sendall(bytes([byte]))
        sleep(gap)


def _taken(watch: socket.socket) -> None:
    """Until the reader has taken every byte that arrived (``watch``: our copy of its end)."""
    deadline = monotonic() + SLACK
    while monotonic() < deadline:
        try:
            watch.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        except OSError:  # BlockingIOError: nothing left to take
            return
        sleep(0.002)


def _play(peer: socket.socket, kind: str, data: bytes, timeout: float,
          watch: socket.socket | None) -> None:  # fmt: skip
    try:
        if kind == "pieces" and watch is not None:
            peer.sendall(data[:1])
            _taken(watch)
            peer.sendall(data[1:])
        elif kind == "drip":
            _drip(peer, data, DRIP_GAP)
        elif kind == "slow-drip":
            _drip(peer, data, timeout / 5)
        elif kind in ("closes", "silent"):
            peer.sendall(data[:1])
            if kind == "closes":
                peer.shutdown(socket.SHUT_WR)
    except OSError:  # the reader is gone already
        pass


def _as_text(value: object) -> str | None:
    return bytes(value).decode("latin-1") if type(value) in (bytes, bytearray) else None


def _unread(sock: socket.socket) -> str:
    sock.setblocking(False)
    try:
        return sock.recv(MAX_UNREAD).decode("latin-1")
    except OSError:
        return ""


def _read_in_child(recv_exactly, sock, size, timeout, report_fd, then_valid) -> None:  # noqa: ANN001
    """Runs in the forked child: call, measure, report through the pipe, leave. Never returns."""
    report: dict = {"returned": None, "raised": None, "valid_read": None}
    try:
        started = monotonic()
        try:
            report["returned"] = _as_text(recv_exactly(sock, size, timeout))
        except BaseException as error:  # noqa: BLE001  (sys.exit too: it is reported)
            report["raised"] = exception_names(error)
        report["seconds"] = monotonic() - started
        if then_valid:
            try:
                report["valid_read"] = _as_text(recv_exactly(sock, 2, 2.0))
            except BaseException:  # noqa: BLE001
                pass
        report["unread"] = _unread(sock)
        os.write(report_fd, json.dumps(report).encode())
    finally:
        leave(0)


def _report(fd: int, seconds: float) -> dict | None:
    """The child's report, if it comes within ``seconds``."""
    deadline, data = monotonic() + seconds, b""
    while True:
        left = deadline - monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            return None
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            return json.loads(data) if data else None
        data += chunk


def _wait_readable(sock: socket.socket, size: int) -> None:
    """Until ``size`` bytes have arrived (so the student's first recv finds them all)."""
    deadline = monotonic() + SLACK
    while monotonic() < deadline:
        if len(sock.recv(size, socket.MSG_PEEK)) >= size:
            return
        sleep(0.005)


def run(recv_exactly, peer: str, data: bytes, size: object, timeout: object) -> dict:  # noqa: ANN001
    with setting_up():
        ours, theirs = tcp_pair()
        report_r, report_w = os.pipe()
        if peer in ("burst", "invalid"):
            ours.sendall(data)
            _wait_readable(theirs, len(data))
        pid = fork()
    if pid == 0:
        ours.close()
        os.close(report_r)
        _read_in_child(recv_exactly, theirs, size, timeout, report_w, peer == "invalid")
    watch = theirs.dup() if peer == "pieces" else None  # to see when the reader took a byte
    theirs.close()
    os.close(report_w)
    seconds = timeout if isinstance(timeout, int | float) and timeout > 0 else 1.0
    player = threading.Thread(target=_play, args=(ours, peer, data, seconds, watch), daemon=True)
    with setting_up():
        player.start()
    try:
        report = _report(report_r, seconds + SLACK)
        blocked = report is None
        if blocked:  # end the stream: a blocked recv returns b"" and the call may come back
            ours.shutdown(socket.SHUT_RDWR)
            report = _report(report_r, 1.0)
    finally:
        exit_code(pid, 0.5)
        player.join(timeout=seconds + SLACK)
        ours.close()
        if watch is not None:
            watch.close()
        os.close(report_r)
    if report is None:
        return {"blocked": True, "never_returned": True}
    if report["raised"] and report["raised"][0] == "NotImplementedError":
        raise NotImplementedError()
    return {**report, "blocked": blocked, "never_returned": False}
