"""Load benchmark for xmpp-trio, side by side with Prosody (issue 6).

    python benchmarks/load/run.py --quick                       # a few seconds, ours only (CI)
    python benchmarks/load/run.py                               # ours, full scenarios
    python benchmarks/load/run.py --targets ours,prosody --repeat 3   # what compare.sh runs
    python benchmarks/load/run.py --scenarios throughput --profile prof.txt

Each target (``ours``: ``python -m xmpp_trio serve``; ``prosody``: Prosody 0.12
with a generated config, see ``targets.py``) gets ``N`` accounts once, then a
fresh server per scenario run, pinned to CPU 0. The generator
(``generator.py``: one ``select.epoll`` loop, non-blocking sockets and
``ssl.SSLSocket``, no Trio, no XML parsing once bound) runs in a forked
process pinned to CPU 1. Logins are negotiated by our sans-IO
``ClientConnection``, so any RFC 6120 server works.

Scenarios:

* ``login``: ``--logins`` clients connect (``--tls``), authenticate, bind and
  send initial presence, ``--login-concurrency`` at a time: logins/s and
  p50/p99 latency. Run once per mechanism: ours SCRAM-SHA-256 then PLAIN,
  Prosody PLAIN then SCRAM-SHA-1 (or just ``--mechanism``).
* ``throughput``: ``--clients`` bound clients send chat messages to random
  online peers (full JIDs), closed loop, ``--inflight`` in flight per client:
  delivered msgs/s, end-to-end latency p50/p99/max (the send time is in the
  body), losses after a drain.
* ``openloop``: the same clients at rising offered rates (``--rates``), sent on
  schedule from a token bucket in the epoll loop whatever gets delivered;
  stops rising when deliveries fall under 95% of the offered rate, p99 passes
  1 s, or messages are lost.
* ``memory``: server RSS (the whole process tree) before and after growing
  numbers of idle authenticated sessions (``--sessions``), over TLS and in
  plaintext (``--memory-tls``); sizes above the RLIMIT_NOFILE hard limit are
  skipped and say so.

Every measuring window reports the CPU share (of one core) of the server and of
the generator: a server near 100% and a generator well below means the figure
is the server's. With more than one target or ``--repeat`` above 1 a final
table gives the median [min-max] of each figure, the ratio ours/Prosody and
the issue's targets. Nothing is asserted: the script always exits 0 (a failed
scenario prints its error).

``--profile FILE`` runs our server under ``py-spy record`` and writes the top
functions by own time to FILE; the sampling costs CPU, so use the figures of a
run without it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import multiprocessing as mp
import os
import platform
import re
import resource
import shutil
import ssl
import statistics
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

import generator  # noqa: E402
import targets  # noqa: E402
from generator import Job  # noqa: E402

SCENARIO_NAMES = ("login", "throughput", "openloop", "memory")


def raise_fd_limit() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft = hard
    return soft


def generator_main(job: Job, results: Any) -> None:
    """Entry point of the generator process: run one job, put a dict on ``results``."""
    targets.pin(0, targets.GENERATOR_CPU)
    raise_fd_limit()
    generator.use_salted_cache(job.password)
    try:
        results.put(generator.SCENARIOS[job.scenario](job))
    except BaseException as exc:  # report, never hang the parent
        results.put({"error": f"{type(exc).__name__}: {exc}"})


def run_job(job: Job, timeout: float = 1200) -> dict[str, Any]:
    ctx = mp.get_context("fork")
    results = ctx.Queue()
    child = ctx.Process(target=generator_main, args=(job, results))
    child.start()
    try:
        result: dict[str, Any] = results.get(timeout=timeout)
    except Exception as exc:
        result = {"error": f"no result from the generator: {exc!r}"}
    child.join(timeout=30)
    if child.is_alive():
        child.kill()
    return result


# --- profile ---------------------------------------------------------------------


def _frame(name: str) -> str:
    return re.sub(r":\d+\)$", ")", name)  # merge the lines of one function


def summarise_profile(raw: Path, out: Path, top: int = 15) -> None:
    """Write the ``top`` functions by own and by inclusive samples of py-spy's raw output."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = [_frame(f) for f in stack.split(";")]
        own[frames[-1]] += int(count)
        for name in set(frames):
            inclusive[name] += int(count)
        total += int(count)
    lines = [f"{total} samples; top {top} functions by own time"]
    for name, samples in own.most_common(top):
        lines.append(f"{100 * samples / max(1, total):5.1f}%  {name}")
    lines.append(f"top {3 * top} functions by inclusive time")
    for name, samples in inclusive.most_common(3 * top):
        lines.append(f"{100 * samples / max(1, total):5.1f}%  {name}")
    out.write_text("\n".join(lines) + "\n")
    shutil.copyfile(raw, out.with_suffix(".raw.txt"))
    print("\n".join(lines))
    print(f"(summary in {out}, py-spy raw stacks in {out.with_suffix('.raw.txt')})")


