"""Load benchmark for xmpp-trio, side by side with Prosody (issue 6).

    python benchmarks/load/run.py --quick                       # a few seconds each, ours only (CI)
    python benchmarks/load/run.py                               # ours, full scenarios
    python benchmarks/load/run.py --targets ours,prosody --repeat 3   # what compare.sh runs
    python benchmarks/load/run.py --scenarios throughput --profile prof.txt
    python benchmarks/load/run.py --targets ours@HEAD~1,ours --order scenario --commit-rule
    python benchmarks/load/run.py --list-scenarios

Each target (``ours``: ``python -m xmpp_trio serve`` from this checkout;
``ours@REV``: the same from a temporary git worktree of REV; ``prosody``:
Prosody 0.12 with a generated config; ``ejabberd``; see ``targets.py``) gets
``N`` accounts once, then a fresh server per scenario run, pinned to CPU 0.
The generator (``generator.py``: one ``select.epoll`` loop, non-blocking
sockets and ``ssl.SSLSocket``, no Trio, no XML parsing once bound) runs in a
forked process pinned to CPU 1. Logins are negotiated by our sans-IO
``ClientConnection``, so any RFC 6120 server works.

Scenarios are declared in ``scenarios.py`` (the registry: name, description,
generator function, runs, report, figures, their own options); this script
names none of them. ``--list-scenarios`` prints them:

* ``login``: ``--logins`` clients connect (``--tls``), authenticate, bind and
  send initial presence, ``--login-concurrency`` at a time: logins/s and
  p50/p99 latency. Run once per mechanism: ours SCRAM-SHA-256 then PLAIN,
  Prosody PLAIN then SCRAM-SHA-1 (or just ``--mechanism``).
* ``throughput``: ``--clients`` bound clients send chat messages to random
  online peers (full JIDs), closed loop, ``--inflight`` in flight per client:
  delivered msgs/s, end-to-end latency p50/p99/max (the send time is in the
  body), losses after a drain.
* ``throughput-bare`` (issue 24's shape): the same clients over STARTTLS
  (``--user-tls``) send chat messages with ~120-byte bodies (``--body-size``)
  to random peers' bare JIDs (one resource per account), 4 in flight
  (``--bare-inflight``), closed loop: msgs/s, p50/p99, losses.
* ``openloop``: the same clients at rising offered rates (``--rates``), sent on
  schedule from a token bucket in the epoll loop whatever gets delivered;
  stops rising when deliveries fall under 95% of the offered rate, p99 passes
  1 s, or messages are lost.
* ``presence``: every account has a roster of ``--contacts`` (20) neighbours on
  a ring, subscriptions both ways, written into the target's storage before
  the server starts; clients send presence updates (``--presence-inflight``
  in flight, an update done when every contact got it): presence stanzas
  delivered/s, p50/p99, losses.
* ``mixed``: per client 70% chat to bare JIDs, 10% to full JIDs, 15% presence
  updates to the roster, 5% iq ping to the server (``--mix``), 4 in flight,
  closed loop: stanzas delivered/s (a presence update counts once per
  contact), p50/p99, per-kind rates.
* ``memory``: server RSS (the whole process tree) before and after growing
  numbers of idle authenticated sessions (``--sessions``), over TLS and in
  plaintext (``--memory-tls``); sizes above the RLIMIT_NOFILE hard limit are
  skipped and say so.

Every measuring window reports the CPU share (of one core) of the server and of
the generator: a server near 100% and a generator well below means the figure
is the server's. With more than one target or ``--repeat`` above 1 a final
table gives the median [min-max] of each figure, the ratio ours/Prosody and
the issue's targets. ``--commit-rule`` (two targets OLD,NEW) prints new
against old instead, PASS/FAIL per figure held to the 5% rule
(``compare_commits.sh``). ``--order scenario`` runs the targets in turn for
every scenario run (A B A B) instead of one target's scenarios after the
other's. Nothing is asserted: the script always exits 0 (a failed scenario
prints its error; a target that cannot run a scenario, e.g. ejabberd without
rosters, prints why it skipped it).

``--profile FILE`` runs our server under ``py-spy record`` and writes the top
functions by own time to FILE; the sampling costs CPU, so use the figures of a
run without it.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
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
import gogen  # noqa: E402
import matrix  # noqa: E402  (registers issue 24's matrix scenarios)
import scenarios  # noqa: E402
import targets  # noqa: E402
from generator import Job  # noqa: E402

#: Figures by target, then by name, then by repetition (0-based).
ByRep = dict[str, dict[str, dict[int, float]]]


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
        scenario = scenarios.REGISTRY[job.scenario]
        if job.engine and gogen.supports(job) and not scenario.passes:
            results.put(gogen.run(job.engine, job))
        else:
            results.put(scenario.run(job))
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


def report(name: str, variant: str, result: dict[str, Any]) -> list[str]:
    """Human lines for one scenario result (the scenario's ``report``)."""
    head = f"  {name:<10} {variant:<22}"
    if "error" in result:
        return [f"{head} FAILED: {result['error']}"]
    if "not_run" in result:
        return [f"{head} skipped: {result['not_run']}"]
    lines = scenarios.REGISTRY[name].report(variant, result)
    return [f"{head} {lines[0]}", *lines[1:]]


def figures(name: str, variant: str, result: dict[str, Any], opts: argparse.Namespace
            ) -> dict[str, float]:  # fmt: skip
    """Named figures of one scenario result for the final table."""
    if "error" in result or "not_run" in result:
        return {}
    out = scenarios.REGISTRY[name].figures(variant, result, opts)
    if not out:
        return out
    first = next(iter(out))
    base = first.rsplit(" ", 1)[0]
    if "generator_cpu" in result and not any("gen CPU" in k for k in out):
        # issue 24: the generator's CPU beside every figure, so saturation shows
        out[base + " gen CPU %"] = 100 * result["generator_cpu"]
    if first.endswith("/s") and result.get("server_cpu", 0) > 0.05:
        # issue 24: the rate per second of server CPU, what one whole core would
        # give; on a shared machine the server gets only part of its core, and
        # this figure moves far less than the rate itself
        out[base + " per server CPU-s"] = out[first] / result["server_cpu"]
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
                rows: list[tuple[str, str, str, str, float]],
                by_rep: ByRep | None = None) -> list[str]:  # fmt: skip
    keys: list[str] = []
    for name in names:
        for key in collected.get(name, {}):
            if key not in keys:
                keys.append(key)
    keys.sort(key=scenarios.rank)  # stable: first appearance within a scenario
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
    return lines + issue24_targets(collected, by_rep or {})


