"""Where a message's latency goes at a fixed open-loop rate (issue 24,
docs/benchmarks.md "Session 10: latency under load").

    python3 benchmarks/load/latency_probe.py --rates 4000,6000 --repeat 5 \\
        --variant 'nice0=[runtime]\\nwriter_nice = 0' --variant default=

Our server (archives on, STARTTLS, bare JIDs: ``openloop-sat``'s shape,
``--clients`` accounts) runs under probes, pinned to CPU 0, the compiled
generator on CPU 1 sending at each ``--rates`` in turn; each variant
(``NAME=extra TOML``, ``\\n`` for new lines) gets a fresh server per
repetition, variants interleaved. Per run it prints the generator's p50/p99
per rate and, from the server: every scheduler pass's wall clock and the
loop thread's CPU time (a Trio instrument), split into the passes that
overlapped a merge of the archive's log and the others (the rest of a pass's
time the loop was off the CPU: another thread of ours or another process on
its core, or waiting for the GIL); each garbage collection's wall and CPU
time by generation; the archive writer's batches and merges. A summary per
variant closes: median [min-max] p99 per rate and the off-CPU shares. On a
shared machine only the comparison within one run means anything.

``--serve`` (internal) is the probed server: ``xmpp-trio serve`` with the
probes installed, writing them as JSON to ``$LATENCY_PROBE_OUT`` at exit.
"""

from __future__ import annotations

import argparse
import atexit
import collections
import gc
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


# --- the probed server ----------------------------------------------------------------------


