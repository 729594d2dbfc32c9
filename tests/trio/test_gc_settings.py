"""``[gc]`` (docs/gc.md): the keys, the collector's settings in the process
of ``xmpp-trio serve`` (as ``status`` reports them), and the refreeze that
reclaims reference cycles frozen with the heap."""

from __future__ import annotations

import gc
import re
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing
from serve_helpers import message_to_self, serving, status

from xmpp_trio.collector import Collector, serve_tuned, statistics
from xmpp_trio.config import ConfigError, ServerConfig, load_config
from xmpp_trio.gc_config import GCConfig

BODY = "{jabber:client}body"


@pytest.fixture
def restored_gc() -> Iterator[None]:
    """Whatever a test does to the process's collector is undone after it."""
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)
    gc.collect()


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "xmpp.toml"
    path.write_text(text)
    return path


# -- the keys --------------------------------------------------------------------------


def test_gc_defaults_leave_cpythons_collector_as_it_is(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, "")).gc == GCConfig(
        freeze=False, threshold0=700, threshold1=10, threshold2=10, refreeze_interval=0
    )
    config = load_config(
        write(
            tmp_path,
            "[gc]\nfreeze = true\nthreshold0 = 20000\nthreshold1 = 20\nthreshold2 = 5\n"
            "refreeze_interval = 600\n",
        )
    ).gc
    assert config == GCConfig(
        freeze=True, threshold0=20000, threshold1=20, threshold2=5, refreeze_interval=600
    )


@pytest.mark.parametrize(
    ("text", "key", "message"),
    [
        ("threshold0 = 0", "gc.threshold0", "must be between 1 and 10000000, got 0"),
        ("threshold1 = -1", "gc.threshold1", "must be between 1 and 1000000"),
        ("threshold2 = 1.5", "gc.threshold2", "must be an integer, got a float"),
        ("refreeze_interval = -5", "gc.refreeze_interval", "must be between 0 and"),
        ('freeze = "yes"', "gc.freeze", "must be true or false, got a string"),
        ("freez = true", "gc.freez", "unknown key 'freez' (did you mean 'freeze'?)"),
    ],
)
def test_gc_keys_out_of_range_are_refused_with_their_name(
    tmp_path: Path, text: str, key: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)) as info:
        load_config(write(tmp_path, f"[gc]\n{text}\n"))
    assert info.value.key == key


# -- the collector ------------------------------------------------------------------------


class Node:
    """A container object that can be in a reference cycle and be watched."""

    def __init__(self) -> None:
        self.other: Any = None


def cycle() -> weakref.ref[Node]:
    a, b = Node(), Node()
    a.other, b.other = b, a
    return weakref.ref(a)


def test_start_sets_the_thresholds_and_freezes_what_is_alive(restored_gc: None) -> None:
    Collector(GCConfig(freeze=True, threshold0=12345, threshold1=7, threshold2=3)).start()
    assert gc.get_threshold() == (12345, 7, 3)
    assert gc.get_freeze_count() > 1000  # the modules, classes and functions loaded so far
    stats = statistics()
    assert stats["thresholds"] == [12345, 7, 3] and stats["frozen"] == gc.get_freeze_count()


def test_without_freeze_nothing_is_frozen(restored_gc: None) -> None:
    Collector(GCConfig(freeze=False)).start()
    assert gc.get_freeze_count() == 0
    assert gc.get_threshold() == (700, 10, 10)


def test_a_cycle_frozen_with_the_heap_is_reclaimed_by_the_next_refreeze(
    restored_gc: None,
) -> None:
    watched = cycle()  # garbage already, but only the cyclic collector can free it
    gc.freeze()  # e.g. frozen by a refreeze before the session that held it ended
    collector = Collector(GCConfig(freeze=False))
    collector.start()
    gc.collect()
    assert watched() is not None  # frozen: no collection looks at it
    collector.refreeze()
    assert watched() is None
    assert collector.refreezes == 1 and gc.get_freeze_count() > 0


async def test_serve_tuned_applies_gc_once_started_and_refreezes_on_schedule(
    restored_gc: None, autojump_clock: trio.testing.MockClock
) -> None:
    config = ServerConfig(gc=GCConfig(threshold0=4321, refreeze_interval=60))
    seen: dict[str, Any] = {}

    async def serve(config: ServerConfig, *, task_status: trio.TaskStatus[str]) -> None:
        seen["before"] = gc.get_threshold()
        task_status.started("listening")
        await trio.sleep(1)  # serve_tuned's turn
        seen["after"] = gc.get_threshold()
        watched = cycle()
        gc.freeze()
        await trio.sleep(61)  # one refreeze is due meanwhile
        seen["reclaimed"] = watched() is None

    async with trio.open_nursery() as nursery:
        assert await nursery.start(serve_tuned, serve, config) == "listening"
    # serve returned: serve_tuned returned too (the refreeze loop was cancelled)
    assert seen == {"before": (700, 10, 10), "after": (4321, 10, 10), "reclaimed": True}


# -- xmpp-trio serve ------------------------------------------------------------------------


async def serve_and_report(tmp_path: Path, gc_section: str) -> tuple[dict[str, Any], str]:
    """Start ``xmpp-trio serve`` with ``gc_section``, exchange a message over
    STARTTLS, then ask ``status --json``: its ``gc`` entry and the human line."""
    async with serving(tmp_path, gc_section) as served:
        await message_to_self(served, "gc", "through a frozen heap")
        report, human = await status(served)
        return report["gc"], human


async def test_serve_reports_its_frozen_start_up_heap_and_thresholds_in_status(
    tmp_path: Path,
) -> None:
    report, human = await serve_and_report(tmp_path, "[gc]\nfreeze = true\nthreshold0 = 20000\n")
    assert report["thresholds"] == [20000, 10, 10]
    assert report["frozen"] > 10000  # the server's modules, loaded at start-up
    assert report["enabled"] is True and len(report["collections"]) == 3
    # (frozen objects freed by their reference count leave the count)
    assert re.search(r"\ngc: \d+ objects frozen, thresholds 20000/10/10, ", human), human


async def test_serve_by_default_leaves_the_heap_unfrozen(tmp_path: Path) -> None:
    report, _ = await serve_and_report(tmp_path, "")
    assert report["frozen"] == 0 and report["thresholds"] == [700, 10, 10]
