"""Issue 24's matrix, registered beside the scenarios of ``scenarios.py``.

* ``matrix``: chat of ~120-byte bodies to bare and to full JIDs, over STARTTLS
  and direct TLS, 1, 4 and 16 in flight per client, 200 and 1,000 clients,
  closed loop: one run (a fresh server) per cell.
* ``storm``: every login at once (``--storm`` clients, all concurrent) over
  STARTTLS: logins/s and p50/p99.
* ``mixed-full``: the mix users send (chat to bare and full JIDs, messages
  with receipt requests and chat states answered by receipts, presence
  updates to rosters of ``--mixed-contacts`` (50), iq pings, roster sets and
  their pushes), closed loop; needs the compiled generator.
* ``openloop-sat``: open loop (bare JIDs, STARTTLS) at 50, 80 and 95% of the
  target's own open-loop saturation rate, and at 80% of ejabberd's closed-loop
  rate when ejabberd ran before: p99 per rate. Two passes on one server: a
  ramp (:data:`RAMP`, shares of the target's median ``matrix`` figure for
  bare JIDs, STARTTLS, 4 in flight so far in this run) up to the first rate
  it cannot keep up with, whose highest delivered rate is its open-loop
  saturation; then the shares of that. (A closed loop with 4 in flight lets
  a server read and write several messages at once; open loop, one message a
  read, a server can saturate below that figure: ejabberd at 0.78 of it in
  session 14, ours past its p99 knee at about half of it, so shares of the
  closed-loop figure measured ours saturated at "50%" in the full pass.)
  Chosen without ``matrix``, it gets the matrix's bare
  STARTTLS x4 cell(s) run before it (:func:`with_saturation`); with
  ``--order scenario`` every target's rate is known before the first open
  loop, so ours gets the rate at 80% of ejabberd's too, and ejabberd itself
  runs that rate as well (the p99 target compares the two at one rate).

``run.py --matrix on`` (what ``compare.sh`` passes) runs these with login and
memory; ``--quick`` keeps two cells, 20 clients.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
from typing import Any

import generator
import gogen
import scenarios
from scenarios import Result, Run, register, user_transport

MATRIX_SCENARIOS = "login,storm,matrix,presence,mixed-full,openloop-sat,memory"
MIXED_FULL = "chat-bare=45,chat-full=10,receipt=15,presence=10,ping=10,roster=10"
JIDS = {"bare": "chat-bare", "full": "chat-full"}


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def _options(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--matrix-clients", default="200,1000", help="matrix: clients per cell")
    group.add_argument("--matrix-inflight", default="1,4,16", help="matrix: in flight per client")
    group.add_argument("--matrix-tls", default="starttls,direct", help="matrix: transports")
    group.add_argument("--matrix-jids", default="bare,full", help="matrix: addressing")
    group.add_argument("--storm", type=int, default=None, help="storm: logins, all at once (1000)")
    group.add_argument("--mixed-contacts", type=int, default=None,
                       help="mixed-full: contacts per roster (50; 4 with --quick)")  # fmt: skip


def _cells(opts: argparse.Namespace) -> list[tuple[str, str, int, int]]:
    if getattr(opts, "saturation_only", False):  # with_saturation: the cell openloop-sat reads
        counts = [opts.clients] if opts.quick else _ints(opts.matrix_clients)
        return [("bare", "starttls", 4, clients) for clients in counts]
    if opts.quick:
        return [("bare", "starttls", 4, opts.clients), ("full", "direct", 16, opts.clients)]
    return [(jid, tls, inflight, clients)
            for clients in _ints(opts.matrix_clients)
            for tls in opts.matrix_tls.split(",")
            for jid in opts.matrix_jids.split(",")
            for inflight in _ints(opts.matrix_inflight)]  # fmt: skip


def cell_name(jid: str, tls: str, inflight: int, clients: int) -> str:
    return f"{jid} {user_transport(tls)} x{inflight} {clients}c"


def _matrix_expand(opts: argparse.Namespace, target: Any, rep: int) -> list[Run]:
    mech = opts.mechanism or target.default_mechanism
    runs = []
    for jid, tls, inflight, clients in _cells(opts):
        params = scenarios._user_params(opts, inflight, {JIDS[jid]: 1.0}, 0)
        params["count"] = clients
        runs.append(Run(cell_name(jid, tls, inflight, clients), tls, mech, params))
    return runs


def _gen(result: Result) -> dict[str, float]:
    """The generator's CPU beside a figure (issue 24: saturation visible)."""
    return {"gen CPU %": 100 * result["generator_cpu"]} if "generator_cpu" in result else {}


