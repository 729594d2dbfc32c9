"""CPU of each thread of our running server over a window (issue 17: where
archiving's cost goes on the real server: the event loop's thread against
the archive writer's).

Started beside a load run, it finds the ``python -m xmpp_trio serve``
process, waits past the log-ins and the warm-up, and prints each thread's
CPU seconds (utime + stime from ``/proc/PID/task/TID/stat``) over the
window. Divide by the run's delivered messages a second for microseconds a
message (docs/benchmarks.md, "End of session 12")::

    python3 benchmarks/load/thread_cpu.py --wait 8 --window 6 &
    python3 benchmarks/load/run.py --targets ours --scenarios throughput-bare \\
        --clients 200 --duration 20 --warmup 3

Linux only (``/proc``).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK")


def find_server(timeout: float) -> int:
    """The pid of the first ``xmpp_trio serve`` process to appear."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                argv = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"xmpp_trio" in argv and b"serve" in argv:
                return int(entry.name)
        time.sleep(0.2)
    raise SystemExit(f"no xmpp_trio serve process within {timeout} s")


def thread_cpu(pid: int) -> dict[str, tuple[float, int, int]]:
    """CPU seconds (user + system) of each thread of ``pid``, by thread id,
    with its voluntary and involuntary context switches so far."""
    out = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            stat = (task / "stat").read_text()
            status = (task / "status").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        switches = dict(
            line.split(":", 1) for line in status.splitlines() if "ctxt_switches" in line
        )
        out[task.name] = (
            (int(fields[11]) + int(fields[12])) / _TICK,
            int(switches.get("voluntary_ctxt_switches", 0)),
            int(switches.get("nonvoluntary_ctxt_switches", 0)),
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--wait", type=float, default=8.0, help="seconds before the window")
    parser.add_argument("--window", type=float, default=6.0, help="seconds measured")
    parser.add_argument("--find-timeout", type=float, default=60.0)
    args = parser.parse_args()
    pid = find_server(args.find_timeout)
    time.sleep(args.wait)
    before, start = thread_cpu(pid), time.monotonic()
    time.sleep(args.window)
    after, elapsed = thread_cpu(pid), time.monotonic() - start
    main_tid = str(pid)
    zero = (0.0, 0, 0)
    for tid, (cpu, vol, invol) in sorted(
        after.items(), key=lambda item: -(item[1][0] - before.get(item[0], zero)[0])
    ):
        cpu0, vol0, invol0 = before.get(tid, zero)
        used = cpu - cpu0
        if used > 0.01:
            role = "main (event loop)" if tid == main_tid else "other (e.g. archive writer)"
            print(f"thread {tid} {role}: {used:.2f} s CPU over {elapsed:.2f} s"
                  f" ({used / elapsed:.0%} of a core); context switches a second:"
                  f" {(vol - vol0) / elapsed:,.0f} voluntary,"
                  f" {(invol - invol0) / elapsed:,.0f} involuntary")  # fmt: skip


if __name__ == "__main__":
    main()
