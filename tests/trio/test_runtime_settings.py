"""``[runtime]`` (docs/runtime.md): the keys, the switch interval that
``xmpp-trio serve`` sets and the scheduler-pass statistics that ``status``
reports (the writer thread's niceness: test_writer_nice.py)."""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from xmpp_trio.collector import serve_tuned
from xmpp_trio.config import ConfigError, ServerConfig, load_config
from xmpp_trio.runtime import BOUNDS_MS, PassTimes, loop_statistics, status_lines, timing
from xmpp_trio.runtime_config import RuntimeConfig


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "xmpp.toml"
    path.write_text(text)
    return path


# -- the keys --------------------------------------------------------------------------


def test_runtime_defaults_and_values_load(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, "")).runtime == RuntimeConfig(
        switch_interval=5.0, writer_nice=5, loop_stats=False
    )
    text = "[runtime]\nswitch_interval = 1\nwriter_nice = 0\nloop_stats = true\n"
    assert load_config(write(tmp_path, text)).runtime == RuntimeConfig(
        switch_interval=1.0, writer_nice=0, loop_stats=True
    )


@pytest.mark.parametrize(
    ("text", "key", "message"),
    [
        ("switch_interval = 0.05", "runtime.switch_interval", "must be between 0.1 and 100.0"),
        ("switch_interval = 500", "runtime.switch_interval", "must be between 0.1 and 100.0"),
        ("switch_interval = nan", "runtime.switch_interval", "must be between 0.1 and 100.0"),
        ('switch_interval = "5"', "runtime.switch_interval", "must be a number (ms)"),
        ("switch_interval = true", "runtime.switch_interval", "must be a number (ms)"),
        ("writer_nice = -1", "runtime.writer_nice", "must be between 0 and 19, got -1"),
        ("writer_nice = 20", "runtime.writer_nice", "must be between 0 and 19, got 20"),
        ('loop_stats = "yes"', "runtime.loop_stats", "must be true or false"),
        ("writer_nic = 3", "runtime.writer_nic", "did you mean 'writer_nice'?"),
    ],
)
def test_runtime_keys_out_of_range_are_refused_with_their_name(
    tmp_path: Path, text: str, key: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)) as info:
        load_config(write(tmp_path, f"[runtime]\n{text}\n"))
    assert info.value.key == key


# -- the switch interval and the loop's statistics -----------------------------------------


async def test_serve_tuned_sets_the_switch_interval_and_times_passes_while_serving(
    autojump_clock: trio.testing.MockClock,
) -> None:
    before = sys.getswitchinterval()
    config = ServerConfig(runtime=RuntimeConfig(switch_interval=0.5, loop_stats=True))
    seen: dict[str, Any] = {}

    async def serve(config: ServerConfig, *, task_status: trio.TaskStatus[str]) -> None:
        task_status.started("listening")
        seen["switch"] = sys.getswitchinterval()
        await trio.sleep(1)  # at least one wait for I/O: a pass ends
        seen["loop"] = loop_statistics()

    async with trio.open_nursery() as nursery:
        await nursery.start(serve_tuned, serve, config)
    assert seen["switch"] == pytest.approx(0.0005)
    assert seen["loop"]["passes"] >= 1 and len(seen["loop"]["counts"]) == len(BOUNDS_MS) + 1
    assert sys.getswitchinterval() == before and loop_statistics() is None  # undone after


async def test_without_loop_stats_no_pass_is_timed(autojump_clock: trio.testing.MockClock) -> None:
    seen: list[object] = []

    async def serve(config: ServerConfig, *, task_status: trio.TaskStatus[str]) -> None:
        task_status.started("listening")
        await trio.sleep(1)
        seen.append(loop_statistics())

    async with trio.open_nursery() as nursery:
        await nursery.start(serve_tuned, serve, ServerConfig())
    assert seen == [None]


async def test_a_pass_that_runs_30_ms_without_a_checkpoint_is_counted_as_one() -> None:
    with timing() as times:
        await trio.sleep(0)
        start = time.thread_time()
        while time.thread_time() - start < 0.030:  # 30 ms of CPU, no checkpoint
            pass
        await trio.sleep(0.001)  # the pass ends: Trio waits for I/O
    stats = times.statistics()
    assert float(str(stats["longest_ms"])) >= 30.0
    counts: list[int] = stats["counts"]  # type: ignore[assignment]
    assert sum(counts[BOUNDS_MS.index(50.0) :]) >= 1  # over 20 ms: in the (20, 50] bucket or later
    assert times.quantile(1.0) >= 50.0
    assert float(str(stats["cpu_seconds"])) >= 0.030
    assert loop_statistics() is None  # removed with the context


def test_quantiles_are_the_bounds_of_their_buckets() -> None:
    times = PassTimes()
    assert times.quantile(0.99) == 0.0
    times.counts[BOUNDS_MS.index(1.0)] = 99
    times.counts[-1] = 1
    times.passes = 100
    assert times.quantile(0.5) == 1.0 and times.quantile(0.99) == 1.0
    assert times.quantile(1.0) == float("inf")


def test_status_prints_the_loops_line_only_when_passes_are_timed() -> None:
    times = PassTimes()
    times.counts[BOUNDS_MS.index(2.0)] = 3
    times.passes, times.wall, times.cpu, times.longest = 3, 0.004, 0.003, 0.0018
    assert status_lines(None) == []
    assert status_lines(times.statistics()) == [
        "loop: 3 passes, p50 <= 2.0 ms, p99 <= 2.0 ms, longest 1.8 ms,"
        " 0.004 s busy (25% of it off the CPU)"
    ]
