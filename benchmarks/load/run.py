"""Load generator for the xmpp-trio server (issue 6, first cut: our server only).

    python benchmarks/load/run.py                  # full run (~1-2 min)
    python benchmarks/load/run.py --quick          # a few seconds, small figures
    python benchmarks/load/run.py --clients 1000   # the issue's throughput target
    python benchmarks/load/run.py --scenarios throughput --profile prof.txt

The script creates a temporary data directory, ``N`` accounts (``u0@localhost``
... with the same password, SCRAM iterations 4096) written straight into the
server's SQLite database with :class:`xmpp_trio.storage.AccountStore`, and a
configuration with one direct-TLS listener on 127.0.0.1 and every per-client
limit raised. For each scenario it starts a fresh server
(``python -m xmpp_trio serve --config ...``) pinned to CPU 0 and runs the
generator in a separate process pinned to CPU 1, so the two never share a core.

Scenarios:

* ``login``: ``--logins`` clients connect (direct TLS, verified against the
  server's generated self-signed certificate), authenticate with SCRAM-SHA-256,
  bind and send initial presence, at most ``--login-concurrency`` at a time:
  logins/s and p50/p99 login latency.
* ``throughput``: ``--clients`` bound clients send chat messages to random
  online peers (full JIDs), closed loop: each keeps ``--inflight`` messages in
  flight and sends a new one when one of its own is delivered. The body carries
  the send time and the sender's index; the generator never parses XML on the
  hot path, it scans received bytes with a regular expression. After
  ``--duration`` seconds the senders stop and the generator drains: delivered
  messages/s (over the window after ``--warmup``), p50/p99/max latency, and
  losses (sent - delivered after the drain).
* ``memory``: server RSS (``VmRSS`` in ``/proc/<pid>/status``) before and after
  ``--sessions`` idle authenticated sessions: KB per session.

Every scenario reports the CPU time of the server and of the generator over its
measuring window, as a share of one core: a generator near 100% means the
figures measure the generator, not the server. Nothing is asserted; the script
always exits 0 (a failed scenario prints its error).

``--profile FILE`` runs the server under ``py-spy record`` (if installed)
during the scenarios and writes the top functions by own time to FILE; the
sampling costs CPU, so use the figures of a run without it.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing as mp
import os
import platform
import random
import re
import resource
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

DOMAIN = "localhost"
PASSWORD = "load-test-password"
RESOURCE = "load"
SCRAM_ITERATIONS = 4096
SERVER_CPU = 0
GENERATOR_CPU = 1

# What a delivered benchmark message looks like to the receiver; the server
# re-serialises the stanza, but the body text is ours.
MARK = re.compile(rb"<body>T(\d{20})S(\d{7})</body>")
MARK_TAIL = 64  # bytes kept between reads so a body split across reads is still found


@dataclass(frozen=True, slots=True)
class Options:
    """What the generator needs to know (picklable, passed to the child process)."""

    port: int
    cafile: str
    server_pid: int
    logins: int
    login_concurrency: int
    clients: int
    inflight: int
    duration: float
    warmup: float
    sessions: int


# --- helpers shared by both processes -----------------------------------------


def pin(pid: int, cpu: int) -> bool:
    """Pin ``pid`` (0: this process) to ``cpu`` if the machine has it."""
    if not hasattr(os, "sched_setaffinity"):
        return False
    try:
        if cpu not in os.sched_getaffinity(0) and pid == 0:
            return False
        os.sched_setaffinity(pid, {cpu})
    except OSError:
        return False
    return True


def rss_kb(pid: int) -> int:
    """``VmRSS`` of ``pid`` in KB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds used so far by ``pid`` (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return ticks / os.sysconf("SC_CLK_TCK")


def self_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def percentile(sorted_values: Sequence[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


def raise_fd_limit() -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# --- the generator (child process) --------------------------------------------


# SaltedPassword of every benchmark account, computed by the parent before it
# forks the generator: a real client may cache it (RFC 5802 §5.1), and 4096
# PBKDF2 iterations per login would otherwise make the generator the bottleneck.
SALTED: dict[tuple[str, bytes, int], bytes] = {}


def precompute_salted_passwords(database: Path, hash_name: str = "sha256") -> float:
    """Fill :data:`SALTED` from the accounts database; return the seconds it took."""
    import sqlite3

    from xmpp_sansio.sasl.credentials import salted_password

    start = time.perf_counter()
    with contextlib.closing(sqlite3.connect(database)) as db:
        rows = db.execute(
            "SELECT salt, iterations FROM scram_credentials WHERE hash_name = ?", (hash_name,)
        ).fetchall()
    for salt, iterations in rows:
        SALTED[(hash_name, bytes(salt), iterations)] = salted_password(
            PASSWORD, hash_name, bytes(salt), iterations
        )
    return time.perf_counter() - start


def _use_salted_cache() -> None:
    from xmpp_sansio.sasl import scram
    from xmpp_sansio.sasl.credentials import salted_password

    def cached(password: str, hash_name: str, salt: bytes, iterations: int) -> bytes:
        hit = SALTED.get((hash_name, salt, iterations)) if password == PASSWORD else None
        return hit if hit is not None else salted_password(password, hash_name, salt, iterations)

    setattr(scram, "salted_password", cached)  # noqa: B010 (not re-exported)


def generator_main(scenario: str, options: Options, results: Any) -> None:
    """Entry point of the generator process: run one scenario, put a dict on ``results``."""
    pin(0, GENERATOR_CPU)
    raise_fd_limit()
    _use_salted_cache()
    import trio

    try:
        runner = {"login": _login_scenario, "throughput": _throughput_scenario}.get(
            scenario, _memory_scenario
        )
        results.put(trio.run(runner, options))
    except BaseException as exc:  # report, never hang the parent
        results.put({"error": f"{type(exc).__name__}: {exc}"})


class _Client:
    """A bound session: the TLS stream and, for the throughput scenario, its credits."""

    __slots__ = ("credits", "index", "stream", "wake")

    def __init__(self, index: int, stream: Any) -> None:
        import trio

        self.index = index
        self.stream = stream
        self.credits = 0
        self.wake = trio.Event()


async def _login(index: int, options: Options, ctx: ssl.SSLContext) -> tuple[Any, float]:
    """Connect ``u<index>``, bind resource ``load``, send initial presence.

    Returns the TLS stream and the login latency in seconds.
    """
    import trio

    from xmpp_sansio.jid import JID
    from xmpp_sansio.stream.config import ClientConfig
    from xmpp_sansio.stream.connection import ClientConnection
    from xmpp_sansio.stream.events import (
        AuthenticationFailed,
        ConnectionClosed,
        NegotiationFailed,
        ResourceBound,
        StreamClosed,
        StreamErrorReceived,
    )
    from xmpp_trio._tls import client_tls_info

    start = time.perf_counter()
    tcp = await trio.open_tcp_stream("127.0.0.1", options.port)
    stream = trio.SSLStream(tcp, ctx, server_hostname=DOMAIN)
    try:
        await stream.do_handshake()
        config = ClientConfig(
            jid=JID.parse(f"u{index}@{DOMAIN}/{RESOURCE}"),
            password=PASSWORD,
            mechanisms=("SCRAM-SHA-256",),
            stream_management=False,
        )
        conn = ClientConnection(config, tls_active=True, tls_info=client_tls_info(stream))
        conn.start()
        bound = False
        while True:
            while (event := conn.next_event()) is not None:
                if isinstance(event, ResourceBound):
                    bound = True
                elif isinstance(
                    event,
                    AuthenticationFailed
                    | NegotiationFailed
                    | StreamErrorReceived
                    | StreamClosed
                    | ConnectionClosed,
                ):
                    raise RuntimeError(f"login of u{index} failed: {event!r}")
            data = conn.data_to_send()
            if data:
                await stream.send_all(data)
            if bound:
                break
            chunk = await stream.receive_some(65536)
            if not chunk:
                raise RuntimeError(f"login of u{index}: the server closed the connection")
            conn.receive_data(chunk)
        await stream.send_all(b"<presence/>")
    except BaseException:
        await trio.aclose_forcefully(stream)
        raise
    return stream, time.perf_counter() - start


async def _login_many(
    indices: range, options: Options, ctx: ssl.SSLContext
) -> tuple[list[_Client], list[float], float]:
    """Log in every index, at most ``login_concurrency`` at once.

    Returns the clients (in index order), the latencies and the wall time.
    """
    import trio

    limiter = trio.CapacityLimiter(options.login_concurrency)
    streams: dict[int, Any] = {}
    latencies: list[float] = []

    async def one(index: int) -> None:
        async with limiter:
            stream, latency = await _login(index, options, ctx)
        streams[index] = stream
        latencies.append(latency)

    start = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for index in indices:
            nursery.start_soon(one, index)
    wall = time.perf_counter() - start
    return [_Client(i, streams[i]) for i in indices], latencies, wall


async def _discard(client: _Client) -> None:
    """Read and drop whatever the server sends (presence, pings...)."""
    with contextlib.suppress(Exception):
        while await client.stream.receive_some(65536):
            pass


async def _close_all(clients: list[_Client]) -> None:
    import trio

    with trio.move_on_after(10):
        async with trio.open_nursery() as nursery:
            for client in clients:
                nursery.start_soon(trio.aclose_forcefully, client.stream)


def _context(options: Options) -> ssl.SSLContext:
    from xmpp_trio._tls import client_ssl_context

    return client_ssl_context(options.cafile)


async def _login_scenario(options: Options) -> dict[str, Any]:
    ctx = _context(options)
    cpu0, srv0 = self_cpu_seconds(), cpu_seconds(options.server_pid)
    clients, latencies, wall = await _login_many(range(options.logins), options, ctx)
    cpu1, srv1 = self_cpu_seconds(), cpu_seconds(options.server_pid)
    await _close_all(clients)
    latencies.sort()
    return {
        "logins": len(latencies),
        "concurrency": options.login_concurrency,
        "wall_s": wall,
        "logins_per_s": len(latencies) / wall,
        "p50_ms": percentile(latencies, 0.50) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
        "max_ms": latencies[-1] * 1000,
        "server_cpu": (srv1 - srv0) / wall,
        "generator_cpu": (cpu1 - cpu0) / wall,
    }


async def _memory_scenario(options: Options) -> dict[str, Any]:
    import trio

    ctx = _context(options)
    await trio.sleep(1.0)
    before = rss_kb(options.server_pid)
    clients, _latencies, wall = await _login_many(range(options.sessions), options, ctx)
    async with trio.open_nursery() as nursery:
        for client in clients:
            nursery.start_soon(_discard, client)
        await trio.sleep(3.0)  # let the server settle (presence, buffers)
        after = rss_kb(options.server_pid)
        nursery.cancel_scope.cancel()
    await _close_all(clients)
    return {
        "sessions": len(clients),
        "login_wall_s": wall,
        "rss_before_kb": before,
        "rss_after_kb": after,
        "kb_per_session": (after - before) / max(1, len(clients)),
    }


async def _throughput_scenario(options: Options) -> dict[str, Any]:
    import trio

    ctx = _context(options)
    clients, _latencies, login_wall = await _login_many(range(options.clients), options, ctx)
    count = len(clients)
    rng = random.Random(6)
    # Pre-serialised pieces: only the timestamp digits are formatted per message.
    prefixes = [
        f"<message type='chat' to='u{i}@{DOMAIN}/{RESOURCE}'><body>T".encode() for i in range(count)
    ]
    suffixes = [f"S{i:07d}</body></message>".encode() for i in range(count)]
    state = {"sent": 0, "delivered": 0, "measuring": False, "measured": 0, "stop": False}
    latencies: list[int] = []

    async def receiver(client: _Client) -> None:
        tail = b""
        stream = client.stream
        while True:
            try:
                chunk = await stream.receive_some(65536)
            except (trio.BrokenResourceError, trio.ClosedResourceError, ssl.SSLError):
                return
            if not chunk:
                return
            now = time.monotonic_ns()
            data = tail + chunk
            end = 0
            hits = 0
            for match in MARK.finditer(data):
                sender = clients[int(match[2])]
                sender.credits += 1
                sender.wake.set()
                if state["measuring"]:
                    latencies.append(now - int(match[1]))
                hits += 1
                end = match.end()
            state["delivered"] += hits
            if state["measuring"]:
                state["measured"] += hits
            tail = data[max(end, len(data) - MARK_TAIL) :]

    async def sender(client: _Client) -> None:
        others = [i for i in range(count) if i != client.index] or [client.index]
        suffix = suffixes[client.index]
        stream = client.stream
        client.credits = options.inflight
        while not state["stop"]:
            if client.credits == 0:
                client.wake = trio.Event()
                await client.wake.wait()
                continue
            burst = client.credits
            client.credits = 0
            stamp = b"%020d" % time.monotonic_ns()
            payload = b"".join(prefixes[rng.choice(others)] + stamp + suffix for _ in range(burst))
            state["sent"] += burst
            await stream.send_all(payload)  # never cancelled: a stop lets it finish

    async with trio.open_nursery() as nursery:
        for client in clients:
            nursery.start_soon(receiver, client)
        async with trio.open_nursery() as senders:
            for client in clients:
                senders.start_soon(sender, client)
            await trio.sleep(options.warmup)
            state["measuring"] = True
            t0, cpu0, srv0 = (
                time.perf_counter(),
                self_cpu_seconds(),
                cpu_seconds(options.server_pid),
            )
            await trio.sleep(max(0.1, options.duration - options.warmup))
            state["measuring"] = False
            t1, cpu1, srv1 = (
                time.perf_counter(),
                self_cpu_seconds(),
                cpu_seconds(options.server_pid),
            )
            state["stop"] = True
            for client in clients:
                client.wake.set()
        drain_start = time.perf_counter()
        with trio.move_on_after(10):
            while state["delivered"] < state["sent"]:
                await trio.sleep(0.05)
        drain = time.perf_counter() - drain_start
        nursery.cancel_scope.cancel()
    await _close_all(clients)
    window = t1 - t0
    ordered = sorted(latencies)
    return {
        "clients": count,
        "inflight": options.inflight,
        "login_wall_s": login_wall,
        "window_s": window,
        "sent": state["sent"],
        "delivered": state["delivered"],
        "lost": state["sent"] - state["delivered"],
        "drain_s": drain,
        "msgs_per_s": state["measured"] / window,
        "p50_ms": percentile(ordered, 0.50) / 1e6,
        "p99_ms": percentile(ordered, 0.99) / 1e6,
        "max_ms": (ordered[-1] / 1e6) if ordered else float("nan"),
        "server_cpu": (srv1 - srv0) / window,
        "generator_cpu": (cpu1 - cpu0) / window,
    }


# --- the orchestrator (parent process) -----------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def create_accounts(database: Path, count: int) -> float:
    """Create u0..u<count-1> in the server's database; return the seconds it took."""
    from xmpp_trio.storage import AccountStore

    start = time.perf_counter()
    with AccountStore.open(database) as store:
        for index in range(count):
            store.create(f"u{index}", DOMAIN, PASSWORD, iterations=SCRAM_ITERATIONS)
    return time.perf_counter() - start


CONFIG = """\
domains = ["{domain}"]
data_dir = "{data}"
log_level = "warning"
scram_iterations = {iterations}

[limits]
negotiation_timeout = 600
resume_timeout = 0
max_connections = 1000000
max_connections_per_ip = 1000000
max_sessions_per_account = 10
auth_failures_before_backoff = 1000000
max_read_rate = 1073741824
idle_timeout = 86400
max_output_buffer = 67108864
max_offline_messages = 100000

[[listeners]]
kind = "c2s-directtls"
address = "127.0.0.1"
port = {port}
"""


class Server:
    """``python -m xmpp_trio serve`` as a subprocess, optionally under py-spy."""

    def __init__(self, config: Path, port: int, profile: Path | None) -> None:
        self.port = port
        command = [sys.executable, "-m", "xmpp_trio", "serve", "--config", str(config)]
        self.profiling = profile is not None
        if profile is not None:
            command = ["py-spy", "record", "--format", "raw", "--rate", "200",
                       "-o", str(profile), "--", *command]  # fmt: skip
        self.proc = subprocess.Popen(command, cwd=ROOT, start_new_session=True)
        self.pid = self.proc.pid
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited with status {self.proc.returncode}")
            if self.profiling and self.pid == self.proc.pid:
                self.pid = self._python_child() or self.pid
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                time.sleep(0.1)
        else:
            self.stop()
            raise RuntimeError("the server did not start listening within 30 s")
        if self.profiling:
            self.pid = self._python_child() or self.pid
        pin(self.pid, SERVER_CPU)

    def _python_child(self) -> int | None:
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        with contextlib.suppress(OSError):
            for pid in children.read_text().split():
                return int(pid)
        return None

    def stop(self) -> None:
        target = self.pid  # SIGINT to the server: clean shutdown (py-spy then writes)
        with contextlib.suppress(ProcessLookupError):
            os.kill(target, signal.SIGINT)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def run_scenario(scenario: str, options: Options) -> dict[str, Any]:
    ctx = mp.get_context("fork")
    results = ctx.Queue()
    child = ctx.Process(target=generator_main, args=(scenario, options, results))
    child.start()
    try:
        result: dict[str, Any] = results.get(timeout=900)
    except Exception as exc:
        result = {"error": f"no result from the generator: {exc!r}"}
    child.join(timeout=30)
    if child.is_alive():
        child.kill()
    return result


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


def report(scenario: str, result: dict[str, Any]) -> None:
    if "error" in result:
        print(f"{scenario}: FAILED: {result['error']}")
        return
    if scenario == "login":
        print(
            f"login       {result['logins']} logins ({result['concurrency']} concurrent)"
            f" in {result['wall_s']:.2f} s: {result['logins_per_s']:,.0f} logins/s,"
            f" latency p50 {result['p50_ms']:.1f} ms p99 {result['p99_ms']:.1f} ms"
            f" max {result['max_ms']:.1f} ms"
        )
    elif scenario == "throughput":
        print(
            f"throughput  {result['clients']} clients x {result['inflight']} in flight,"
            f" {result['window_s']:.1f} s window: {result['msgs_per_s']:,.0f} msgs/s delivered,"
            f" latency p50 {result['p50_ms']:.1f} ms p99 {result['p99_ms']:.1f} ms"
            f" max {result['max_ms']:.1f} ms; sent {result['sent']:,}"
            f" delivered {result['delivered']:,} lost {result['lost']:,}"
            f" (drain {result['drain_s']:.2f} s)"
        )
    else:
        print(
            f"memory      {result['sessions']} idle sessions: RSS {result['rss_before_kb']:,}"
            f" -> {result['rss_after_kb']:,} KB, {result['kb_per_session']:.1f} KB/session"
        )
    if "server_cpu" in result:
        print(
            f"            CPU (share of one core): server {100 * result['server_cpu']:.0f}%,"
            f" generator {100 * result['generator_cpu']:.0f}%"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small scenarios, a few seconds")
    parser.add_argument("--scenarios", default="login,throughput,memory")
    parser.add_argument("--logins", type=int, default=None, help="login: clients (1000)")
    parser.add_argument("--login-concurrency", type=int, default=50)
    parser.add_argument("--clients", type=int, default=None, help="throughput: clients (200)")
    parser.add_argument("--inflight", type=int, default=5, help="throughput: messages in flight")
    parser.add_argument("--duration", type=float, default=None, help="throughput: seconds (15)")
    parser.add_argument("--warmup", type=float, default=None, help="throughput: seconds (3)")
    parser.add_argument("--sessions", type=int, default=None, help="memory: sessions (1000)")
    parser.add_argument("--profile", type=Path, default=None, help="py-spy summary file")
    parser.add_argument("--json", action="store_true", help="also print the results as JSON")
    args = parser.parse_args()
    quick = args.quick
    logins = args.logins or (50 if quick else 1000)
    clients = args.clients or (20 if quick else 200)
    duration = args.duration or (2.0 if quick else 15.0)
    warmup = args.warmup if args.warmup is not None else (0.5 if quick else 3.0)
    sessions = args.sessions or (100 if quick else 1000)
    scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    unknown = set(scenarios) - {"login", "throughput", "memory"}
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    profile = args.profile
    if profile is not None and shutil.which("py-spy") is None:
        print("py-spy not found; running without --profile")
        profile = None

    raise_fd_limit()
    pin(0, GENERATOR_CPU)
    print(
        f"python {platform.python_version()} ({platform.python_implementation()}),"
        f" {os.cpu_count()} CPUs; server on CPU {SERVER_CPU}, generator on CPU {GENERATOR_CPU}"
    )
    workdir = Path(tempfile.mkdtemp(prefix="xmpp-load-"))
    all_results: dict[str, Any] = {}
    try:
        data = workdir / "data"
        accounts = max(logins if "login" in scenarios else 0,
                       clients if "throughput" in scenarios else 0,
                       sessions if "memory" in scenarios else 0, 1)  # fmt: skip
        took = create_accounts(data / "xmpp.sqlite3", accounts)
        print(
            f"accounts    {accounts} created in {took:.1f} s (SCRAM iterations {SCRAM_ITERATIONS})"
        )
        took = precompute_salted_passwords(data / "xmpp.sqlite3")
        print(f"            client-side SaltedPassword cache filled in {took:.1f} s")
        raw_profiles: list[Path] = []
        for scenario in scenarios:
            port = free_port()
            config = workdir / "xmpp.toml"
            config.write_text(
                CONFIG.format(domain=DOMAIN, data=data, iterations=SCRAM_ITERATIONS, port=port)
            )
            raw = workdir / f"profile-{scenario}.txt" if profile is not None else None
            try:
                server = Server(config, port, raw)
            except RuntimeError as exc:
                print(f"{scenario}: FAILED: {exc}")
                continue
            options = Options(
                port=port,
                cafile=str(data / "tls" / "cert.pem"),
                server_pid=server.pid,
                logins=logins,
                login_concurrency=args.login_concurrency,
                clients=clients,
                inflight=args.inflight,
                duration=duration,
                warmup=min(warmup, duration / 2),
                sessions=sessions,
            )
            try:
                result = run_scenario(scenario, options)
            finally:
                server.stop()
            if raw is not None and raw.exists():
                raw_profiles.append(raw)
            all_results[scenario] = result
            report(scenario, result)
        if profile is not None and raw_profiles:
            merged = workdir / "profile-merged.txt"
            merged.write_text("".join(p.read_text() for p in raw_profiles))
            summarise_profile(merged, profile)
        if args.json:
            import json

            print(json.dumps({"options": asdict(options), "results": all_results}, indent=2))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    try:
        main()
    except Exception as exc:  # the benchmark never fails the build
        print(f"load benchmark error: {type(exc).__name__}: {exc}")
    sys.exit(0)
