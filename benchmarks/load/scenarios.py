"""The scenario registry of the load benchmark (issue 11).

A scenario is declared once, here, with :func:`register`: its name, a
one-line description, the generator function that runs it (in the generator
process, given a :class:`generator.Job`, returning a picklable dict), how its
runs are expanded from the command line (:class:`Run`: variant, transport,
mechanism, job parameters, rosters to provision), how its result is printed
and which named figures it gives the final table. ``run.py`` knows no
scenario by name: adding one (MUC, pubsub, MAM) is one generator function
plus one registration, and its own command-line options if it needs any
(``options``).

Registered here, in the order of the final table:

* ``login``, ``throughput`` (full JIDs), ``openloop``, ``memory``: issue 6;
* ``throughput-bare``, ``presence``, ``mixed``: traffic users send (issue 24).
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import generator
import targets

Result = dict[str, Any]


@dataclass(frozen=True)
class Run:
    """One server start and one generator job of a scenario."""

    variant: str  # shown after the scenario name; part of login/memory figure names
    tls: str  # direct | starttls | none
    mechanism: str
    params: dict[str, Any]  # generator.Job fields (count, inflight, duration, extra, ...)
    #: contacts per account to write into the target's rosters before the server
    #: starts (0: no roster); a target that cannot is skipped with its reason
    contacts: int = 0


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    #: runs in the generator process: ``run(job) -> result dict``
    run: Callable[[generator.Job], Result]
    #: ``expand(opts, target, repetition) -> runs`` (none: nothing this repetition)
    expand: Callable[[argparse.Namespace, Any, int], list[Run]]
    #: ``report(variant, result) -> lines`` after the ``name variant`` head
    report: Callable[[str, Result], list[str]]
    #: ``figures(variant, result, opts) -> {figure name: value}`` for the final table
    figures: Callable[[str, Result, argparse.Namespace], dict[str, float]]
    #: accounts the scenario needs with these options
    accounts: Callable[[argparse.Namespace], int]
    #: ``options(group)`` adds the scenario's own command-line options
    options: Callable[[argparse._ArgumentGroup], None] | None = None
    #: ``(figure name, +1 if higher is better, -1 if lower)`` held to the commit
    #: rule (compare_commits.sh): within the tolerance of the old commit
    rule: tuple[tuple[str, int], ...] = ()
    #: ``check(opts)`` raises ValueError for options this scenario cannot run with
    check: Callable[[argparse.Namespace], None] | None = None
    #: in the default ``--scenarios`` list
    default: bool = True
    #: figure names (prefixes) this scenario gives, to order the final table
    prefixes: tuple[str, ...] = field(default=())
    #: ``run`` drives the compiled generator itself (several passes): called
    #: even where the compiled generator speaks the scenario
    passes: bool = False


REGISTRY: dict[str, Scenario] = {}


def register(scenario: Scenario) -> Scenario:
    """Add ``scenario`` to :data:`REGISTRY` (a name registers once)."""
    if scenario.name in REGISTRY:
        raise ValueError(f"scenario {scenario.name!r} registered twice")
    REGISTRY[scenario.name] = scenario
    return scenario


def defaults() -> list[str]:
    return [s.name for s in REGISTRY.values() if s.default]


def rank(figure: str) -> int:
    """Position of a figure's scenario in the registry, to order the final table."""
    best = (0, len(REGISTRY))
    for position, scenario in enumerate(REGISTRY.values()):
        for prefix in scenario.prefixes:
            if figure.startswith(prefix) and len(prefix) > best[0]:
                best = (len(prefix), position)
    return best[1]


# --- shared report pieces ------------------------------------------------------------


def cpu_text(result: Result) -> str:
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
    if result["generator_cpu"] > 0.8:  # issue 24: the figure may be the generator's
        text += " GENERATOR-BOUND (over 80% of its core): discard"
    return text + settle_text(result)


def settle_text(result: Result) -> str:
    """The generator's settle after the logins, when it says something."""
    if result.get("settled") is False:  # gave up (-max-settle)
        return " UNSETTLED (the server still busy with the logins when measured): discard"
    if result.get("settle_s", 0) > 2:
        return f"; settled in {result['settle_s']:.1f} s"
    return ""


def lat_text(r: Result) -> str:
    return f"p50 {r['p50_ms']:.1f} ms p99 {r['p99_ms']:.1f} ms max {r['max_ms']:.1f} ms"


