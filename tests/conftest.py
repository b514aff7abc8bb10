"""Shared test settings: hypothesis profiles sized for a 2-core CI machine, and a guard on
the test process's signal handlers."""

import os
import signal

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", max_examples=100, deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")

# A test run started in the background by a non-interactive shell (`make test &` in a script)
# inherits SIGINT ignored, and so would every program the tests start: the Ctrl-C tests need
# what a terminal gives, Python's own handler.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(autouse=True)
def _stop_signals_left_as_found():
    """A test (or the kit code it calls) that leaves SIGINT or SIGTERM ignored in the test
    process makes every program started later ignore Ctrl-C: fail that test, not a later one."""
    before = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
    yield
    after = {number: signal.getsignal(number) for number in before}
    for number, handler in before.items():
        signal.signal(number, handler)
    assert after == before, f"signal handlers changed: {before} -> {after}"
