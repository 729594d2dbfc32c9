"""The ``ours-nomam`` benchmark target (benchmarks/load/targets.py, issue 17):
our server with archives off, beside ``ours`` in one run."""

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


def test_run_lists_ours_nomam_in_its_help() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "load" / "run.py"), "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "ours-nomam" in done.stdout