def transport(tls: str) -> str:
    if tls == generator.WEBSOCKET:
        return "WebSocket"
    return f"{tls} TLS" if tls != "none" else "plaintext"


def _closed_loop_params(opts: argparse.Namespace, inflight: int) -> dict[str, Any]:
    params: dict[str, Any] = {"count": opts.clients, "inflight": inflight,
                              "duration": opts.duration,
                              "warmup": min(opts.warmup, opts.duration / 2)}  # fmt: skip
    if opts.quick:
        params["drain"] = 2.0
    return params


def _clients(opts: argparse.Namespace) -> int:
    return int(opts.clients)


# --- login -----------------------------------------------------------------------------


def _login_expand(opts: argparse.Namespace, target: Any, rep: int) -> list[Run]:
    mechs = [opts.mechanism] if opts.mechanism else list(target.login_mechanisms)
    if opts.tls == "none":  # our client sends PLAIN only over TLS
        mechs = [m for m in mechs if m != "PLAIN"] or [target.default_mechanism]
    if opts.quick:  # the headline mechanism only (the target compares them)
        mechs = mechs[:1]
    return [Run(mech, opts.tls, mech, {"count": opts.logins}) for mech in mechs]


def _login_report(variant: str, result: Result) -> list[str]:
    line = (f"{result['logins']} logins ({result['concurrency']} concurrent) in"
            f" {result['wall_s']:.2f} s: {result['logins_per_s']:,.0f}/s, {lat_text(result)}"
            f"{cpu_text(result)}")  # fmt: skip
    if result.get("failures"):
        line += f"; {result['failures']} FAILED ({result.get('first_error', '')})"
    return [line]


def _login_figures(variant: str, result: Result, opts: argparse.Namespace) -> dict[str, float]:
    if result.get("failures"):
        return {}
    return {f"login {variant} logins/s": result["logins_per_s"],
            f"login {variant} p50 ms": result["p50_ms"],
            f"login {variant} p99 ms": result["p99_ms"]}  # fmt: skip


register(Scenario(
    name="login",
    description="clients connect, authenticate, bind and send initial presence: logins/s, p50/p99",
    run=generator.login_scenario,
    expand=_login_expand,
    report=_login_report,
    figures=_login_figures,
    accounts=lambda opts: int(opts.logins),
    rule=(("login SCRAM-SHA-256 logins/s", +1), ("login PLAIN logins/s", +1),
          ("login SCRAM-SHA-1 logins/s", +1)),
    prefixes=("login ",),
))  # fmt: skip


# --- throughput (full JIDs) ---------------------------------------------------------------


def _throughput_expand(opts: argparse.Namespace, target: Any, rep: int) -> list[Run]:
    mech = opts.mechanism or target.default_mechanism
    return [Run(transport(opts.tls), opts.tls, mech, _closed_loop_params(opts, opts.inflight))]


def _throughput_report(variant: str, result: Result) -> list[str]:
    return [f"{result['clients']} clients x {result['inflight']} in flight,"
            f" {result['window_s']:.1f} s: {result['msgs_per_s']:,.0f} msgs/s, {lat_text(result)};"
            f" sent {result['sent']:,} lost {result['lost']:,}{cpu_text(result)}"]  # fmt: skip


def _throughput_figures(variant: str, result: Result, opts: argparse.Namespace
                        ) -> dict[str, float]:  # fmt: skip
    return {"closed loop msgs/s": result["msgs_per_s"],
            "closed loop p50 ms": result["p50_ms"],
            "closed loop p99 ms": result["p99_ms"],
            "closed loop lost": result["lost"]}  # fmt: skip


register(Scenario(
    name="throughput",
    description="chat messages to random online full JIDs, closed loop (--inflight per client):"
                " msgs/s, p50/p99, losses",
    run=generator.throughput_scenario,
    expand=_throughput_expand,
    report=_throughput_report,
    figures=_throughput_figures,
    accounts=_clients,
    rule=(("closed loop msgs/s", +1),),
    prefixes=("closed loop ",),
))  # fmt: skip


# --- throughput-bare (issue 24's shape) ---------------------------------------------------


def _bare_options(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--user-tls", choices=("direct", "starttls", "none"), default="starttls",
                       help="transport of throughput-bare, presence and mixed (default"
                       " STARTTLS, what most clients use)")  # fmt: skip
    group.add_argument(
        "--bare-inflight",
        type=int,
        default=4,
        help="throughput-bare and mixed: stanzas in flight per client (4)",
    )
    group.add_argument(
        "--body-size",
        type=int,
        default=120,
        help="throughput-bare and mixed: bytes of a chat body (120)",
    )