# --- reporting -------------------------------------------------------------------


def _cpu(result: dict[str, Any]) -> str:
    if "server_cpu" not in result:
        return ""
    text = (f"; CPU server {100 * result['server_cpu']:.0f}%"
            f" generator {100 * result['generator_cpu']:.0f}%")  # fmt: skip
    server_core = result.get(f"cpu{targets.SERVER_CPU}_busy")
    generator_core = result.get(f"cpu{targets.GENERATOR_CPU}_busy")
    if server_core is not None and generator_core is not None:
        text += f" (cores busy {100 * server_core:.0f}%/{100 * generator_core:.0f}%)"
        # /proc/stat samples per tick, so a core's share is rough for bursty
        # loads: flag only a large excess.
        if (
            server_core - result["server_cpu"] > 0.25
            or generator_core - result["generator_cpu"] > 0.25
        ):
            text += " SHARED: other processes used these cores"
    return text


def _lat(r: dict[str, Any]) -> str:
    return f"p50 {r['p50_ms']:.1f} ms p99 {r['p99_ms']:.1f} ms max {r['max_ms']:.1f} ms"


def report(name: str, variant: str, result: dict[str, Any]) -> list[str]:
    """Human lines for one scenario result."""
    head = f"  {name:<10} {variant:<22}"
    if "error" in result:
        return [f"{head} FAILED: {result['error']}"]
    if name == "login":
        line = (f"{head} {result['logins']} logins ({result['concurrency']} concurrent) in"
                f" {result['wall_s']:.2f} s: {result['logins_per_s']:,.0f}/s, {_lat(result)}"
                f"{_cpu(result)}")  # fmt: skip
        if result.get("failures"):
            line += f"; {result['failures']} FAILED ({result.get('first_error', '')})"
        return [line]
    if name == "throughput":
        return [f"{head} {result['clients']} clients x {result['inflight']} in flight,"
                f" {result['window_s']:.1f} s: {result['msgs_per_s']:,.0f} msgs/s, {_lat(result)};"
                f" sent {result['sent']:,} lost {result['lost']:,}{_cpu(result)}"]  # fmt: skip
    if name == "openloop":
        lines = [f"{head} {result['clients']} clients"
                 + (f", stopped: {result['stopped']}" if result["stopped"] else "")]  # fmt: skip
        for s in result["steps"]:
            lines.append(f"{'':36} offered {s['offered_per_s']:>6,}/s (sent {s['sent_per_s']:,.0f}/s):"
                         f" {s['msgs_per_s']:,.0f} msgs/s, {_lat(s)}; lost {s['lost']:,}"
                         f"{_cpu(s)}")  # fmt: skip
        return lines
    lines = [f"{head} base RSS {result['rss_base_kb']:,} KB"]
    for p in result["points"]:
        lines.append(f"{'':36} {p['sessions']:>6,} sessions: RSS {p['rss_kb']:,} KB,"
                     f" {p['kb_per_session']:.1f} KB/session"
                     f" (marginal {p['marginal_kb_per_session']:.1f})")  # fmt: skip
    for s in result["skipped"]:
        lines.append(f"{'':36} skipped {s}")
    return lines


def figures(name: str, variant: str, result: dict[str, Any], p99_rate: int) -> dict[str, float]:
    """Named figures of one scenario result for the final table."""
    if "error" in result:
        return {}
    if name == "login":
        if result.get("failures"):
            return {}
        return {f"login {variant} logins/s": result["logins_per_s"],
                f"login {variant} p50 ms": result["p50_ms"],
                f"login {variant} p99 ms": result["p99_ms"]}  # fmt: skip
    if name == "throughput":
        return {"closed loop msgs/s": result["msgs_per_s"],
                "closed loop p50 ms": result["p50_ms"],
                "closed loop p99 ms": result["p99_ms"],
                "closed loop lost": result["lost"]}  # fmt: skip
    if name == "openloop":
        out: dict[str, float] = {}
        clean = [s for s in result["steps"]
                 if s["lost"] == 0 and s["msgs_per_s"] >= 0.95 * s["offered_per_s"]]  # fmt: skip
        if clean:
            out["open loop max clean rate msgs/s"] = max(s["msgs_per_s"] for s in clean)
        for s in result["steps"]:
            if s["offered_per_s"] == p99_rate:
                out[f"open loop p99 ms at {p99_rate}/s"] = s["p99_ms"]
                out[f"open loop lost at {p99_rate}/s"] = s["lost"]
        offered = [s["offered_per_s"] for s in result["steps"]]
        if result["stopped"] and offered and max(offered) < p99_rate:
            out[f"open loop p99 ms at {p99_rate}/s"] = math.inf  # saturated below that rate
        return out
    out = {}
    for p in result["points"]:
        out[f"memory KB/session {variant} at {p['sessions']}"] = p["kb_per_session"]
    return out


