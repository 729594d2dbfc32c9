"""The ``[runtime]`` section of the server configuration: how the process
shares its core between the event loop and the server's own threads
(docs/runtime.md)::

    [runtime]
    switch_interval = 5.0   # ms: sys.setswitchinterval() in xmpp-trio serve (CPython's default)
    writer_nice = 5         # the archive writer thread's niceness above the loop's (0: the same)
    loop_stats = false      # true: time every pass of Trio's scheduler (xmpp-trio status)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from .config_loader import Loader as _Loader
from .config_loader import toml_type

__all__ = ["RUNTIME_KEYS", "RuntimeConfig", "load_runtime"]

RUNTIME_KEYS: Final = ("switch_interval", "writer_nice", "loop_stats")

#: The range of ``switch_interval`` in ms: under 0.1 ms the threads would
#: hand the GIL over more often than they run; 100 ms is 20x CPython's 5 ms.
SWITCH_RANGE: Final = (0.1, 100.0)


@dataclass(frozen=True, slots=True, kw_only=True)
class RuntimeConfig:
    """``[runtime]``. ``switch_interval``: how long, in milliseconds, a
    thread that wants the GIL waits before it asks the holder to drop it
    (:func:`sys.setswitchinterval`; set by ``xmpp-trio serve`` only, the
    process is the embedder's otherwise): the longest the event loop waits
    for the archive writer's Python code. ``writer_nice``: the niceness the
    archive writer thread (xmpp_trio/archive_writer.py) adds to its own
    (Linux ``setpriority`` on the thread; 0 to 19): the loop's work preempts
    the writer's SQLite work on a shared core instead of splitting the core
    with it. ``loop_stats``: a Trio instrument times every scheduler pass
    (:mod:`xmpp_trio.loop_stats`), reported by ``xmpp-trio status``."""

    switch_interval: float = 5.0
    writer_nice: int = 5
    loop_stats: bool = False


def load_runtime(loader: _Loader, data: Mapping[str, object]) -> RuntimeConfig:
    """Read and check ``[runtime]``."""
    table = loader.table(data, "runtime", "runtime")
    loader.check_keys(table, RUNTIME_KEYS, "runtime.", "in [runtime]")
    d = RuntimeConfig()
    switch = table.get("switch_interval", d.switch_interval)
    if isinstance(switch, bool) or not isinstance(switch, int | float):
        raise loader.error(
            "runtime.switch_interval", f"must be a number (ms), got {toml_type(switch)}"
        )
    low, high = SWITCH_RANGE
    if not low <= switch <= high:  # NaN too
        raise loader.error(
            "runtime.switch_interval", f"must be between {low} and {high} (ms), got {switch}"
        )
    return RuntimeConfig(
        switch_interval=float(switch),
        writer_nice=loader.integer(
            table, "writer_nice", "runtime.writer_nice", d.writer_nice, minimum=0, maximum=19
        ),
        loop_stats=loader.boolean(table, "loop_stats", "runtime.loop_stats", d.loop_stats),
    )