def _user_params(opts: argparse.Namespace, inflight: int, mix: dict[str, float],
                 contacts: int) -> dict[str, Any]:  # fmt: skip
    params = _closed_loop_params(opts, inflight)
    settle = 1.0 if contacts else 0.5  # initial presence, probes and their answers
    if opts.quick and not opts.duration_given:  # keep run.py --quick (CI) short
        params |= {"duration": 1.2, "warmup": 0.3}
        settle = 0.3
    params["extra"] = {"mix": mix, "body_size": opts.body_size, "contacts": contacts,
                       "settle": settle}  # fmt: skip
    return params


def user_transport(tls: str) -> str:
    return {"starttls": "STARTTLS", "direct": "direct TLS"}.get(tls, "plaintext")


def _bare_expand(opts: argparse.Namespace, target: Any, rep: int) -> list[Run]:
    mech = opts.mechanism or target.default_mechanism
    tls = opts.user_tls
    params = _user_params(opts, opts.bare_inflight, {"chat-bare": 1.0}, 0)
    return [Run(f"{user_transport(tls)} bare JIDs", tls, mech, params)]


def _user_report(variant: str, result: Result) -> list[str]:
    what = f"{result['clients']} clients x {result['inflight']} in flight"
    if result["contacts"]:
        what += f", {result['contacts']} contacts"
    line = (f"{what}, {result['window_s']:.1f} s: {result['stanzas_per_s']:,.0f} stanzas"
            f" delivered/s (sent {result['sent_per_s']:,.0f}/s), {lat_text(result)};"
            f" sent {result['sent']:,} lost {result['lost']:,}{cpu_text(result)}")  # fmt: skip
    lines = [line]
    if len(result["kinds"]) > 1 or "presence" in result["kinds"]:
        parts = [f"{kind} {k['per_s']:,.0f}/s p99 {k['p99_ms']:.1f} ms (sent {k['sent']:,})"
                 for kind, k in result["kinds"].items()]  # fmt: skip
        lines.append(f"{'':36} " + "; ".join(parts))
    if result.get("presence_duplicates") or result.get("presence_reordered"):
        # the Go generator: a presence update a client got twice, or after a newer one
        lines.append(f"{'':36} presence copies received twice {result['presence_duplicates']:,},"
                     f" after a newer update {result['presence_reordered']:,}")  # fmt: skip
    return lines


def _user_figures(prefix: str, unit: str) -> Callable[[str, Result, argparse.Namespace],
                                                      dict[str, float]]:  # fmt: skip
    def figures(variant: str, result: Result, opts: argparse.Namespace) -> dict[str, float]:
        return {f"{prefix} {unit}": result["stanzas_per_s"],
                f"{prefix} p50 ms": result["p50_ms"],
                f"{prefix} p99 ms": result["p99_ms"],
                f"{prefix} lost": result["lost"]}  # fmt: skip

    return figures


register(Scenario(
    name="throughput-bare",
    description="issue 24's shape: STARTTLS, chat of ~120-byte bodies to bare JIDs (one"
                " resource each), 4 in flight, closed loop: msgs/s, p50/p99, losses",
    run=generator.user_traffic_scenario,
    expand=_bare_expand,
    report=_user_report,
    figures=_user_figures("bare closed loop", "msgs/s"),
    accounts=_clients,
    options=_bare_options,
    rule=(("bare closed loop msgs/s", +1),),
    prefixes=("bare closed loop ",),
))  # fmt: skip


# --- openloop ------------------------------------------------------------------------------


def _openloop_expand(opts: argparse.Namespace, target: Any, rep: int) -> list[Run]:
    mech = opts.mechanism or target.default_mechanism
    params = {"count": opts.clients, "inflight": opts.inflight, "duration": opts.step,
              "warmup": opts.step_warmup, "rates": opts.rates, "drain": 5.0}  # fmt: skip
    if opts.quick:
        params["drain"] = 2.0
    return [Run(transport(opts.tls), opts.tls, mech, params)]


def _openloop_report(variant: str, result: Result) -> list[str]:
    lines = [f"{result['clients']} clients"
             + (f", stopped: {result['stopped']}" if result["stopped"] else "")
             + settle_text(result)]  # fmt: skip
    for s in result["steps"]:
        lines.append(f"{'':36} offered {s['offered_per_s']:>6,}/s (sent {s['sent_per_s']:,.0f}/s):"
                     f" {s['msgs_per_s']:,.0f} msgs/s, {lat_text(s)}; lost {s['lost']:,}"
                     f"{cpu_text(s)}")  # fmt: skip
    return lines