# (figure, ours figure, prosody figure, comparison, factor): ours <op> factor x prosody
def issue_targets(p99_rate: int, sizes: list[int], tls_modes: list[str],
                  ) -> list[tuple[str, str, str, str, float]]:  # fmt: skip
    rows = [
        ("closed-loop msgs/s >= 1.5x Prosody", "closed loop msgs/s", "closed loop msgs/s",
         ">=", 1.5),
        (f"p99 at {p99_rate}/s offered <= Prosody", f"open loop p99 ms at {p99_rate}/s",
         f"open loop p99 ms at {p99_rate}/s", "<=", 1.0),
        ("SCRAM-SHA-256 logins/s >= 2x Prosody PLAIN", "login SCRAM-SHA-256 logins/s",
         "login PLAIN logins/s", ">=", 2.0),
    ]  # fmt: skip
    if sizes:
        for mode in tls_modes:
            label = "TLS" if mode != "none" else "plaintext"
            key = f"memory KB/session {label} at {sizes[-1]}"
            rows.append((f"memory/session ({label}) <= Prosody", key, key, "<=", 1.0))
    return rows


def _stat(values: list[float]) -> str:
    if not values:
        return "-"
    if math.inf in values:
        return "saturated below" if statistics.median(values) == math.inf else "(saturated once)"
    med = statistics.median(values)
    if len(values) == 1:
        return f"{med:,.1f}"
    return f"{med:,.1f} [{min(values):,.1f}-{max(values):,.1f}]"


def final_table(collected: dict[str, dict[str, list[float]]], names: list[str],
                rows: list[tuple[str, str, str, str, float]]) -> list[str]:  # fmt: skip
    keys: list[str] = []
    for name in names:
        for key in collected.get(name, {}):
            if key not in keys:
                keys.append(key)
    rank = {"login": 0, "closed": 1, "open": 2, "memory": 3}
    keys.sort(key=lambda k: rank.get(k.split()[0], 4))  # stable: first appearance within
    width = max([len(k) for k in keys] + [10])
    head = f"{'figure':<{width}} | " + " | ".join(f"{n:<24}" for n in names)
    others = [n for n in names if n != "ours"] if "ours" in names else []
    for other in others:  # ratio columns: ours/prosody, ours/ejabberd
        head += f" | ours/{other}"
    lines = [head, "-" * len(head)]
    for key in keys:
        cells = [_stat(collected.get(n, {}).get(key, [])) for n in names]
        line = f"{key:<{width}} | " + " | ".join(f"{c:<24}" for c in cells)
        for other in others:
            ours = collected["ours"].get(key)
            theirs = collected[other].get(key)
            cell = "-"
            if ours and theirs and statistics.median(theirs):
                a, b = statistics.median(ours), statistics.median(theirs)
                cell = "-" if math.inf in (a, b) else f"{a / b:.2f}"
            line += f" | {cell:<{len(other) + 5}}"
        lines.append(line.rstrip())
    if "ours" in names and "prosody" in names:
        lines += ["", "issue 6 targets (medians):"]
        for label, ours_key, their_key, op, factor in rows:
            ours = collected["ours"].get(ours_key)
            theirs = collected["prosody"].get(their_key)
            if not ours or not theirs:
                lines.append(f"  {label:<48} not measured")
                continue
            a, b = statistics.median(ours), statistics.median(theirs)
            if math.inf in (a, b):
                verdict = "met" if (a < b) == (op == "<=") else "NOT met"
                lines.append(f"  {label:<48} ours {a:,.1f} vs {b:,.1f} (inf: saturated below"
                             f" that rate) -> {verdict}")  # fmt: skip
                continue
            ratio = a / b if b else float("inf")
            met = a >= factor * b if op == ">=" else a <= factor * b
            lines.append(f"  {label:<48} ours {a:,.1f} vs {b:,.1f}: ratio {ratio:.2f}"
                         f" -> {'met' if met else 'NOT met'}")  # fmt: skip
    return lines