def serve(argv: list[str]) -> None:
    import trio

    import xmpp_trio.stores.mam as mam
    from xmpp_trio import archive_writer
    from xmpp_trio.cli import main

    clock = time.perf_counter
    merging = [0]
    out: dict[str, Any] = {"passes": [], "gc": [], "batches": [], "merges": []}

    class Passes(trio.abc.Instrument):
        def __init__(self) -> None:
            self.woke, self.cpu, self.merge = clock(), time.thread_time(), 0

        def after_io_wait(self, timeout: float) -> None:
            self.woke, self.cpu, self.merge = clock(), time.thread_time(), merging[0]

        def before_io_wait(self, timeout: float) -> None:
            out["passes"].append((clock() - self.woke, time.thread_time() - self.cpu,
                                  merging[0] or self.merge))  # fmt: skip

    began = [0.0, 0.0]

    def collected(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            began[:] = clock(), time.thread_time()
        else:
            out["gc"].append(
                (info["generation"], clock() - began[0], time.thread_time() - began[1])
            )

    gc.callbacks.append(collected)
    run_batch = archive_writer.ArchiveWriter._run_batch
    merge = mam.SqliteArchiveStorage.merge

    def timed_batch(self: Any, conn: Any, batch: list[Any]) -> None:
        t, c = clock(), time.thread_time()
        run_batch(self, conn, batch)
        out["batches"].append((len(batch), clock() - t, time.thread_time() - c))

    def timed_merge(self: Any, conn: Any = None) -> int:
        t, c = clock(), time.thread_time()
        merging[0] = 1
        try:
            return merge(self, conn)
        finally:
            merging[0] = 0
            out["merges"].append((clock() - t, time.thread_time() - c))

    archive_writer.ArchiveWriter._run_batch = timed_batch  # type: ignore[method-assign]
    mam.SqliteArchiveStorage.merge = timed_merge  # type: ignore[method-assign]
    trio_run = trio.run

    def run(*args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("instruments", []).append(Passes())
        return trio_run(*args, **kwargs)

    trio.run = run  # type: ignore[assignment]

    def dump() -> None:
        Path(os.environ["LATENCY_PROBE_OUT"]).write_text(json.dumps(out))

    atexit.register(dump)
    main(argv)


# --- the driver ------------------------------------------------------------------------------


def quantile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else 0.0


def off_cpu(passes: list[list[float]], merge: int) -> float | None:
    wall = sum(p[0] for p in passes if p[2] == merge)
    return 1 - sum(p[1] for p in passes if p[2] == merge) / wall if wall else None


def report(st: dict[str, Any]) -> list[str]:
    passes = st["passes"]
    ms = 1000.0
    lines = [f"  passes {len(passes)}: wall p50 {quantile([p[0] for p in passes], .5) * ms:.2f}"
             f" p99 {quantile([p[0] for p in passes], .99) * ms:.2f}"
             f" max {max(p[0] for p in passes) * ms:.1f} ms"]  # fmt: skip
    for flag, name in ((0, "no merge"), (1, "during a merge")):
        part = [p for p in passes if p[2] == flag]
        share = off_cpu(passes, flag)
        if part and share is not None:
            lines.append(f"  passes {name}: {len(part)}, {sum(p[0] for p in part):.2f} s,"
                         f" off the CPU {share:.0%}, CPU p99 {quantile([p[1] for p in part], .99) * ms:.1f} ms")  # fmt: skip
    for generation in range(3):
        runs = [g for g in st["gc"] if g[0] == generation]
        if runs:
            lines.append(f"  gc gen{generation}: {len(runs)}, wall max {max(g[1] for g in runs) * ms:.1f} ms,"
                         f" CPU max {max(g[2] for g in runs) * ms:.1f} sum {sum(g[2] for g in runs) * ms:.0f} ms")  # fmt: skip
    if st["batches"]:
        b = st["batches"]
        lines.append(f"  writer batches {len(b)}: rows median {statistics.median(x[0] for x in b):.0f},"
                     f" wall max {max(x[1] for x in b) * ms:.0f} ms")  # fmt: skip
    if st["merges"]:
        m = st["merges"]
        lines.append(f"  merges {len(m)}: wall {[round(x[0] * ms) for x in m]} ms, CPU"
                     f" {[round(x[1] * ms) for x in m]} ms")  # fmt: skip
    return lines


def main() -> int:
    if sys.argv[1:2] == ["--serve"]:
        serve(sys.argv[2:])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", default="4000,6000", help="offered msgs/s, in turn")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--duration", type=float, default=6.0, help="seconds per rate")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--variant", action="append", default=[],
                        help="NAME=extra TOML (repeatable; default: one, 'default=')")  # fmt: skip
    args = parser.parse_args()
    sys.path[:0] = [str(HERE), str(ROOT)]
    import gogen
    import targets
    from generator import Job

    variants = [v.split("=", 1) for v in args.variant or ["default="]]
    rates = tuple(int(r) for r in args.rates.split(","))
    work = Path(tempfile.mkdtemp(prefix="latency-probe-"))
    ours = targets.Ours(work)
    ours.prepare(args.clients)
    engine = gogen.build()
    if not engine:
        parser.error("the compiled generator is needed (apt-get install golang-go)")
    targets.pin(0, targets.GENERATOR_CPU)
    summary: dict[str, list[tuple[list[tuple[int, float, float]], float | None, float | None]]]
    summary = collections.defaultdict(list)
    for rep in range(args.repeat):
        for name, extra in variants:
            print(f"== {name}, repetition {rep + 1}", flush=True)
            extra = extra.replace("\\n", "\n")
            port = targets.free_port()
            ours._empty_archives()
            config = ours.workdir / "xmpp.toml"
            config.write_text(
                f'domains = ["{targets.DOMAIN}"]\ndata_dir = "{ours.data}"\nlog_level = "warning"\n'
                f"scram_iterations = {targets.SCRAM_ITERATIONS}\nrequire_tls = true\n\n[limits]\n"
                + "".join(f"{k} = {v}\n" for k, v in ours._limits().items())
                + f'\n[[listeners]]\nkind = "c2s-starttls"\naddress = "127.0.0.1"\nport = {port}\n'
                + extra + ("" if "[mam]" in extra else "\n[mam]\nenabled = true\n"))  # fmt: skip
            probes = work / "probes.json"
            env = os.environ | {"PYTHONPATH": str(ROOT), "LATENCY_PROBE_OUT": str(probes)}
            proc = subprocess.Popen([sys.executable, __file__, "--serve", "serve", "--config",
                                     str(config)], cwd=ROOT, env=env, start_new_session=True)  # fmt: skip
            targets.wait_listening(proc, port, "ours")
            targets.pin(proc.pid, targets.SERVER_CPU)
            job = Job(scenario="openloop-sat", host="127.0.0.1", port=port, tls="starttls",
                      mechanism="PLAIN", domain=targets.DOMAIN, password=targets.PASSWORD,
                      cafile=ours.cafile, server_pid=proc.pid, count=args.clients,
                      duration=args.duration, warmup=1.0, rates=rates, drain=2.0, engine=engine)  # fmt: skip
            result = gogen.run(engine, job)
            proc.send_signal(signal.SIGINT)
            proc.wait(60)
            steps = result.get("steps", [])
            for s in steps:
                print(f"  offered {s['offered_per_s']}/s: {s['msgs_per_s']:,.0f} msgs/s, p50"
                      f" {s['p50_ms']:.1f} p99 {s['p99_ms']:.1f} ms, lost {s['lost']}, CPU server"
                      f" {100 * s.get('server_cpu', 0):.0f}% generator {100 * s.get('generator_cpu', 0):.0f}%")  # fmt: skip
            if "error" in result:
                print(f"  {result['error']}")
            st = json.loads(probes.read_text())
            for line in report(st):
                print(line)
            summary[name].append(([(s["offered_per_s"], s["p50_ms"], s["p99_ms"]) for s in steps],
                                  off_cpu(st["passes"], 1), off_cpu(st["passes"], 0)))  # fmt: skip
    shutil.rmtree(work, ignore_errors=True)
    print(f"\nsummary: median [min-max] of {args.repeat} repetition(s)")
    for name, runs in summary.items():
        for rate in rates:
            p99 = sorted(p for steps, _, _ in runs for r, _, p in steps if r == rate)
            if p99:
                print(
                    f"{name:<12} {rate}/s: p99 {statistics.median(p99):.1f} [{p99[0]:.1f}-{p99[-1]:.1f}] ms"
                )
        for what, found in (("during merges", [m for _, m, _ in runs]),
                            ("other passes", [o for _, _, o in runs])):  # fmt: skip
            shares = sorted(x for x in found if x is not None)
            if shares:
                print(f"{name:<12} off the CPU {what}: {statistics.median(shares):.0%}"
                      f" [{shares[0]:.0%}-{shares[-1]:.0%}]")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
