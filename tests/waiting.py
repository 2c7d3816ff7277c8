"""Waiting on conditions, never on the clock.

The suite runs on loaded 2-core machines next to other suites: a fixed sleep or
a deadline of a second or two that is ample alone is not under load. Wait for
the condition that matters, with a deadline far beyond what it normally takes
(a passing test returns as soon as the condition holds, so a generous deadline
costs nothing unless something is really wrong).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

# Long enough for anything involving a process, a socket or the database on a
# starved machine; short enough that a real hang still fails the test.
GENEROUS = 60.0


def wait_until(
    predicate: Callable[[], T], *, timeout: float = GENEROUS, interval: float = 0.05, message: str = ""
) -> T:
    """Call ``predicate`` until it returns something truthy, and return that;
    fail with ``message`` once ``timeout`` seconds have passed."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"not within {timeout:g} s: {message or predicate!r}")
        time.sleep(interval)
