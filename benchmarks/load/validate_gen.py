"""Is the generator the bottleneck? (issue 24): the compiled generator against
``echo_server`` (gen/ and echo_server/, Go), each pinned to its own core.

The echo server negotiates a stream and then writes back every byte it reads,
so it does less per stanza than any XMPP server. A closed loop through it
shows the most the generator can drive, and an open loop at ``--rate``
(twice the highest figure it reported on any server) shows whether it keeps
that rate on schedule: delivered/offered, p99 and its own CPU per step::

    python3 benchmarks/load/validate_gen.py                        # STARTTLS and direct TLS
    python3 benchmarks/load/validate_gen.py --rate 60000 --clients 1000 --inflight 16
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import gogen
import targets


def echo(tls: str, workdir: Path) -> tuple[subprocess.Popen[bytes], int, str]:
    port_file, cert = workdir / f"port-{tls}", workdir / f"cert-{tls}.pem"
    proc = subprocess.Popen([str(gogen.OUT / "echo_server"), f"-tls={tls}",
                             f"-cert-out={cert}", f"-port-out={port_file}"])  # fmt: skip
    targets.pin(proc.pid, targets.SERVER_CPU)
    deadline = time.monotonic() + 10
    while not port_file.exists():
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            raise RuntimeError("echo_server did not start")
        time.sleep(0.02)
    return proc, int(port_file.read_text()), str(cert)


def generate(binary: str, port: int, cert: str, pid: int, args: list[str]) -> dict:
    command = [binary, f"-addr=127.0.0.1:{port}", f"-cafile={cert}", "-mechanism=PLAIN",
               f"-server-pid={pid}", "-echo", *args]  # fmt: skip
    out = subprocess.run(command, capture_output=True, text=True, timeout=600,
                         preexec_fn=lambda: os.sched_setaffinity(0, {targets.GENERATOR_CPU}))  # fmt: skip
    result: dict = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def cpu(r: dict) -> str:
    flag = " GENERATOR-BOUND" if r.get("generator_saturated") else ""
    return (f"CPU generator {100 * r['generator_cpu']:.0f}% echo {100 * r.get('server_cpu', 0):.0f}%"
            f" (cores busy {100 * r.get('cpu0_busy', 0):.0f}%/{100 * r.get('cpu1_busy', 0):.0f}%)"
            f"{flag}")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tls", default="starttls,direct")
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--inflight", type=int, default=4)
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--rate", type=int, default=50000,
                        help="open loop: offered stanzas/s (twice the best server figure)")
    parser.add_argument("--write", choices=("batch", "single"), default="batch")
    parser.add_argument("--quick", action="store_true", help="100 clients, 2 s windows")
    opts = parser.parse_args()
    if opts.quick:
        opts.clients, opts.duration = 100, 2.0
    binary = gogen.build()
    if binary is None:
        print("no compiled generator: nothing to validate")
        return 0
    common = [f"-clients={opts.clients}", f"-duration={opts.duration}", "-warmup=1",
              f"-write={opts.write}", "-drain=5"]  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="xmpp-echo-") as tmp:
        for tls in opts.tls.split(","):
            proc, port, cert = echo(tls, Path(tmp))
            try:
                for mix in ("chat-bare=1", "chat-bare=70,chat-full=10,receipt=10,ping=5,roster=5"):
                    r = generate(binary, port, cert, proc.pid,
                                 [*common, f"-tls={tls}", "-scenario=closed", f"-mix={mix}",
                                  f"-inflight={opts.inflight}"])  # fmt: skip
                    if "error" in r:
                        print(f"{tls:<9} closed loop {mix}: ERROR {r['error']}")
                        continue
                    print(f"{tls:<9} closed loop, {r['clients']} clients x {r['inflight']}, {mix}:"
                          f" {r['stanzas_per_s']:,.0f}/s p50 {r['p50_ms']:.1f} ms p99"
                          f" {r['p99_ms']:.1f} ms lost {r['lost']}; {cpu(r)}", flush=True)  # fmt: skip
                r = generate(binary, port, cert, proc.pid,
                             [*common, f"-tls={tls}", "-scenario=open", f"-rates={opts.rate}"])  # fmt: skip
                for s in r.get("steps", []):
                    print(f"{tls:<9} open loop offered {s['offered_per_s']:,}/s: sent"
                          f" {s['sent_per_s']:,.0f}/s delivered {s['msgs_per_s']:,.0f}/s p50"
                          f" {s['p50_ms']:.1f} ms p99 {s['p99_ms']:.1f} ms lost {s['lost']};"
                          f" {cpu(s)}", flush=True)  # fmt: skip
                if "error" in r:
                    print(f"{tls:<9} open loop: ERROR {r['error']}")
            finally:
                proc.kill()
                proc.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
