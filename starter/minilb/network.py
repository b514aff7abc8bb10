"""The socket-and-fork core of the live system; lesson 4's exercises.

Four functions, each one step of a forking relay, and a small relay server built from them:

- ``recv_exactly``: TCP delivers a stream, not messages, so one ``recv`` may return part of a
  message. Read in a loop until the whole message is in, within one deadline.
- ``spawn_relay_child``: fork a child that waits for a server's reply and passes it on to the
  client, so the parent is free to accept the next client at once.
- ``reap_children``: collect every child that has finished, without ever waiting for one that
  has not (a child nobody collects stays in the process table as a zombie).
- ``serve_forking``: accept, read and check each request, choose its server in the parent (a
  child's memory is a copy: whatever it records is lost when it exits), then fork.

The balancer (``minilb balancer``) and the relay (``minilb relay``) call these functions through
this module, so ``--student NOTEBOOK`` can swap in a student's versions.
"""

import contextlib
import os
import socket
import time
from collections.abc import Callable

from minilb.costs import Request
from minilb.protocol import REQUEST_SIZE, ProtocolError, close_with, error_reply, parse_request

EXIT_BACKEND_FAILED = 3  # a relay child's exit code: the server failed, the client got no reply


def recv_exactly(sock: socket.socket, size: int, timeout: float) -> bytes:
    """Read exactly ``size`` bytes from ``sock`` within ``timeout`` seconds in total.

    Never reads past ``size`` bytes: whatever the peer sends after them stays in the socket
    for the next read. Raises ``TimeoutError`` when the deadline passes (not before, however
    the bytes trickle in) and ``ConnectionError`` when the peer closes first (saying after how
    many of the ``size`` bytes), so a caller can tell a slow peer from a gone one;
    ``ValueError`` if ``size`` is not a positive int (``True``, ``2.0`` and ``"2"`` are not) or
    ``timeout`` is not positive. Leaves the socket's timeout (and blocking mode) as it found
    it, whether it returns or raises: the socket is the caller's.

    >>> left, right = socket.socketpair()
    >>> right.sendall(b"M"); right.sendall(b"5")
    >>> recv_exactly(left, 2, timeout=1.0)
    b'M5'
    """
    # YOUR CODE HERE
    raise NotImplementedError()


def spawn_relay_child(
    client: socket.socket,
    backend: socket.socket,
    timeout: float,
    on_reply: Callable[[bytes], None] | None = None,
) -> int:
    """Fork a child that relays the server's reply on ``backend`` to ``client``; its pid.

    The child reads the 2-byte reply within ``timeout`` seconds, calls ``on_reply(reply)`` if
    given (it may raise ``ConnectionError`` to refuse the reply), sends the reply to the client
    and closes it, then exits with code 0. If the server fails (any ``OSError``: a timeout, an
    early close, a reset; or ``on_reply`` refusing the reply) the child exits with
    ``EXIT_BACKEND_FAILED`` (3) within ``timeout`` without answering the client; on any other
    error it exits with 1, the client not answered either. The child never returns: it leaves
    with ``os._exit(code)``, so none of the parent's code after the fork runs in it.

    The parent closes its copy of ``backend`` (the child owns that connection now) but keeps
    ``client`` open: if the child fails, the parent may still retry the request elsewhere.
    """
    # YOUR CODE HERE
    raise NotImplementedError()


def reap_children() -> dict[int, int]:
    """Collect every finished child of this process, never waiting for a running one.

    Returns ``{pid: exit code}`` (a negative code -N: killed by signal N); ``{}`` if no child
    has finished, or there are no children at all.
    """
    # YOUR CODE HERE
    raise NotImplementedError()


def serve_forking(
    listener: socket.socket,
    route: Callable[[Request], tuple[str, int]],
    connections: int | None,
    timeout: float = 2.0,
) -> dict[int, int]:
    """Relay ``connections`` clients (``None``: for ever) to the servers that ``route`` names.

    ``connections`` counts every client accepted, bad ones too: ``0`` returns ``{}`` without
    accepting anyone, and a negative count raises ``ValueError``.

    For each client, in the parent: accept, read and check its request (within ``timeout``
    seconds; a bad, short or silent request is answered with an ``ERR`` line), ask
    ``route(request)`` for a server address, open a new connection to it and send the request
    (a server that refuses the connection: that client gets an ``ERR`` line, and serving goes
    on). Then a child relays the reply (``spawn_relay_child``), the parent closes its copy of
    the client socket and moves on to the next client at once. Finished children are reaped
    on every round. Returns ``{pid: exit code}`` of every child it started, once all of them
    have finished.
    """
    # YOUR CODE HERE
    raise NotImplementedError()