def _openloop_figures(variant: str, result: Result, opts: argparse.Namespace
                      ) -> dict[str, float]:  # fmt: skip
    p99_rate = opts.p99_rate_used
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


register(Scenario(
    name="openloop",
    description="the throughput clients at rising offered rates (--rates), sent on schedule:"
                " delivered msgs/s and p99 per rate",
    run=generator.openloop_scenario,
    expand=_openloop_expand,
    report=_openloop_report,
    figures=_openloop_figures,
    accounts=_clients,
    prefixes=("open loop ",),
))  # fmt: skip


# --- presence ------------------------------------------------------------------------------


def _presence_options(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--contacts", type=int, default=None,
                       help="presence and mixed: contacts per roster, both-way subscriptions"
                       " (20; 4 with --quick; even)")  # fmt: skip
    group.add_argument(
        "--presence-inflight",
        type=int,
        default=1,
        help="presence: updates in flight per client (1)",
    )


def _contacts(opts: argparse.Namespace) -> int:
    contacts = opts.contacts if opts.contacts is not None else (4 if opts.quick else 20)
    return int(min(contacts, max(0, opts.clients - 1)))


def _presence_expand(opts: argparse.Namespace, target: Any, rep: int) -> list[Run]:
    mech = opts.mechanism or target.default_mechanism
    tls = opts.user_tls
    contacts = _contacts(opts)
    params = _user_params(opts, opts.presence_inflight, {"presence": 1.0}, contacts)
    return [Run(user_transport(tls), tls, mech, params, contacts=contacts)]


register(Scenario(
    name="presence",
    description="rosters of --contacts (both-way), presence updates closed loop: presence"
                " stanzas delivered/s, p50/p99, losses",
    run=generator.user_traffic_scenario,
    expand=_presence_expand,
    report=_user_report,
    figures=_user_figures("presence", "deliveries/s"),
    accounts=_clients,
    options=_presence_options,
    prefixes=("presence ",),
))  # fmt: skip


# --- mixed ---------------------------------------------------------------------------------

MIX = "chat-bare=70,chat-full=10,presence=15,ping=5"


def _mixed_options(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--mix", default=MIX,
                       help=f"mixed: weights per kind of stanza ({MIX}; kinds:"
                       f" {', '.join(generator.KINDS)})")  # fmt: skip


def parse_mix(text: str) -> dict[str, float]:
    mix: dict[str, float] = {}
    for part in text.split(","):
        kind, _, weight = part.partition("=")
        if kind.strip() not in generator.KINDS:
            raise ValueError(f"unknown kind {kind.strip()!r} in --mix (kinds:"
                             f" {', '.join(generator.KINDS)})")  # fmt: skip
        mix[kind.strip()] = float(weight)
    if sum(mix.values()) <= 0 or min(mix.values()) < 0:
        raise ValueError(f"--mix {text!r}: weights must be >= 0 with a positive sum")
    return mix


def _mixed_check(opts: argparse.Namespace) -> None:
    parse_mix(opts.mix)


def _mixed_expand(opts: argparse.Namespace, target: Any, rep: int) -> list[Run]:
    mech = opts.mechanism or target.default_mechanism
    tls = opts.user_tls
    mix = parse_mix(opts.mix)
    contacts = _contacts(opts) if mix.get("presence") else 0
    params = _user_params(opts, opts.bare_inflight, mix, contacts)
    return [Run(user_transport(tls), tls, mech, params, contacts=contacts)]


register(Scenario(
    name="mixed",
    description="per client 70% chat to bare JIDs, 10% to full JIDs, 15% presence updates, 5%"
                " iq ping to the server (--mix), closed loop: stanzas/s, p50/p99",
    run=generator.user_traffic_scenario,
    expand=_mixed_expand,
    report=_user_report,
    figures=_user_figures("mixed", "stanzas/s"),
    accounts=_clients,
    options=_mixed_options,
    check=_mixed_check,
    prefixes=("mixed ",),
))  # fmt: skip


# --- memory ---------------------------------------------------------------------------------


def _memory_expand(opts: argparse.Namespace, target: Any, rep: int) -> list[Run]:
    if rep >= opts.memory_repeat:
        return []
    runs = []
    for mode in opts.memory_tls_list:
        mech = target.default_mechanism
        if opts.mechanism and (mode != "none" or opts.mechanism != "PLAIN"):
            mech = opts.mechanism
        runs.append(Run("TLS" if mode != "none" else "plaintext", mode, mech,
                        {"sizes": opts.sizes, "settle": opts.settle}))  # fmt: skip
    return runs