def _matrix_figures(variant: str, result: Result, opts: argparse.Namespace) -> dict[str, float]:
    out = {f"matrix {variant} msgs/s": result["stanzas_per_s"],
           f"matrix {variant} p99 ms": result["p99_ms"],
           f"matrix {variant} lost": result["lost"]}  # fmt: skip
    out |= {f"matrix {variant} {k}": v for k, v in _gen(result).items()}
    return out


register(scenarios.Scenario(
    name="matrix",
    description="issue 24: chat to bare/full JIDs x STARTTLS/direct TLS x 1/4/16 in flight x"
                " 200/1,000 clients, closed loop: msgs/s, p99, generator CPU",
    run=generator.user_traffic_scenario,
    expand=_matrix_expand,
    report=scenarios._user_report,
    figures=_matrix_figures,
    accounts=lambda opts: max(c for *_, c in _cells(opts)),
    options=_options,
    default=False,
    prefixes=("matrix ",),
))  # fmt: skip


# --- storm -------------------------------------------------------------------------------


def _storm_count(opts: argparse.Namespace) -> int:
    return int(opts.storm or (50 if opts.quick else 1000))


def _storm_expand(opts: argparse.Namespace, target: Any, rep: int) -> list[Run]:
    mech = opts.mechanism or target.default_mechanism
    n = _storm_count(opts)
    return [Run(f"{mech} STARTTLS x{n}", "starttls", mech, {"count": n, "concurrency": n})]


def _storm_figures(variant: str, result: Result, opts: argparse.Namespace) -> dict[str, float]:
    if result.get("failures"):
        return {}
    return {f"storm {variant} logins/s": result["logins_per_s"],
            f"storm {variant} p99 ms": result["p99_ms"],
            **{f"storm {variant} {k}": v for k, v in _gen(result).items()}}  # fmt: skip


register(scenarios.Scenario(
    name="storm",
    description="login storm: --storm clients (1,000) log in over STARTTLS all at once:"
                " logins/s, p50/p99",
    run=generator.login_scenario,
    expand=_storm_expand,
    report=scenarios._login_report,
    figures=_storm_figures,
    accounts=_storm_count,
    default=False,
    prefixes=("storm ",),
))  # fmt: skip


# --- mixed-full ------------------------------------------------------------------------------


def _mixed_contacts(opts: argparse.Namespace) -> int:
    wanted = opts.mixed_contacts if opts.mixed_contacts is not None else (4 if opts.quick else 50)
    return int(min(wanted, max(0, opts.clients - 1)))


def _mixed_full_expand(opts: argparse.Namespace, target: Any, rep: int) -> list[Run]:
    mech = opts.mechanism or target.default_mechanism
    contacts = _mixed_contacts(opts)
    mix = {k: float(w) for k, w in (p.split("=") for p in MIXED_FULL.split(","))}
    params = scenarios._user_params(opts, opts.bare_inflight, mix, contacts)
    return [Run(user_transport(opts.user_tls), opts.user_tls, mech, params, contacts=contacts)]


def _python_cannot(job: generator.Job) -> Result:
    raise RuntimeError("mixed-full needs the compiled generator (receipts, roster sets)")


def _mixed_full_figures(variant: str, result: Result, opts: argparse.Namespace
                        ) -> dict[str, float]:  # fmt: skip
    out = scenarios._user_figures("mixed-full", "stanzas/s")(variant, result, opts)
    return out | {f"mixed-full {k}": v for k, v in _gen(result).items()}


register(scenarios.Scenario(
    name="mixed-full",
    description=f"issue 24's mix ({MIXED_FULL}; rosters of --mixed-contacts), closed loop:"
                " stanzas/s, p99 (compiled generator only)",
    run=_python_cannot,
    expand=_mixed_full_expand,
    report=scenarios._user_report,
    figures=_mixed_full_figures,
    accounts=scenarios._clients,
    default=False,
    prefixes=("mixed-full ",),
))  # fmt: skip


# --- open loop at shares of the saturation rate ------------------------------------------------

SHARES = (50, 80, 95)
#: The ramp that finds a target's open-loop saturation: shares of its
#: closed-loop figure (bare STARTTLS x4), up to the first it cannot keep up with.
RAMP = (0.3, 0.45, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.25, 1.5)


def saturation(opts: argparse.Namespace, name: str) -> float | None:
    """``name``'s median closed-loop rate for bare JIDs, STARTTLS, 4 in flight
    (the most clients measured), from this run's figures so far."""
    figures = getattr(opts, "collected", {}).get(name, {})
    best: tuple[int, float] | None = None
    for key, values in figures.items():
        if key.startswith("matrix bare STARTTLS x4 ") and key.endswith("c msgs/s") and values:
            clients = int(key.split()[4].removesuffix("c"))
            if best is None or clients > best[0]:
                best = (clients, statistics.median(values))
    if best is None and figures.get("bare closed loop msgs/s"):
        return float(statistics.median(figures["bare closed loop msgs/s"]))
    return best[1] if best else None


