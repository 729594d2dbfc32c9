"""The ``ours-nomam``, ``ours-nice0`` and ``ours-nostore`` benchmark targets
(benchmarks/load/targets.py, issues 17 and 24): our server with archives
off, with the archive writer at the loop's niceness, or archiving with a
writer that skips SQLite, beside ``ours`` in one run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks" / "load"))

import targets  # noqa: E402


def test_ours_nomam_is_a_target_with_archives_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("XMPP_TRIO_BENCH_CONFIG", raising=False)
    monkeypatch.delenv("XMPP_TRIO_BENCH_ARCHIVES", raising=False)
    assert targets.known("ours-nomam")
    off = targets.make("ours-nomam", tmp_path)
    on = targets.make("ours", tmp_path)
    assert off.name == "ours-nomam"
    assert off.workdir != on.workdir
    assert "[mam]\nenabled = false" in off._extra_config()
    assert "[mam]\nenabled = true" in on._extra_config()


def test_ours_nomam_stays_off_whatever_the_environment_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("XMPP_TRIO_BENCH_CONFIG", raising=False)
    monkeypatch.setenv("XMPP_TRIO_BENCH_ARCHIVES", "1")
    assert "enabled = false" in targets.make("ours-nomam", tmp_path)._extra_config()
    monkeypatch.setenv("XMPP_TRIO_BENCH_ARCHIVES", "0")
    assert "enabled = false" in targets.make("ours", tmp_path)._extra_config()


def test_ours_nice0_keeps_archives_on_with_the_writer_at_the_loops_niceness(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("XMPP_TRIO_BENCH_CONFIG", raising=False)
    monkeypatch.delenv("XMPP_TRIO_BENCH_ARCHIVES", raising=False)
    assert targets.known("ours-nice0")
    nice0 = targets.make("ours-nice0", tmp_path)
    assert nice0.workdir != targets.make("ours", tmp_path).workdir
    extra = nice0._extra_config()
    assert "[runtime]\nwriter_nice = 0" in extra
    assert "[mam]\nenabled = true" in extra
    assert "writer_nice" not in targets.make("ours", tmp_path)._extra_config()


def test_run_lists_ours_nomam_in_its_help() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "load" / "run.py"), "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "ours-nomam" in done.stdout and "ours-nice0" in done.stdout
    assert "ours-nostore" in done.stdout


def _write_batch_name(path: str) -> str:
    """The name of ``SqliteArchiveStorage.write_batch`` in a fresh interpreter
    started with ``path`` on its PYTHONPATH."""
    done = subprocess.run(
        [sys.executable, "-c", "from xmpp_trio.stores.mam import SqliteArchiveStorage as S;"
         " print(S.write_batch.__name__)"],
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": path},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )  # fmt: skip
    return done.stdout.strip()


def test_ours_nostore_archives_with_a_writer_that_skips_sqlite(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("XMPP_TRIO_BENCH_CONFIG", raising=False)
    monkeypatch.setenv("XMPP_TRIO_BENCH_ARCHIVES", "0")  # the target keeps archives on anyway
    assert targets.known("ours-nostore")
    nostore = targets.make("ours-nostore", tmp_path)
    assert nostore.workdir != targets.make("ours", tmp_path).workdir
    assert "[mam]\nenabled = true" in nostore._extra_config()
    assert nostore.path == (targets.NOSTORE,)
    # The server's interpreter, with the target's path first: the writer's batch is skipped.
    server_path = f"{targets.NOSTORE}:{ROOT}"
    assert _write_batch_name(server_path) == "_skip"
    assert _write_batch_name(str(ROOT)) == "write_batch"
