"""The part of lesson 4's scenarios that must run in the sandbox: it only calls.

Runs in the STUDENT's process, so nothing it says is believed (``autograder/TRUST.md``): it
hands the student's function the sockets the grader passed in, with the lesson's other
exercises as the reference's, and returns the function's own result as plain data. Whatever the
result claims, the grader checks it against what it saw from outside: its own peers' bytes, the
sandbox's children and descriptors in its own ``/proc``, its own clock.

``run(function, action, *args)``:

- ``"call", *args``: ``function(*args)``; a dict comes back as ``{"kind": "dict", "items":
  [[key, value], ...]}`` (JSON keys are text), anything else as itself;
- ``"bytes-like", shape, data``: ``parse_request`` on a ``bytearray`` or ``memoryview``;
- ``"children", exits, hold``: forks one child per exit code (``-N``: killed by signal N),
  returns once they have all exited (zombies) and, with a ``hold`` socket, forks one more that
  runs until the grader writes to it; calls nothing;
- ``"relay", client, backend, timeout, told, refusal``: ``spawn_relay_child`` with an
  ``on_reply`` that writes what it is given to the grader's ``told`` socket, then raises
  ``refusal`` (``"RuntimeError"`` or ``"ConnectionError"``) if given;
- ``"serve", listener, addresses, refusing, refused, connections, timeout``: ``serve_forking``
  with a ``route`` that names the grader's listeners in turn, and ``refusing`` for a request
  named in ``refused``.
"""

import os
import socket

from autograder.hidden.lesson04_harness_tools import (
    call_in_parent_only,
    collect_finished,
    fork,
    getpid,
    kill,
    leave,
    reference_helpers,
)

SHAPES = {"bytearray": bytearray, "memoryview": memoryview}
REFUSALS = {"RuntimeError": RuntimeError, "ConnectionError": ConnectionError}


def _plain(result: object) -> object:
    if type(result) is not dict:
        return result
    return {"kind": "dict", "items": [[key, value if type(value) is int else None]
                                      for key, value in result.items()]}  # fmt: skip


def _bytes_like(parse_request, shape: str, data: bytes) -> dict:  # noqa: ANN001
    result = parse_request(SHAPES[shape](data))
    pair = tuple(result)[:2] if isinstance(result, tuple | list) else ()
    first, second = (*pair, None, None)[:2]
    return {
        "tuple": isinstance(result, tuple) and len(result) == 2,
        "type": first if type(first) is str else None,
        "length": second if type(second) is int else None,
        "length_kind": type(second).__name__,
    }


def _children(exits: list[int], hold: socket.socket | None) -> None:
    collect_finished()  # what earlier scenarios left: the grader has judged it
    for code in exits:
        pid = fork()
        if pid == 0:
            try:
                if code < 0:
                    kill(getpid(), -code)
            finally:
                leave(max(code, 0))
        os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)  # a zombie now, still uncollected
    if hold is not None and fork() == 0:
        try:
            hold.recv(1)
        finally:
            leave(0)


def _route(addresses: list, refusing: list, refused: list) -> object:
    turn = [0]

    def route(request: object) -> tuple[str, int]:
        try:
            name = "{}{}".format(*request)  # noqa: UP030
        except (TypeError, ValueError, IndexError):
            name = ""
        if name in refused:
            return tuple(refusing)
        turn[0] += 1
        return tuple(addresses[(turn[0] - 1) % len(addresses)])

    return route


def run(function, action: str, *args: object) -> object:  # noqa: ANN001
    if action == "bytes-like":
        return _bytes_like(function, *args)
    if action == "children":
        return _children(*args)
    if action == "relay":
        client, backend, timeout, told, refusal = args

        def on_reply(data: bytes) -> None:
            told.sendall(bytes(data)[:64])
            if refusal is not None:
                raise REFUSALS[refusal]("on_reply refuses this reply")

        args = (client, backend, timeout, on_reply)
    elif action == "serve":
        listener, addresses, refusing, refused, connections, timeout = args
        args = (listener, _route(addresses, refusing, refused), connections, timeout)
    if action in ("relay", "serve"):
        collect_finished()
    with reference_helpers(function):
        return _plain(call_in_parent_only(function, *args))
