"""The wire format, defined once.

A request is exactly two ASCII bytes ``<type><length>``: type ``V``, ``P`` or ``M``, length a
digit ``1``-``9`` (``b"M5"``). A server echoes the same two bytes once the work is done. Any
error is answered with one line ``ERR <reason>\\n``, then the connection is closed.
"""

import socket
import time

from minilb.costs import REQUEST_TYPES, Request

REQUEST_SIZE = 2
WIRE_LENGTHS = range(1, 10)


class ProtocolError(ValueError):
    """A message that breaks the wire format; the text says what is wrong."""


def encode_request(request: tuple[str, int]) -> bytes:
    """``("M", 5)`` -> ``b"M5"``; raises ``ProtocolError`` if it cannot go on the wire."""
    request_type, length = request
    if request_type not in REQUEST_TYPES or length not in WIRE_LENGTHS:
        raise ProtocolError(f"{request!r} cannot be sent: type V, P or M and length 1-9 only")
    return f"{request_type}{length}".encode("ascii")


def error_reply(reason: str) -> bytes:
    """The one-line error reply: ``ERR <reason>\\n`` (the reason kept on one line)."""
    return b"ERR " + " ".join(reason.split()).encode("ascii", "replace") + b"\n"


# Every valid message: the framework (servers, balancer, clients) checks a message it has read
# itself with one lookup. It cannot rely on parse_request, an exercise stubbed in the student
# handout; and this lookup is no parse_request either (see decode_request).
WIRE_REQUESTS: dict[bytes, Request] = {
    f"{t}{n}".encode("ascii"): Request(t, n) for t in REQUEST_TYPES for n in WIRE_LENGTHS
}


def decode_request(data: bytes) -> Request:
    """The framework's check of a message it read itself: the ``Request``, or ``ProtocolError``.

    One lookup, for ``bytes`` only. Unlike lesson 4's ``parse_request`` it takes no other
    bytes-like type, and its error does not say which part of the message is wrong.
    """
    request = WIRE_REQUESTS.get(data) if type(data) is bytes else None
    if request is None:
        raise ProtocolError(f"bad request {data!r}: not one of the 27 wire requests")
    return request


def parse_request(data: bytes) -> Request:
    """Turn two bytes from the wire into a ``Request``; ``ProtocolError`` says what is wrong.

    >>> parse_request(b"M5")
    Request(type='M', length=5)
    """
    ### BEGIN SOLUTION
    if not isinstance(data, bytes | bytearray | memoryview):  # any bytes-like message
        raise ProtocolError(f"expected bytes, got {type(data).__name__}")
    if len(data) != REQUEST_SIZE:
        raise ProtocolError(
            f"a request is exactly {REQUEST_SIZE} bytes, got {len(data)}: {bytes(data)!r}"
        )
    request_type, digit = chr(data[0]), chr(data[1])
    if request_type not in REQUEST_TYPES:
        raise ProtocolError(f"unknown request type {request_type!r}: expected V, P or M")
    if digit not in "123456789":
        raise ProtocolError(f"length must be a digit 1-9, got {digit!r}")
    return Request(request_type, int(digit))
    ### END SOLUTION


# Socket helpers shared by the servers, the balancer and the clients. Every read has a deadline:
# a peer that goes silent must never block us for ever. (``minilb.network.recv_exactly``, the
# exact-size read, is one of lesson 4's exercises.)

MAX_REPLY = 256  # an echo is 2 bytes and an error line is short; anything longer is junk


def parse_address(text: str) -> tuple[str, int]:
    """``"127.0.0.1:8000"`` -> ``("127.0.0.1", 8000)``; ``ValueError`` says what is wrong."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"bad address {text!r}: expected HOST:PORT, for example 127.0.0.1:8000")
    return host, int(port)


def open_listener(host: str = "127.0.0.1", port: int = 0, backlog: int = 1024) -> socket.socket:
    """A listening TCP socket; port 0 lets the system pick a free port."""
    return socket.create_server((host, port), backlog=backlog)


def read_until_closed(sock: socket.socket, timeout: float) -> bytes:
    """All the peer sends until it closes (at most ``MAX_REPLY`` bytes), within ``timeout``."""
    deadline = time.monotonic() + timeout
    data = b""
    while len(data) < MAX_REPLY:
        sock.settimeout(max(deadline - time.monotonic(), 0.0) or 1e-6)
        chunk = sock.recv(MAX_REPLY - len(data))
        if not chunk:
            break
        data += chunk
    return data


def close_with(sock: socket.socket, data: bytes = b"") -> None:
    """Send ``data`` (best effort), then close so the peer sees the end at once.

    ``shutdown`` matters with forking: a forked child may still hold a copy of this socket, and
    only ``shutdown`` (not ``close``) ends the connection for every copy.
    """
    try:
        if data:
            sock.sendall(data)
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # the peer is already gone: nothing left to tell it
    sock.close()