def _paired(ours: dict[int, float], theirs: dict[int, float]) -> str:
    """The ratio within each repetition both measured (with ``--order
    scenario`` their runs were taken a minute apart: the machine's slow drift
    cancels), as median [min-max] (empty below two such repetitions)."""
    ratios = [ours[rep] / theirs[rep] for rep in ours if theirs.get(rep)]
    if len(ratios) < 2 or math.inf in ratios:
        return ""
    return f", paired {statistics.median(ratios):.2f} [{min(ratios):.2f}-{max(ratios):.2f}]"


def issue24_targets(collected: dict[str, dict[str, list[float]]], by_rep: ByRep) -> list[str]:
    """Issue 24: every message cell of the matrix >= 1.2x ejabberd and >= 1.5x
    Prosody's minimal set; p99 at 80% of ejabberd's saturation <= ejabberd's."""
    ours = collected.get("ours", {})
    mine = by_rep.get("ours", {})
    lines: list[str] = []
    med = statistics.median
    for other, factor in (("ejabberd", 1.2), ("prosody-min", 1.5)):
        theirs = collected.get(other, {})
        for key in ours:
            if key.startswith("matrix ") and key.endswith(" msgs/s") and theirs.get(key):
                a, b = med(ours[key]), med(theirs[key])
                floor = 1.0 if other == "ejabberd" and key.startswith("matrix bare STARTTLS x4") \
                    else factor  # fmt: skip
                verdict = "met" if a >= factor * b else ("floor met" if a >= floor * b else "NOT met")
                cpu_key = key.removesuffix(" msgs/s") + " per server CPU-s"
                per_cpu = ""
                if ours.get(cpu_key) and theirs.get(cpu_key):
                    ratio = med(ours[cpu_key]) / med(theirs[cpu_key])
                    per_cpu = f" (per server CPU-s {ratio:.2f})"
                lines.append(f"  {key.removeprefix('matrix ').removesuffix(' msgs/s'):<30}"
                             f" >= {factor}x {other:<12} ratio {a / b:.2f}{per_cpu}"
                             f"{_paired(mine.get(key, {}), by_rep.get(other, {}).get(key, {}))}"
                             f" -> {verdict}")  # fmt: skip
    p99 = "sat-open p99 ms at 80% of ejabberd's"
    # ejabberd at the same rate; where its pass stopped below it (saturated
    # first), at 80% of its own open-loop saturation: a lower rate, so the
    # verdict can only be harder for ours
    theirs = collected.get("ejabberd", {})
    ejabberd_p99 = theirs.get(p99) or theirs.get("sat-open p99 ms at 80% of own")
    if ours.get(p99) and ejabberd_p99:
        a, b = med(ours[p99]), med(ejabberd_p99)
        lines.append(f"  p99 at 80% of ejabberd's saturation: ours {a:.1f} ms vs ejabberd"
                     f" {b:.1f} ms -> {'met' if a <= b else 'NOT met'}")  # fmt: skip
    return ["", "issue 24 targets (medians; SHARED machines make them indicative):", *lines] \
        if lines else []  # fmt: skip