def with_saturation(chosen: list[str], opts: argparse.Namespace) -> list[str]:
    """``chosen`` with the matrix's bare STARTTLS x4 cell(s) run before
    ``openloop-sat`` when the matrix is not chosen: the saturation rates it
    reads (:func:`saturation`; without them it would run nothing)."""
    if "openloop-sat" not in chosen or "matrix" in chosen:
        return chosen
    opts.saturation_only = True
    at = chosen.index("openloop-sat")
    print("openloop-sat: measuring each target's saturation first (matrix, bare STARTTLS x4)")
    return [*chosen[:at], "matrix", *chosen[at:]]


def _sat_expand(opts: argparse.Namespace, target: Any, rep: int) -> list[Run]:
    closed = saturation(opts, target.name)
    if not closed:
        return []  # no closed-loop figure yet: run the matrix first
    ramp = sorted({max(1, round(closed * share)) for share in RAMP})
    mech = opts.mechanism or target.default_mechanism
    params = {"count": opts.clients, "duration": opts.step, "warmup": opts.step_warmup,
              "rates": tuple(ramp), "drain": 2.0 if opts.quick else 5.0,
              "extra": {"closed": closed, "ejabberd": saturation(opts, "ejabberd")}}  # fmt: skip
    return [Run("bare STARTTLS", "starttls", mech, params)]


def _open(job: generator.Job) -> Result:
    """One open-loop pass of ``job.rates`` (the compiled generator when there)."""
    if job.engine and gogen.supports(job):
        return gogen.run(job.engine, job)
    return generator.openloop_scenario(job)


def _sat_run(job: generator.Job) -> Result:
    """The ramp, then the shares of the saturation it found (module docstring)."""
    ramp = _open(job)
    if "error" in ramp or not ramp.get("steps"):
        return ramp
    own = max(step["msgs_per_s"] for step in ramp["steps"])
    ejabberd = job.extra.get("ejabberd")
    rates = {max(1, round(own * share / 100)) for share in SHARES}
    if ejabberd:
        rates.add(max(1, round(ejabberd * 0.8)))
    result = _open(dataclasses.replace(job, rates=tuple(sorted(rates))))
    return result | {"own": own, "closed": job.extra.get("closed"), "ejabberd": ejabberd,
                     "ramp": ramp["steps"], "ramp_stopped": ramp.get("stopped", ""),
                     "ramp_settle": {"settle_s": ramp.get("settle_s", 0), "settled": ramp.get("settled")}}  # fmt: skip


def _sat_report(variant: str, result: Result) -> list[str]:
    if "own" not in result:  # the ramp gave nothing to take shares of
        return scenarios._openloop_report(variant, result)
    ramp = scenarios._openloop_report(variant, {**result, "steps": result.get("ramp", []),
                                                "stopped": result.get("ramp_stopped", ""),
                                                **result["ramp_settle"]})  # fmt: skip
    closed = result.get("closed") or 0
    lines = [f"ramp: {ramp[0]}", *ramp[1:],
             f"{'':36} open-loop saturation {result['own']:,.0f} msgs/s"
             f" ({result['own'] / closed:.2f} of the closed-loop x4 figure {closed:,.0f}) -> shares:"
             if closed else f"{'':36} open-loop saturation {result['own']:,.0f} msgs/s -> shares:"]  # fmt: skip
    measured = scenarios._openloop_report(variant, result)
    return [*lines, f"{'':36} {measured[0]}", *measured[1:]]


def _sat_figures(variant: str, result: Result, opts: argparse.Namespace) -> dict[str, float]:
    out: dict[str, float] = {}
    own, ejabberd = result.get("own"), result.get("ejabberd")
    if own:
        out["sat-open saturation msgs/s"] = own
    for step in result["steps"]:
        rate = step["offered_per_s"]
        for share in SHARES:
            if own and rate == max(1, round(own * share / 100)):
                out[f"sat-open p99 ms at {share}% of own"] = step["p99_ms"]
                out[f"sat-open gen CPU % at {share}% of own"] = 100 * step["generator_cpu"]
        if ejabberd and rate == max(1, round(ejabberd * 0.8)):
            out["sat-open p99 ms at 80% of ejabberd's"] = step["p99_ms"]
    return out


register(scenarios.Scenario(
    name="openloop-sat",
    description="open loop, bare JIDs over STARTTLS, at 50/80/95% of the target's own"
                " open-loop saturation (a ramp first) and 80% of ejabberd's: p99 per rate",
    run=_sat_run,
    expand=_sat_expand,
    report=_sat_report,
    figures=_sat_figures,
    accounts=scenarios._clients,
    default=False,
    prefixes=("sat-open ",),
    passes=True,
))  # fmt: skip
