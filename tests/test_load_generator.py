"""The Python load generator (benchmarks/load/generator.py, the fallback
without Go): its settle after the logins, against a real process as the server."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks" / "load"))

import busy_process  # noqa: E402  (tests/busy_process.py)
import generator  # noqa: E402


@pytest.mark.parametrize("busy", [1.5, -1.0])
def test_the_window_waits_for_the_server_to_go_idle_after_the_logins(busy: float) -> None:
    # No client reads anything; the process given as the server keeps a core
    # busy for 1.5 s, or forever: the settle ends once it is under a tenth of
    # a core over 0.3 s, or gives up after max_settle and says so (the
    # compiled generator's rule, tests/test_load_gen.py).
    burner = busy_process.burner(busy)
    try:
        job = generator.Job(scenario="throughput", host="127.0.0.1", port=1, tls="none",
                            mechanism="PLAIN", domain="localhost", password="", cafile=None,
                            server_pid=burner.pid, max_settle=3.0)  # fmt: skip
        engine = generator.Engine(job)
        out = generator.settle(engine, job, 0.1)
    finally:
        burner.kill()
        burner.wait()
    if busy > 0:
        assert out["settled"] is True and busy - 0.5 <= out["settle_s"] < 3
    else:
        assert out["settled"] is False and out["settle_s"] >= 3