# --- main ------------------------------------------------------------------------


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split(",") if x.strip())


def rule_of(key: str, selected: list[scenarios.Scenario]) -> int:
    """+1 / -1 if figure ``key`` is held to the commit rule (higher / lower is better), else 0."""
    for scenario in selected:
        for prefix, direction in scenario.rule:
            if key.startswith(prefix):
                return direction
    return 0


def commit_table(collected: dict[str, dict[str, list[float]]], old: str, new: str,
                 selected: list[scenarios.Scenario], tolerance: float,
                 repeat: int) -> list[str]:  # fmt: skip
    """Old against new commit: median [min-max] per figure, new/old, PASS/FAIL on the rule's
    figures (higher-is-better ones may not fall more than ``tolerance``, lower-is-better
    ones may not rise more)."""
    keys: list[str] = []
    for name in (old, new):
        for key in collected.get(name, {}):
            if key not in keys:
                keys.append(key)
    keys.sort(key=scenarios.rank)
    width = max([len(k) for k in keys] + [10])
    head = f"{'figure':<{width}} | {old:<30} | {new:<30} | new/old | rule (within {tolerance:.0%})"
    lines = [head, "-" * len(head)]
    failed: list[str] = []
    for key in keys:
        a, b = collected.get(old, {}).get(key, []), collected.get(new, {}).get(key, [])
        direction = rule_of(key, selected)
        ratio = "-"
        verdict = "info" if not direction else "FAIL (not measured on both)"
        if a and b and math.inf not in (statistics.median(a), statistics.median(b)):
            ma, mb = statistics.median(a), statistics.median(b)
            if ma:
                r = mb / ma
                ratio = f"{r:.3f}"
                if direction:
                    ok = r >= 1 - tolerance if direction > 0 else r <= 1 + tolerance
                    better = "higher" if direction > 0 else "lower"
                    verdict = f"{'PASS' if ok else 'FAIL'} ({better} is better)"
            elif direction:
                verdict = "PASS (both 0)" if not mb else "FAIL"
        if verdict.startswith("FAIL"):
            failed.append(key)
        lines.append(f"{key:<{width}} | {_stat(a):<30} | {_stat(b):<30} | {ratio:<7} | {verdict}")
    held = [k for k in keys if rule_of(k, selected)]
    lines.append("")
    if not held:
        lines.append("commit rule: FAIL (no figure of the rule was measured)")
    elif failed:
        lines.append(f"commit rule: FAIL ({', '.join(failed)})")
    else:
        lines.append(f"commit rule: PASS ({len(held)} figures within {tolerance:.0%} of {old})")
    if repeat < 5:
        lines.append(f"(medians of {repeat} repetitions: the rule asks for at least 5)")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--quick", action="store_true", help="small scenarios, a few seconds per target")
    add("--targets", "--target", default="ours",
        help="ours,ours-nomam,ours-nice0,ours-nostore,prosody,prosody-min,prosody-nomam,ejabberd,ejabberd-sql,ejabberd-full,"
        "ours@REV (comma-separated; ejabberd-sql / ejabberd-full: with mod_mam archiving"
        " in SQLite / Mnesia; prosody-nomam: Prosody's full set without mod_mam; ours-nomam: ours"
        " with archives off; ours-nice0: ours with [runtime] writer_nice = 0; ours-nostore:"
        " ours archiving with the writer's SQLite skipped (the loop's share); ours@REV: our server from"
        " a temporary git worktree of REV)")  # fmt: skip
    add(
        "--scenarios",
        default=None,
        help="comma-separated, from: " + ", ".join(scenarios.REGISTRY)
        + f" (default: {','.join(scenarios.defaults())}; with --matrix on:"
        f" {matrix.MATRIX_SCENARIOS})",
    )
    add("--matrix", choices=("on", "off"), default="off",
        help="issue 24's matrix (compare.sh passes on): its scenarios by default")  # fmt: skip
    add("--list-scenarios", action="store_true", help="print the scenarios and exit")
    add("--repeat", type=int, default=1, help="repetitions of every scenario")
    add("--order", choices=("target", "scenario"), default="target",
        help="within a repetition: every scenario of one target, then the next target"
        " (target), or every target for one scenario run, then the next (scenario:"
        " A B A B, what compare_commits.sh uses)")  # fmt: skip
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
    add("--generator", choices=("auto", "go", "python"), default="auto",
        help="auto: the compiled one (gen/, built with Go when a toolchain is there),"
        " else the Python one with a warning; go: fail without Go")  # fmt: skip
    add("--write", choices=("batch", "single"), default="batch",
        help="Go generator: one write per wake-up (batch) or per stanza (single)")
    add("--nagle", action="store_true", help="Go generator: leave Nagle on (no TCP_NODELAY)")
    add("--profile", type=Path, default=None, help="py-spy summary file (ours only)")
    add("--json", action="store_true", help="also print the results as JSON")
    add("--commit-rule", action="store_true",
        help="two targets OLD,NEW (e.g. ours@HEAD~1,ours): print new against old per figure"
        " and PASS/FAIL on the figures the rule holds (compare_commits.sh)")  # fmt: skip
    add("--tolerance", type=float, default=0.05, help="--commit-rule: allowed change (0.05)")
    group = parser.add_argument_group("options of the scenarios")
    for scenario in scenarios.REGISTRY.values():
        if scenario.options is not None:
            scenario.options(group)
    args = parser.parse_args()

    if args.list_scenarios:
        for scenario in scenarios.REGISTRY.values():
            default = "" if scenario.default else " (not in the default list)"
            print(f"{scenario.name:<16} {scenario.description}{default}")
        return 0
    quick = args.quick
    names = [t.strip() for t in args.targets.split(",") if t.strip()]
    unknown = [n for n in names if not targets.known(n)]
    if unknown:
        parser.error(f"unknown targets: {', '.join(sorted(unknown))}")
    if len(set(names)) != len(names):
        parser.error("a target is named twice")
    if args.commit_rule and len(names) != 2:
        parser.error("--commit-rule compares two targets: OLD,NEW")
    if args.scenarios is None:
        args.scenarios = (matrix.MATRIX_SCENARIOS if args.matrix == "on"
                          else ",".join(scenarios.defaults()))  # fmt: skip
    chosen = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    if set(chosen) - set(scenarios.REGISTRY):
        parser.error(
            f"unknown scenarios: {', '.join(sorted(set(chosen) - set(scenarios.REGISTRY)))}"
        )
    chosen = matrix.with_saturation(chosen, args)  # openloop-sat alone: its rates measured first
    selected = [scenarios.REGISTRY[s] for s in chosen]
    for scenario in selected:
        try:
            if scenario.check is not None:
                scenario.check(args)
        except ValueError as exc:
            parser.error(str(exc))
    # Options with defaults that depend on --quick, resolved once for every scenario.
    args.logins = args.logins or (50 if quick else 1000)
    args.clients = args.clients or (20 if quick else 1000)
    args.duration_given = args.duration is not None
    args.duration = args.duration or (2.0 if quick else 15.0)
    args.warmup = args.warmup if args.warmup is not None else (0.5 if quick else 3.0)
    rates = (
        _ints(args.rates)
        if args.rates
        else ((500, 2000) if quick else (1000, 2000, 5000, 7000, 10000, 15000, 20000))
    )
    args.rates = rates
    args.step = args.step_duration or (1.0 if quick else 6.0)
    args.step_warmup = 0.3 if quick else 1.0
    sizes = (
        _ints(args.sessions) if args.sessions else ((100, 200) if quick else (1000, 5000, 10000))
    )
    args.sizes = sizes
    args.settle = 0.5 if quick else 2.0
    memory_tls = [m.strip() for m in args.memory_tls.split(",") if m.strip()]
    args.memory_tls_list = memory_tls
    # the open-loop rate whose p99 is compared: --p99-rate, or the nearest lower one offered
    p99_rate = max([r for r in rates if r <= args.p99_rate] or [rates[0]])
    args.p99_rate_used = p99_rate
    profile = args.profile
    if profile is not None and shutil.which("py-spy") is None:
        print("py-spy not found; running without --profile")
        profile = None

    engine = ""
    if args.generator != "python":
        engine = gogen.build() or ""
        if not engine and args.generator == "go":
            parser.error("--generator go: the Go generator could not be built")
    args.engine = engine

    fds = raise_fd_limit()
    args.fd_limit = fds
    targets.pin(0, targets.GENERATOR_CPU)
    print(f"python {platform.python_version()} ({platform.python_implementation()}),"
          f" {ssl.OPENSSL_VERSION}, {os.cpu_count()} CPUs; server on CPU {targets.SERVER_CPU},"
          f" generator on CPU {targets.GENERATOR_CPU}; RLIMIT_NOFILE {fds}; generator:"
          f" {'compiled (' + engine + ')' if engine else 'Python'}")  # fmt: skip
    workdir = Path(tempfile.mkdtemp(prefix="xmpp-load-"))
    collected: dict[str, dict[str, list[float]]] = {}
    by_rep: ByRep = {}  # the same figures by repetition (paired ratios)
    args.collected = collected  # openloop-sat reads the saturation rates measured so far
    everything: list[dict[str, Any]] = []
    made: list[Any] = []
    raw_profiles: list[Path] = []

    def execute(target: Any, scenario: scenarios.Scenario, run: scenarios.Run, rep: int) -> None:
        raw = None
        if profile is not None and target.name.startswith("ours"):
            raw = workdir / f"profile-{len(raw_profiles)}.txt"
        result: dict[str, Any]
        try:
            if run.contacts or target.rosters:
                target.provide_rosters(run.contacts, run.params.get("count", 0))
        except Exception as exc:  # this target cannot: skip the run, say why
            result = {"not_run": f"{target.name} cannot be given rosters ({exc})"}
        else:
            try:
                server = target.start(run.tls, raw)
            except RuntimeError as exc:
                result = {"error": str(exc)}
            else:
                job = Job(scenario=scenario.name, host="127.0.0.1", port=server.port,
                          tls=run.tls, mechanism=run.mechanism, domain=targets.DOMAIN,
                          password=targets.PASSWORD, cafile=target.cafile,
                          server_pid=server.pid, engine=args.engine,
                          **({"concurrency": args.login_concurrency} | run.params))  # fmt: skip
                if args.write != "batch" or args.nagle:
                    job = dataclasses.replace(job, extra=job.extra | {
                        "write": args.write, "nodelay": not args.nagle})
                try:
                    result = run_job(job)
                finally:
                    server.stop()
                if server.proc.returncode not in (0, -2, -15, None):
                    result.setdefault("server_exit", server.proc.returncode)
        if raw is not None and raw.exists():
            raw_profiles.append(raw)
        for line in report(scenario.name, run.variant, result):
            print(line, flush=True)
        for key, value in figures(scenario.name, run.variant, result, args).items():
            collected.setdefault(target.name, {}).setdefault(key, []).append(value)
            by_rep.setdefault(target.name, {}).setdefault(key, {})[rep] = value
        everything.append({"target": target.name, "repetition": rep + 1,
                           "scenario": scenario.name, "variant": run.variant,
                           "mechanism": run.mechanism, "tls": run.tls,
                           "result": result})  # fmt: skip

    try:
        needed = max([s.accounts(args) for s in selected] + [1])
        prepared = []
        for name in names:
            target = targets.make(name, workdir, profile=profile is not None,
                                  prosody_modules=args.prosody_modules)  # fmt: skip
            made.append(target)
            try:
                note = target.prepare(needed)  # may complete the description
                print(f"{name:<8} {target.description}: {note}")
            except Exception as exc:
                print(f"{name:<8} FAILED to prepare: {type(exc).__name__}: {exc}")
                continue
            prepared.append(target)
        for rep in range(args.repeat):
            if args.repeat > 1:
                print(f"== repetition {rep + 1} of {args.repeat}")
            if args.order == "target":
                for target in prepared:
                    print(f"{target.name}:")
                    for scenario in selected:
                        for run in scenario.expand(args, target, rep):
                            execute(target, scenario, run, rep)
                continue
            for scenario in selected:  # A B A B: every target for each run in turn
                expanded = {t.name: scenario.expand(args, t, rep) for t in prepared}
                for i in range(max([len(r) for r in expanded.values()] + [0])):
                    for target in prepared:
                        if i < len(expanded[target.name]):
                            print(f"{target.name}:")
                            execute(target, scenario, expanded[target.name][i], rep)
        if profile is not None and raw_profiles:
            merged = workdir / "profile-merged.txt"
            merged.write_text("".join(p.read_text() for p in raw_profiles))
            summarise_profile(merged, profile)
        done = [t.name for t in prepared]
        memory_reps = min(args.repeat, args.memory_repeat)
        if args.commit_rule:
            print()
            print(f"new against old: median [min-max] of {args.repeat} repetition(s)"
                  f" ({memory_reps} for memory), interleaved by {args.order}")  # fmt: skip
            for line in commit_table(
                collected, names[0], names[1], selected, args.tolerance, args.repeat
            ):
                print(line)
        elif len(done) > 1 or args.repeat > 1:
            print()
            print(f"summary: median [min-max] of {args.repeat} repetition(s)"
                  f" ({memory_reps} for memory)")  # fmt: skip
            for line in final_table(collected, done,
                                    issue_targets(p99_rate, list(sizes), memory_tls), by_rep):  # fmt: skip
                print(line)
        if args.json:
            print(json.dumps({"runs": everything, "figures": collected}, indent=2, default=str))
    finally:
        for target in made:
            try:
                target.close()
            except Exception as exc:
                print(f"{target.name:<8} cleanup failed: {type(exc).__name__}: {exc}")
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
