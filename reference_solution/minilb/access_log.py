"""The balancer's logs: JSON lines, one per request, and the reader that joins them.

The access log gets one line per request when the request ends: the decision (``id``,
``request``, ``server``, ``server_index``, predicted ``arrival``, ``start`` and ``finish`` in
time units since the balancer started, ``retried``) plus ``measured_finish`` and ``error``. A
request refused before it was placed (bad bytes, no server up) has ``server`` null.

The optional decisions log gets the decision alone, the moment the parent makes it, so the demo
can show each server's queue while it runs. ``read_access_log`` joins both by ``id``.

Why lines are built the way they are: the parent encodes each decision once, as the bytes of a
JSON object without its closing brace (the *prefix*). Whoever ends the request, a forked child
usually, only appends ``, "measured_finish": ..., "error": ...}``: no dict to merge and no
``json.dumps`` in the child, whose every touched page is a copy-on-write fault. Each line is
one ``os.write`` on an ``O_APPEND`` file, so lines written by concurrent children never
interleave. A line that cannot be written (a full disk, a log reader gone) is lost, never its
request, and the balancer says so once on standard error.
"""

import json
import mmap
import os


class AccessLog:
    """The access log at ``path`` and the decisions log at ``decisions_path`` (either None)."""

    def __init__(self, path: str | None, decisions_path: str | None = None) -> None:
        self.fd = _open(path)
        self.decisions_fd = _open(decisions_path)
        # One byte shared with every process forked from here on (an anonymous shared mapping
        # survives fork, unlike the rest of a child's writes): the errno of a line that could
        # not be written, so that the parent can tell the operator, once.
        self.lost = mmap.mmap(-1, 1)
        self.told = False

    def encode(self, decision: dict) -> bytes:
        """The prefix of ``decision``'s access-log line (``b""`` when nothing is logged)."""
        if self.fd is None and self.decisions_fd is None:
            return b""
        return json.dumps(decision)[:-1].encode()

    def decided(self, prefix: bytes) -> None:
        """The decisions-log line of a request just placed."""
        if self.decisions_fd is not None:
            self._write(self.decisions_fd, prefix + b"}\n")

    def served(self, prefix: bytes, measured_finish: float) -> None:
        """The line of a request answered with its echo at ``measured_finish``."""
        if self.fd is not None:
            tail = b', "measured_finish": ' + repr(measured_finish).encode()
            self._write(self.fd, prefix + tail + b', "error": null}\n')

    def failed(self, prefix: bytes, reason: str) -> None:
        """The line of a placed request answered with ``ERR reason``."""
        if self.fd is not None:
            tail = b', "measured_finish": null, "error": ' + json.dumps(reason).encode()
            self._write(self.fd, prefix + tail + b"}\n")

    def refused(self, request_id: int, what: object, reason: str) -> None:
        """The line of a request answered with ``ERR reason`` before it was placed."""
        if self.fd is not None:
            record = {"id": request_id, "request": str(what), "server": None, "error": reason}
            self._write(self.fd, json.dumps(record).encode() + b"\n")

    def lost_lines(self) -> str | None:
        """Why log lines were lost (once, the first time it is asked after one was), or None."""
        if self.told or not self.lost[0]:
            return None
        self.told = True
        return os.strerror(self.lost[0])

    def _write(self, fd: int, line: bytes) -> None:
        try:
            os.write(fd, line)
        except OSError as error:
            # The line is lost (the log's reader has gone, the disk is full), never the request:
            # a relay child must not take its own log for a failed server.
            self.lost[0] = min(error.errno or 1, 255)


def read_access_log(path: str, decisions_path: str | None = None) -> list[dict]:
    """One record per request, in request order.

    A record has ``id``, ``request``, ``server``, ``start``, ``finish`` (predicted, in units),
    ``measured_finish`` (None until it succeeded), ``error`` (None unless it failed) and
    ``retried``. With ``decisions_path``, requests placed but not finished are included too.
    """
    records: dict[int, dict] = {}
    for log_path in (decisions_path, path):
        if log_path is None or not os.path.exists(log_path):
            continue
        with open(log_path) as log:
            for line in log:
                record = json.loads(line)
                defaults = {"measured_finish": None, "error": None, "retried": False}
                records.setdefault(record["id"], defaults).update(record)
    return [records[key] for key in sorted(records)]


def _open(path: str | None) -> int | None:
    return None if path is None else os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
