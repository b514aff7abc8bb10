"""Harness for ``spawn_relay_child``: the harness plays both the client and the server.

``run(spawn_relay_child, server, reply, timeout)`` makes two loopback TCP connections, hands the
student's function its ends (``client`` and ``backend``) and an ``on_reply`` that passes what it
is given back through a pipe, and plays the server as ``server`` says:

- ``answers``: ``reply`` is waiting on the backend connection before the call;
- ``closes``: the server hangs up without a reply;
- ``silent``: the server never answers (the child must give up after ``timeout``);
- ``hook-fails``: ``reply`` is waiting, but ``on_reply`` raises ``RuntimeError`` once it has
  passed the reply on (not an ``OSError``: the server did not fail, the child exits with 1).

Then it reads what reaches the client while the parent still holds its copy of the client
socket (only a ``shutdown`` in the child ends the connection for both), and collects the child;
with ``hook-fails`` it collects the child first, then takes whatever reached the client.
A child that comes back into the harness instead of leaving with ``os._exit`` exits 77 at once.

Answers ``{"pid": bool (a child's pid came back), "client_open": bool, "backend_open": bool,
"new_sockets": int (others the parent kept), "code": int or "hung" or "gone" or None,
"on_reply": text or None}``, and when the server answers, ``"reply": text, "ended": bool``
(with ``hook-fails``, ``"reply": text`` only).
An exception from the student's function in the parent passes through.
"""

import contextlib
import os
import socket

from autograder.hidden.lesson04_harness_tools import (
    SLACK,
    call_in_parent_only,
    collect_finished,
    exit_code,
    getpid,
    monotonic,
    open_sockets,
    read_until_closed,
    reference_helpers,
    setting_up,
    tcp_pair,
)


def _pipe_contents(fd: int) -> str | None:
    os.set_blocking(fd, False)
    try:
        data = os.read(fd, 256)
    except BlockingIOError:
        return None
    return data.decode("latin-1") if data else None


def _waiting(sock: socket.socket) -> str:
    """The bytes waiting on ``sock`` now (up to 64), without waiting for more."""
    sock.setblocking(False)
    try:
        return sock.recv(64).decode("latin-1")
    except OSError:
        return ""


def run(spawn_relay_child, server: str, reply: bytes, timeout: float) -> dict:  # noqa: ANN001
    with setting_up():
        client_peer, client = tcp_pair()
        backend, server_end = tcp_pair()
        told_r, told_w = os.pipe()

    def on_reply(data: bytes) -> None:  # called in the child: the pipe carries it to us
        os.write(told_w, bytes(data)[:64])
        if server == "hook-fails":
            raise RuntimeError("on_reply refuses this reply")

    if server in ("answers", "hook-fails"):
        server_end.sendall(reply)
    elif server == "closes":
        server_end.shutdown(socket.SHUT_RDWR)
    client_fd, backend_fd = client.fileno(), backend.fileno()
    try:
        before = open_sockets()
        with reference_helpers(spawn_relay_child):
            pid = call_in_parent_only(spawn_relay_child, client, backend, timeout, on_reply)
        after = open_sockets()
        os.close(told_w)
        seen = {
            "pid": type(pid) is int and pid > 0 and pid != getpid(),
            "client_open": client_fd in after,
            "backend_open": backend_fd in after,
            "new_sockets": len(after - before),
        }
        deadline = monotonic() + timeout + SLACK  # for the child's whole relay
        if server == "answers" and seen["pid"]:  # while the parent still holds its copy
            got, ended = read_until_closed(client_peer, timeout + SLACK)
            seen.update(reply=got.decode("latin-1"), ended=ended)
        left = max(deadline - monotonic(), 0.5)
        seen["code"] = exit_code(pid, left) if seen["pid"] else None
        if server == "hook-fails" and seen["pid"]:  # the child is gone: what it sent is here
            seen["reply"] = _waiting(client_peer)
        seen["on_reply"] = _pipe_contents(told_r)
        return seen
    finally:
        for end in (client_peer, client, backend, server_end):
            with contextlib.suppress(OSError):  # the student's code may have closed it
                end.close()
        for fd in (told_r, told_w):
            with contextlib.suppress(OSError):
                os.close(fd)
        collect_finished()  # a child the student's function made but did not report
