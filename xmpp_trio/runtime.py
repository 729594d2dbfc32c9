"""The server process's runtime on its core (``[runtime]``,
:mod:`xmpp_trio.runtime_config`; docs/runtime.md): the GIL's switch
interval, the priority of the server's own threads beside the event loop,
and the time each pass of Trio's scheduler takes.

Theory of operation: a message waits, between its arrival and its delivery,
for the scheduler pass in progress to end and for its own pass (every task
runnable then: with many clients, many readers). A pass is long when it has
much to do, when the loop thread is off the CPU (another thread of the
server, or another process, on the same core) or when it waits for the GIL
(a thread running Python code keeps it up to the switch interval once the
loop asks). :class:`PassTimes` measures the first two (wall clock and the
loop thread's CPU time per pass); :func:`lower_thread_priority` lets the
loop preempt the archive writer's SQLite work (it holds no GIL there, but
shares the core: at equal priority Linux gives each half of it);
``switch_interval`` bounds the third.
"""

from __future__ import annotations

import bisect
import contextlib
import os
import sys
import threading
import time
from collections.abc import Iterator
from typing import Final

import trio

__all__ = [
    "BOUNDS_MS",
    "PassTimes",
    "loop_statistics",
    "lower_thread_priority",
    "status_lines",
    "timing",
]

#: Upper bounds (ms) of the histogram's buckets; the last bucket is open.
BOUNDS_MS: Final = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0)


def lower_thread_priority(nice: int) -> bool:
    """Add ``nice`` (0-19) to the calling thread's niceness (Linux, where
    ``setpriority`` on a thread id sets that thread only; raising it needs no
    privilege). Whether it was changed (never elsewhere, nor for 0)."""
    if nice <= 0 or not sys.platform.startswith("linux"):
        return False
    tid = threading.get_native_id()
    try:
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + nice))
    except OSError:  # a sandbox that forbids it: the thread runs as it is
        return False
    return True


class PassTimes(trio.abc.Instrument):
    """A Trio instrument: how long each pass of the scheduler takes, from
    the end of its wait for I/O to the start of the next (wall clock, in a
    histogram of :data:`BOUNDS_MS`), and the loop thread's CPU time over the
    passes (the rest of their time it was off the CPU or waiting for the
    GIL). Two clock reads and a thread-CPU read a pass."""

    def __init__(self) -> None:
        self.counts = [0] * (len(BOUNDS_MS) + 1)
        self.passes = 0
        self.wall = 0.0
        self.cpu = 0.0
        self.longest = 0.0
        self._woke = time.perf_counter()
        self._cpu = time.thread_time()

    def after_io_wait(self, timeout: float) -> None:
        self._woke = time.perf_counter()
        self._cpu = time.thread_time()

    def before_io_wait(self, timeout: float) -> None:
        took = time.perf_counter() - self._woke
        self.cpu += time.thread_time() - self._cpu
        self.passes += 1
        self.wall += took
        if took > self.longest:
            self.longest = took
        self.counts[bisect.bisect_left(BOUNDS_MS, took * 1000.0)] += 1

    def quantile(self, q: float) -> float:
        """The upper bound (ms) of the bucket holding the ``q`` quantile of
        passes (``inf``: the open bucket; 0 before any pass)."""
        rank, seen = q * self.passes, 0
        for bound, n in zip((*BOUNDS_MS, float("inf")), self.counts, strict=True):
            seen += n
            if n and seen >= rank:
                return bound
        return 0.0

    def statistics(self) -> dict[str, object]:
        """What ``xmpp-trio status`` reports (``loop``)."""
        return {
            "passes": self.passes,
            "seconds": round(self.wall, 6),
            "cpu_seconds": round(self.cpu, 6),
            "longest_ms": round(self.longest * 1000.0, 3),
            "bounds_ms": list(BOUNDS_MS),
            "counts": list(self.counts),
            "p50_ms": self.quantile(0.5),
            "p99_ms": self.quantile(0.99),
        }


#: The instrument of the server in this process (``loop_stats``), for ``status``.
_installed: list[PassTimes] = []


def loop_statistics() -> dict[str, object] | None:
    """The running server's :meth:`PassTimes.statistics` (``None``: not timed)."""
    return _installed[-1].statistics() if _installed else None


@contextlib.contextmanager
def timing() -> Iterator[PassTimes]:
    """Within: every scheduler pass of the current Trio run is timed by a
    :class:`PassTimes` (what :func:`loop_statistics` reports)."""
    times = PassTimes()
    trio.lowlevel.add_instrument(times)
    _installed.append(times)
    try:
        yield times
    finally:
        _installed.remove(times)
        trio.lowlevel.remove_instrument(times)


def status_lines(loop: dict[str, object] | None) -> list[str]:
    """The loop's line of ``xmpp-trio status`` (none without ``loop_stats``)."""
    if not loop:
        return []
    seconds, cpu = float(str(loop["seconds"])), float(str(loop["cpu_seconds"]))
    off = 1.0 - cpu / seconds if seconds else 0.0
    return [
        f"loop: {loop['passes']} passes, p50 <= {loop['p50_ms']} ms, p99 <= {loop['p99_ms']} ms,"
        f" longest {loop['longest_ms']} ms, {seconds:.3f} s busy ({off:.0%} of it off the CPU)"
    ]
