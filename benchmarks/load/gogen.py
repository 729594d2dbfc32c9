"""The compiled generator (``gen/``, Go, standard library only) seen from Python.

:func:`build` compiles ``benchmarks/load/gen`` (and ``echo_server``) into
``build/load-gen/`` when a Go toolchain is on the PATH (Debian's golang-go:
``compare.sh`` installs it), and :func:`run` runs one :class:`generator.Job`
with it, returning the same dict the Python scenario function returns (plus
``generator: "go"`` and ``generator_saturated``). Scenarios it does not speak
(memory, WebSocket) stay with the Python generator: :func:`supports`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "build" / "load-gen"
SOURCES = {"xmppgen": Path(__file__).parent / "gen",
           "echo_server": Path(__file__).parent / "echo_server"}  # fmt: skip

#: Python scenario name -> the Go generator's -scenario and its fixed -mix
SCENARIOS = {
    "login": ("login", None),
    "throughput": ("closed", "chat-full=1"),
    "throughput-bare": ("closed", None),
    "presence": ("closed", None),
    "mixed": ("closed", None),
    "openloop": ("open", "chat-full=1"),
    # issue 24's matrix (matrix.py)
    "matrix": ("closed", None),
    "storm": ("login", None),
    "mixed-full": ("closed", None),
    "openloop-sat": ("open", "chat-bare=1"),
}
#: transports it speaks (not WebSocket)
TRANSPORTS = ("direct", "starttls", "none")


def build(quiet: bool = False) -> str | None:
    """Compile both programs; the generator's path, or None (with the reason printed)."""
    go = shutil.which("go")
    if go is None:
        if not quiet:
            print("WARNING: no Go toolchain (apt-get install golang-go): the Python generator"
                  " measures instead, and it saturates well below the servers")  # fmt: skip
        return None
    OUT.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    if "HOME" not in env and "XDG_CACHE_HOME" not in env:  # go needs a build cache and GOPATH
        env |= {"GOCACHE": str(OUT / ".cache"), "GOPATH": str(OUT / ".gopath")}
    env |= {"GOFLAGS": "-mod=mod", "GOPROXY": "off"}  # standard library only: nothing to fetch
    for name, source in SOURCES.items():
        done = subprocess.run([go, "build", "-o", str(OUT / name), "."], cwd=source, env=env,
                              capture_output=True, text=True, timeout=600)  # fmt: skip
        if done.returncode != 0:
            print(f"WARNING: go build of {source} failed: the Python generator measures"
                  f" instead\n{done.stderr.strip()}")  # fmt: skip
            return None
    return str(OUT / "xmppgen")


def supports(job: Any) -> bool:
    return job.scenario in SCENARIOS and job.tls in TRANSPORTS


def _mix(extra: dict[str, Any]) -> str:
    if "mix" not in extra:
        return "chat-bare=1"
    return ",".join(f"{kind}={weight}" for kind, weight in dict(extra["mix"]).items())


def arguments(job: Any) -> list[str]:
    """The generator's command line for ``job`` (a :class:`generator.Job`)."""
    scenario, mix = SCENARIOS[job.scenario]
    extra = dict(job.extra)
    args = [f"-addr={job.host}:{job.port}", f"-domain={job.domain}", f"-password={job.password}",
            f"-tls={job.tls}", f"-mechanism={job.mechanism}", f"-scenario={scenario}",
            f"-clients={job.count}", f"-concurrency={job.concurrency}",
            f"-inflight={job.inflight}", f"-duration={job.duration}", f"-warmup={job.warmup}",
            f"-drain={job.drain}", f"-server-pid={job.server_pid}",
            f"-mix={mix or _mix(extra)}", f"-body-size={int(extra.get('body_size', 120))}",
            f"-contacts={int(extra.get('contacts', 0))}",
            f"-settle={float(extra.get('settle', 0.5))}",
            f"-write={extra.get('write', 'batch')}",
            f"-nodelay={str(extra.get('nodelay', True)).lower()}"]  # fmt: skip
    if job.rates:
        args.append("-rates=" + ",".join(str(r) for r in job.rates))
    if job.cafile:
        args.append(f"-cafile={job.cafile}")
    if extra.get("echo"):
        args.append("-echo")
    return args


def run(binary: str, job: Any, timeout: float = 1200) -> dict[str, Any]:
    """Run ``job`` with the compiled generator (in this process's CPU affinity)."""
    done = subprocess.run([binary, *arguments(job)], capture_output=True, text=True,
                          timeout=timeout)  # fmt: skip
    try:
        result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {"error": f"xmppgen exited {done.returncode}: {done.stderr.strip()[-400:]}"}
    if "contacts" in result and not job.extra.get("contacts") and job.scenario == "throughput":
        result.pop("kinds", None)
    for key in ("own", "ejabberd"):  # openloop-sat's reference rates
        if key in job.extra:
            result[key] = job.extra[key]
    return result
