"""Run a blocking call (a client waiting for its reply) beside the test."""

import threading


def in_background(fn, *args):
    """Start ``fn(*args)`` in a thread; its return value lands in ``result["value"]``."""
    result = {}
    thread = threading.Thread(target=lambda: result.setdefault("value", fn(*args)))
    thread.start()
    return thread, result
