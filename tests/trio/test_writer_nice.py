"""``[runtime] writer_nice`` (docs/runtime.md): the archive writer thread
runs nicer than the event loop, so the loop preempts its SQLite work on a
shared core; seen in the worker and in a running ``xmpp-trio serve``
(``/proc``), beside the loop statistics ``status`` reports."""

from __future__ import annotations

import os
import re
import sqlite3
import sys
import threading
from pathlib import Path

import pytest
import trio
from serve_helpers import WAIT, message_to_self, serving, status

from xmpp_trio.archive_writer import ArchiveWriter
from xmpp_trio.runtime import lower_thread_priority

BODY = "{jabber:client}body"
LINUX = sys.platform.startswith("linux")


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "xmpp.toml"
    path.write_text(text)
    return path


def niceness(tid: int) -> int:
    return os.getpriority(os.PRIO_PROCESS, tid)


# -- the writer thread's niceness ---------------------------------------------------------


@pytest.mark.skipif(not LINUX, reason="a thread's niceness is set on Linux only")
@pytest.mark.parametrize("nice", [0, 7])
def test_the_archive_writer_thread_runs_nicer_than_the_loop_by_writer_nice(
    tmp_path: Path, nice: int
) -> None:
    seen: list[int] = []

    def write_batch(conn: sqlite3.Connection, batch: list[int]) -> None:
        seen.append(niceness(threading.get_native_id()))

    loop_nice = niceness(threading.get_native_id())
    writer: ArchiveWriter[int] = ArchiveWriter(
        str(tmp_path / "x.sqlite3"), write_batch, timeout=1.0, nice=nice
    )
    writer.hand([1])
    assert writer.wait() == []
    writer.close()
    assert seen == [min(19, loop_nice + nice)]
    assert niceness(threading.get_native_id()) == loop_nice  # this thread is left alone


def test_a_niceness_of_zero_changes_nothing() -> None:
    before = niceness(threading.get_native_id()) if LINUX else 0
    assert lower_thread_priority(0) is False
    if LINUX:
        assert niceness(threading.get_native_id()) == before


# -- xmpp-trio serve ------------------------------------------------------------------------


def thread_nices(pid: int) -> list[int]:
    """The niceness of each thread of process ``pid`` (``/proc``, field 19)."""
    nices = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # the thread ended meanwhile
            continue
        nices.append(int(fields[16]))
    return nices


@pytest.mark.skipif(not LINUX, reason="/proc and thread niceness are Linux's")
async def test_serve_archives_on_a_nicer_thread_and_reports_its_loop_in_status(
    tmp_path: Path,
) -> None:
    async with serving(tmp_path, "[runtime]\nwriter_nice = 5\nloop_stats = true\n") as served:
        pid = served.process.pid
        base = min(thread_nices(pid))
        await message_to_self(served, "rt", "archived behind the loop")
        if base + 5 > 19:  # niceness stops at 19: the writer could not be told apart
            pytest.skip(f"the server runs at niceness {base} (a niced test run)")
        with trio.fail_after(WAIT):  # the archived copy goes to the writer at the next flush
            while base + 5 not in thread_nices(pid):
                await trio.sleep(0.05)
        assert base in thread_nices(pid)  # the loop's thread is not touched
        report, human = await status(served)
    loop = report["loop"]
    assert loop["passes"] > 0 and sum(loop["counts"]) == loop["passes"]
    assert loop["cpu_seconds"] > 0 and loop["longest_ms"] > 0
    assert re.search(r"\nloop: \d+ passes, p50 <= [\d.]+ ms, p99 <= ", human), human


def test_a_refused_setpriority_leaves_the_thread_as_it_is(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def refuse(which: int, who: int, priority: int) -> None:
        raise PermissionError("a sandbox")

    monkeypatch.setattr(os, "setpriority", refuse)
    assert lower_thread_priority(5) is False