def _memory_report(variant: str, result: Result) -> list[str]:
    lines = [f"base RSS {result['rss_base_kb']:,} KB"]
    for p in result["points"]:
        lines.append(f"{'':36} {p['sessions']:>6,} sessions: RSS {p['rss_kb']:,} KB,"
                     f" {p['kb_per_session']:.1f} KB/session"
                     f" (marginal {p['marginal_kb_per_session']:.1f})")  # fmt: skip
    for s in result["skipped"]:
        lines.append(f"{'':36} skipped {s}")
    return lines


def _memory_figures(variant: str, result: Result, opts: argparse.Namespace) -> dict[str, float]:
    return {f"memory KB/session {variant} at {p['sessions']}": p["kb_per_session"]
            for p in result["points"]}  # fmt: skip


def _memory_accounts(opts: argparse.Namespace) -> int:
    return max((s for s in opts.sizes if s + 64 <= opts.fd_limit), default=0)


register(Scenario(
    name="memory",
    description="server RSS before and after growing numbers of idle authenticated sessions"
                " (--sessions), TLS and plaintext",
    run=generator.memory_scenario,
    expand=_memory_expand,
    report=_memory_report,
    figures=_memory_figures,
    accounts=_memory_accounts,
    rule=(("memory KB/session TLS at ", -1), ("memory KB/session plaintext at ", -1)),
    prefixes=("memory ",),
))  # fmt: skip


# --- XMPP over WebSocket (issue 18), beside the TCP figures ----------------------------------


def _ours_only(target: Any) -> bool:
    """Targets with XMPP over WebSocket here: ours, and Prosody (mod_websocket)."""
    return str(getattr(target, "name", "")).startswith("ours") or getattr(
        target, "websocket", False
    )


def _ws_throughput_expand(opts: argparse.Namespace, target: Any, rep: int) -> list[Run]:
    """The throughput run over plain TCP and over WebSocket (plain http), ours only."""
    if not _ours_only(target):
        return []
    mech = opts.mechanism or target.default_mechanism
    params = _closed_loop_params(opts, opts.inflight)
    return [Run("plaintext", "none", mech, params),
            Run("WebSocket", generator.WEBSOCKET, mech, params)]  # fmt: skip


def _ws_throughput_figures(variant: str, result: Result, opts: argparse.Namespace
                           ) -> dict[str, float]:  # fmt: skip
    return {f"ws-compare {variant} msgs/s": result["msgs_per_s"],
            f"ws-compare {variant} p99 ms": result["p99_ms"],
            f"ws-compare {variant} lost": result["lost"]}  # fmt: skip


register(Scenario(
    name="throughput-ws",
    description="the throughput closed loop over plain TCP and over XMPP over WebSocket"
                " (RFC 7395, plain http): msgs/s, p50/p99, losses (ours, Prosody's mod_websocket)",
    run=generator.throughput_scenario,
    expand=_ws_throughput_expand,
    report=_throughput_report,
    figures=_ws_throughput_figures,
    accounts=_clients,
    default=False,
    prefixes=("ws-compare ",),
))  # fmt: skip


def _ws_memory_expand(opts: argparse.Namespace, target: Any, rep: int) -> list[Run]:
    if rep >= opts.memory_repeat or not _ours_only(target):
        return []
    mech = opts.mechanism or target.default_mechanism
    params = {"sizes": opts.sizes, "settle": opts.settle}
    return [Run("plaintext", "none", mech, params),
            Run("WebSocket", generator.WEBSOCKET, mech, params)]  # fmt: skip


def _ws_memory_figures(variant: str, result: Result, opts: argparse.Namespace) -> dict[str, float]:
    return {f"ws-memory KB/session {variant} at {p['sessions']}": p["kb_per_session"]
            for p in result["points"]}  # fmt: skip


register(Scenario(
    name="memory-ws",
    description="server RSS per idle session over plain TCP and over XMPP over WebSocket"
                " (--sessions; ours, Prosody's mod_websocket)",
    run=generator.memory_scenario,
    expand=_ws_memory_expand,
    report=_memory_report,
    figures=_ws_memory_figures,
    accounts=_memory_accounts,
    default=False,
    prefixes=("ws-memory ",),
))  # fmt: skip
