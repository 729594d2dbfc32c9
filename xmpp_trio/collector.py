"""CPython's cyclic garbage collector in the server process (``[gc]``,
:mod:`xmpp_trio.gc_config`; docs/gc.md).

Theory of operation: reference counting frees almost everything the server
allocates per stanza; the cyclic collector runs besides, a young collection
every ``threshold0`` net allocations of container objects, a middle one every
``threshold1`` young ones, and a full one every ``threshold2`` middle ones
once the objects waiting for it pass a quarter of the long-lived heap. A full
collection walks every tracked object: the modules loaded at start-up and
every session's objects (tens of milliseconds at a thousand sessions,
docs/benchmarks.md "Session 9"). :func:`gc.freeze` moves every tracked object
into a permanent generation that no collection walks; what is frozen is
still freed by its reference count, but a reference cycle among frozen
objects stays until :func:`gc.unfreeze`.

:func:`serve_tuned` is what ``xmpp-trio serve`` runs: the server, then, once
it has started (its listeners bound), :meth:`Collector.start` (the
thresholds, a full collection and a freeze), and every ``refreeze_interval``
seconds :meth:`Collector.refreeze` (unfreeze, collect everything, freeze
again: the cycles of sessions that ended are reclaimed, those still open
leave the full collections). The process's collector is the program's to
tune: :func:`~xmpp_trio.server.run_server` alone, as an embedder or a test
calls it, leaves it as it is.
"""

from __future__ import annotations

import contextlib
import gc
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any, Final

import trio

from .config import ServerConfig
from .gc_config import GCConfig
from .runtime import timing

__all__ = ["Collector", "serve_tuned", "statistics"]

_GENERATIONS: Final = 3

# Time spent in collections since the first Collector started (gc.callbacks).
_spent = [0.0] * _GENERATIONS
_began = [0.0]


def _timer(phase: str, info: dict[str, int]) -> None:
    if phase == "start":
        _began[0] = time.perf_counter()
    else:
        _spent[info["generation"]] += time.perf_counter() - _began[0]


def statistics() -> dict[str, object]:
    """The collector's state and work so far (``xmpp-trio status``):
    thresholds, objects frozen, collections per generation (youngest first),
    objects they freed, and the seconds they took since the server started."""
    stats = gc.get_stats()
    return {
        "enabled": gc.isenabled(),
        "thresholds": list(gc.get_threshold()),
        "frozen": gc.get_freeze_count(),
        "collections": [s["collections"] for s in stats],
        "collected": [s["collected"] for s in stats],
        "seconds": [round(s, 6) for s in _spent],
    }


class Collector:
    """Applies a :class:`~xmpp_trio.gc_config.GCConfig` to the process."""

    def __init__(self, config: GCConfig) -> None:
        self.config = config
        self.refreezes = 0

    def start(self) -> None:
        """Set the thresholds; with ``freeze``, collect everything once and
        freeze what is left (the start-up heap)."""
        config = self.config
        if _timer not in gc.callbacks:
            gc.callbacks.append(_timer)
        gc.set_threshold(config.threshold0, config.threshold1, config.threshold2)
        if config.freeze:
            gc.collect()
            gc.freeze()

    def refreeze(self) -> None:
        """Collect every generation, the frozen one included, then freeze
        what survives: one full collection's pause."""
        gc.unfreeze()
        gc.collect()
        gc.freeze()
        self.refreezes += 1

    def stop(self) -> None:
        """Stop timing collections (the thresholds and the freeze stay)."""
        if _timer in gc.callbacks:
            gc.callbacks.remove(_timer)

    async def refreeze_every(self, seconds: float) -> None:
        """:meth:`refreeze` every ``seconds``, until cancelled."""
        while True:
            await trio.sleep(seconds)
            self.refreeze()


async def serve_tuned(
    serve: Callable[..., Awaitable[Any]],
    config: ServerConfig,
    *,
    task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run ``serve(config, task_status=...)`` (:func:`~xmpp_trio.server.run_server`)
    and apply ``config.gc`` once it has started; return when it returns. The
    process's switch interval is ``config.runtime``'s meanwhile, and with
    ``loop_stats`` every scheduler pass is timed (:mod:`xmpp_trio.runtime`)."""
    collector = Collector(config.gc)
    switch = sys.getswitchinterval()
    sys.setswitchinterval(config.runtime.switch_interval / 1000.0)
    try:
        with contextlib.ExitStack() as stack:
            if config.runtime.loop_stats:
                stack.enter_context(timing())
            await _serve_collected(serve, config, collector, task_status)
    finally:
        sys.setswitchinterval(switch)


async def _serve_collected(
    serve: Callable[..., Awaitable[Any]],
    config: ServerConfig,
    collector: Collector,
    task_status: trio.TaskStatus[Any],
) -> None:
    try:
        async with trio.open_nursery() as nursery:

            async def main(*, task_status: trio.TaskStatus[Any]) -> None:
                await serve(config, task_status=task_status)
                nursery.cancel_scope.cancel()

            started = await nursery.start(main)
            collector.start()
            task_status.started(started)
            if config.gc.refreeze_interval:
                nursery.start_soon(collector.refreeze_every, config.gc.refreeze_interval)
    finally:
        collector.stop()