# --- main ------------------------------------------------------------------------


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split(",") if x.strip())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--quick", action="store_true", help="small scenarios, a few seconds per target")
    add("--targets", "--target", default="ours",
        help="ours,prosody,ejabberd (comma-separated)")  # fmt: skip
    add("--scenarios", default=",".join(SCENARIO_NAMES))
    add("--repeat", type=int, default=1, help="repetitions of every scenario")
    add("--tls", choices=("direct", "starttls", "none"), default="direct",
        help="transport for login/throughput/openloop (default direct TLS)")  # fmt: skip
    add("--mechanism", choices=("SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"), default=None,
        help="SASL mechanism (default: per target, see the docstring)")  # fmt: skip
    add("--logins", type=int, default=None, help="login: clients (1000)")
    add("--login-concurrency", type=int, default=50)
    add("--clients", type=int, default=None, help="throughput/openloop: clients (1000)")
    add("--inflight", type=int, default=5, help="throughput: messages in flight per client")
    add("--duration", type=float, default=None, help="throughput: seconds (15)")
    add("--warmup", type=float, default=None, help="throughput: seconds (3)")
    add("--rates", default=None, help="openloop: offered msgs/s (1000,2000,5000,...)")
    add("--step-duration", type=float, default=None, help="openloop: seconds per rate (6)")
    add("--p99-rate", type=int, default=5000, help="openloop rate for the p99 target")
    add("--sessions", default=None, help="memory: session counts (1000,5000,10000)")
    add("--memory-repeat", type=int, default=1,
        help="repetitions of the memory scenario (default 1: its spread across"
        " repetitions was under 0.5%%, and it is the slowest)")  # fmt: skip
    add("--memory-tls", default="direct,none", help="memory: transports to measure")
    add("--prosody-modules", choices=("full", "minimal"), default="full",
        help="Prosody modules: ours' feature set (full) or the bare minimum")  # fmt: skip
    add("--profile", type=Path, default=None, help="py-spy summary file (ours only)")
    add("--json", action="store_true", help="also print the results as JSON")
    args = parser.parse_args()

    quick = args.quick
    names = [t.strip() for t in args.targets.split(",") if t.strip()]
    unknown = set(names) - set(targets.TARGETS)
    if unknown:
        parser.error(f"unknown targets: {', '.join(sorted(unknown))}")
    scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    if set(scenarios) - set(SCENARIO_NAMES):
        parser.error(
            f"unknown scenarios: {', '.join(sorted(set(scenarios) - set(SCENARIO_NAMES)))}"
        )
    logins = args.logins or (50 if quick else 1000)
    clients = args.clients or (20 if quick else 1000)
    duration = args.duration or (2.0 if quick else 15.0)
    warmup = args.warmup if args.warmup is not None else (0.5 if quick else 3.0)
    rates = (
        _ints(args.rates)
        if args.rates
        else ((500, 2000) if quick else (1000, 2000, 5000, 7000, 10000, 15000, 20000))
    )
    step = args.step_duration or (1.0 if quick else 6.0)
    step_warmup = 0.3 if quick else 1.0
    sizes = (
        _ints(args.sessions) if args.sessions else ((100, 200) if quick else (1000, 5000, 10000))
    )
    settle = 0.5 if quick else 2.0
    memory_tls = [m.strip() for m in args.memory_tls.split(",") if m.strip()]
    # the open-loop rate whose p99 is compared: --p99-rate, or the nearest lower one offered
    p99_rate = max([r for r in rates if r <= args.p99_rate] or [rates[0]])
    profile = args.profile
    if profile is not None and shutil.which("py-spy") is None:
        print("py-spy not found; running without --profile")
        profile = None

    fds = raise_fd_limit()
    targets.pin(0, targets.GENERATOR_CPU)
    print(f"python {platform.python_version()} ({platform.python_implementation()}),"
          f" {ssl.OPENSSL_VERSION}, {os.cpu_count()} CPUs; server on CPU {targets.SERVER_CPU},"
          f" generator on CPU {targets.GENERATOR_CPU}; RLIMIT_NOFILE {fds}")  # fmt: skip
    workdir = Path(tempfile.mkdtemp(prefix="xmpp-load-"))
    collected: dict[str, dict[str, list[float]]] = {}
    everything: list[dict[str, Any]] = []
    try:
        needed = max(logins if "login" in scenarios else 0,
                     clients if {"throughput", "openloop"} & set(scenarios) else 0,
                     max((s for s in sizes if s + 64 <= fds), default=0)
                     if "memory" in scenarios else 0, 1)  # fmt: skip
        prepared = []
        for name in names:
            if name == "ours":
                target: Any = targets.Ours(workdir, profile is not None)
            elif name == "prosody":
                target = targets.Prosody(workdir, args.prosody_modules)
            else:
                target = targets.TARGETS[name](workdir)
            try:
                print(f"{name:<8} {target.description}: {target.prepare(needed)}")
            except Exception as exc:
                print(f"{name:<8} FAILED to prepare: {type(exc).__name__}: {exc}")
                continue
            prepared.append(target)
        raw_profiles: list[Path] = []
        for rep in range(args.repeat):
            if args.repeat > 1:
                print(f"== repetition {rep + 1} of {args.repeat}")
            for target in prepared:
                print(f"{target.name}:")
                runs: list[tuple[str, str, str, str, dict[str, Any]]] = []
                for scenario in scenarios:
                    if scenario == "login":
                        mechs = (
                            [args.mechanism] if args.mechanism else list(target.login_mechanisms)
                        )
                        if args.tls == "none":  # our client sends PLAIN only over TLS
                            mechs = [m for m in mechs if m != "PLAIN"] or [target.default_mechanism]
                        if quick:  # the headline mechanism only (the issue's target compares them)
                            mechs = mechs[:1]
                        for mech in mechs:
                            runs.append((scenario, mech, args.tls, mech,
                                         {"count": logins}))  # fmt: skip
                    elif scenario in ("throughput", "openloop"):
                        mech = args.mechanism or target.default_mechanism
                        params = {"count": clients, "inflight": args.inflight}
                        if scenario == "throughput":
                            params |= {"duration": duration, "warmup": min(warmup, duration / 2)}
                        else:
                            params |= {"duration": step, "warmup": step_warmup, "rates": rates,
                                       "drain": 5.0}  # fmt: skip
                        if quick:
                            params["drain"] = 2.0
                        runs.append((scenario, f"{args.tls} TLS" if args.tls != "none"
                                     else "plaintext", args.tls, mech, params))  # fmt: skip
                    elif rep < args.memory_repeat:
                        for mode in memory_tls:
                            mech = target.default_mechanism
                            if args.mechanism and (mode != "none" or args.mechanism != "PLAIN"):
                                mech = args.mechanism
                            runs.append((scenario, "TLS" if mode != "none" else "plaintext",
                                         mode, mech, {"sizes": sizes, "settle": settle}))  # fmt: skip
                for scenario, variant, tls, mech, params in runs:
                    raw = None
                    if profile is not None and target.name == "ours":
                        raw = workdir / f"profile-{len(raw_profiles)}.txt"
                    try:
                        server = target.start(tls, raw)
                    except RuntimeError as exc:
                        result: dict[str, Any] = {"error": str(exc)}
                    else:
                        job = Job(scenario=scenario, host="127.0.0.1", port=server.port,
                                  tls=tls, mechanism=mech, domain=targets.DOMAIN,
                                  password=targets.PASSWORD, cafile=target.cafile,
                                  server_pid=server.pid,
                                  concurrency=args.login_concurrency, **params)  # fmt: skip
                        try:
                            result = run_job(job)
                        finally:
                            server.stop()
                        if server.proc.returncode not in (0, -2, -15, None):
                            result.setdefault("server_exit", server.proc.returncode)
                    if raw is not None and raw.exists():
                        raw_profiles.append(raw)
                    for line in report(scenario, variant, result):
                        print(line, flush=True)
                    figs = figures(scenario, variant, result, p99_rate)
                    for key, value in figs.items():
                        collected.setdefault(target.name, {}).setdefault(key, []).append(value)
                    everything.append({"target": target.name, "repetition": rep + 1,
                                       "scenario": scenario, "variant": variant,
                                       "mechanism": mech, "tls": tls, "result": result})  # fmt: skip
        if profile is not None and raw_profiles:
            merged = workdir / "profile-merged.txt"
            merged.write_text("".join(p.read_text() for p in raw_profiles))
            summarise_profile(merged, profile)
        done = [t.name for t in prepared]
        if len(done) > 1 or args.repeat > 1:
            print()
            memory_reps = min(args.repeat, args.memory_repeat)
            print(f"summary: median [min-max] of {args.repeat} repetition(s)"
                  f" ({memory_reps} for memory)")  # fmt: skip
            for line in final_table(collected, done,
                                    issue_targets(p99_rate, list(sizes), memory_tls)):  # fmt: skip
                print(line)
        if args.json:
            print(json.dumps({"runs": everything, "figures": collected}, indent=2, default=str))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    try:
        main()
    except Exception as exc:  # the benchmark never fails the build
        import traceback

        traceback.print_exc()
        print(f"load benchmark error: {type(exc).__name__}: {exc}")
    sys.exit(0)
