"""The ``[gc]`` section of the server configuration: how the server tunes
CPython's cyclic garbage collector (:mod:`gc`); see docs/gc.md::

    [gc]
    freeze = false         # true: gc.freeze() once started (the start-up heap is never scanned again)
    threshold0 = 700       # net allocations between two young collections (CPython's default)
    threshold1 = 10        # young collections between two middle ones
    threshold2 = 10        # middle collections between two full ones (CPython's default)
    refreeze_interval = 0  # seconds; > 0: this often, collect what is not frozen and freeze it too
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from .config_loader import Loader as _Loader

__all__ = ["GC_KEYS", "GCConfig", "load_gc"]

GC_KEYS: Final = ("freeze", "threshold0", "threshold1", "threshold2", "refreeze_interval")


@dataclass(frozen=True, slots=True, kw_only=True)
class GCConfig:
    """``[gc]``: :func:`gc.set_threshold` with ``threshold0``-``threshold2``
    (CPython's own defaults unless set), :func:`gc.freeze` once the server
    has started (``freeze``: the modules, classes and configuration loaded
    at start-up are moved out of every later collection; off by default: it
    measured no gain, docs/gc.md), and every
    ``refreeze_interval`` seconds (0: never) a full collection of what is not
    frozen followed by another freeze (the sessions opened meanwhile stop
    costing full collections; what ends later is collected when its
    reference count drops, reference cycles only at the next full
    collection). See :mod:`xmpp_trio.collector` and docs/gc.md."""

    freeze: bool = False
    threshold0: int = 700
    threshold1: int = 10
    threshold2: int = 10
    refreeze_interval: int = 0


def load_gc(loader: _Loader, data: Mapping[str, object]) -> GCConfig:
    """Read and check ``[gc]``."""
    table = loader.table(data, "gc", "gc")
    loader.check_keys(table, GC_KEYS, "gc.", "in [gc]")
    d = GCConfig()

    def count(key: str, default: int, minimum: int, maximum: int) -> int:
        return loader.integer(table, key, f"gc.{key}", default, minimum=minimum, maximum=maximum)

    return GCConfig(
        freeze=loader.boolean(table, "freeze", "gc.freeze", d.freeze),
        # 0 would turn automatic collection off: a leak, not a setting
        threshold0=count("threshold0", d.threshold0, 1, 10_000_000),
        threshold1=count("threshold1", d.threshold1, 1, 1_000_000),
        threshold2=count("threshold2", d.threshold2, 1, 1_000_000),
        refreeze_interval=count("refreeze_interval", d.refreeze_interval, 0, 86_400 * 365),
    )
