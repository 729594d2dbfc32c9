"""The load benchmark's issue-24 lines (benchmarks/load/run.py): beside the
ratio of the medians, the ratio within each repetition (paired)."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks" / "load"))

import run  # noqa: E402

KEY = "matrix full STARTTLS x1 200c msgs/s"


def _line(lines: list[str], other: str) -> str:
    (found,) = [line for line in lines if "full STARTTLS x1 200c" in line and other in line]
    return found


def test_the_paired_ratio_is_taken_within_each_repetition() -> None:
    # Ours 10 then 20, Prosody 5 then 20: the medians' ratio is 15 / 12.5 = 1.20,
    # the repetitions' ratios 2.00 and 1.00.
    collected = {"ours": {KEY: [10.0, 20.0]}, "prosody-min": {KEY: [5.0, 20.0]}}
    by_rep = {"ours": {KEY: {0: 10.0, 1: 20.0}}, "prosody-min": {KEY: {0: 5.0, 1: 20.0}}}
    line = _line(run.issue24_targets(collected, by_rep), "prosody-min")
    assert "ratio 1.20" in line
    assert "paired 1.50 [1.00-2.00]" in line
    assert line.endswith("NOT met")  # the verdict stays the medians'


def test_a_repetition_one_side_missed_is_left_out_of_the_pairs() -> None:
    # Ejabberd's second run failed: its third is paired with ours' third, not second.
    collected = {"ours": {KEY: [12.0, 30.0, 12.0]}, "ejabberd": {KEY: [10.0, 6.0]}}
    by_rep = {"ours": {KEY: {0: 12.0, 1: 30.0, 2: 12.0}}, "ejabberd": {KEY: {0: 10.0, 2: 6.0}}}
    line = _line(run.issue24_targets(collected, by_rep), "ejabberd")
    assert "paired 1.60 [1.20-2.00]" in line


def test_no_paired_ratio_below_two_repetitions() -> None:
    collected = {"ours": {KEY: [12.0]}, "ejabberd": {KEY: [10.0]}}
    by_rep = {"ours": {KEY: {0: 12.0}}, "ejabberd": {KEY: {0: 10.0}}}
    line = _line(run.issue24_targets(collected, by_rep), "ejabberd")
    assert "paired" not in line
    assert "ratio 1.20" in line and line.endswith("-> met")


def _step(rate: int) -> dict[str, float]:
    return {"offered_per_s": rate, "sent_per_s": rate, "msgs_per_s": rate, "lost": 0,
            "p50_ms": 1.0, "p99_ms": 2.0, "max_ms": 3.0, "server_cpu": 0.5,
            "generator_cpu": 0.1}  # fmt: skip


def test_the_saturation_ramp_says_when_its_settle_gave_up() -> None:
    # openloop-sat runs two open-loop passes: the ramp, then the shares of what
    # it found; each settles after its own logins, and each says if it gave up.
    import matrix

    result = {"clients": 10, "stopped": "", "steps": [_step(50)], "settle_s": 1.0,
              "settled": True, "own": 100.0, "closed": 90.0, "ejabberd": None,
              "ramp": [_step(100)], "ramp_stopped": "",
              "ramp_settle": {"settle_s": 60.0, "settled": False}}  # fmt: skip
    lines = matrix._sat_report("bare STARTTLS", result)
    assert lines[0].startswith("ramp: ") and "UNSETTLED" in lines[0]
    (shares,) = [line for line in lines if line.strip().startswith("10 clients")]
    assert "UNSETTLED" not in shares
    result["ramp_settle"] = {"settle_s": 1.0, "settled": True}
    assert not any("UNSETTLED" in line for line in matrix._sat_report("bare STARTTLS", result))
