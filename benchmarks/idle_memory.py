"""Memory per idle bound session, in one server process, traced (issue 24).

The server runs in this process (Trio, the load benchmark's configuration:
archives on, SCRAM-SHA-256 with 4096 iterations, sasl2 as the tree's default)
on a loopback port, plaintext (``c2s-starttls`` with ``require_tls = false``;
the client hides STARTTLS) or direct TLS. A child process logs in
``--warmup`` sessions, then ``--sessions`` more, each bound with one
resource, initial presence sent and a ping answered, and keeps them open.
Between the two steps the server measures:

* ``--mode trace``: :mod:`tracemalloc` snapshots, the difference grouped by
  ``filename:lineno`` (or ``--group traceback``), bytes per session;
* ``--mode rss``: ``VmRSS`` of the process (what the load benchmark's
  ``memory`` scenario reads), KB per session, tracemalloc off.

``--tree DIR`` runs the server from another checkout (``git worktree add
/tmp/base39 39a27bd``); ``--against DIR`` runs both and prints them side by
side::

    python3 benchmarks/idle_memory.py --against /tmp/base39 --tls none,direct
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import re
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOMAIN = "localhost"
PASSWORD = "idle-pass"
STARTTLS = re.compile(rb"<starttls\b[^>]*?/>|<starttls\b[^>]*?>.*?</starttls>", re.S)


# --- the clients (child process) -------------------------------------------------


def _client(port: int, tls: bool, index: int) -> socket.socket:
    import secrets

    from xmpp_sansio.jid import JID
    from xmpp_sansio.sasl import tls_server_end_point
    from xmpp_sansio.stream.config import ClientConfig
    from xmpp_sansio.stream.connection import ClientConnection, TLSInfo
    from xmpp_sansio.stream.events import ResourceBound

    config = ClientConfig(rng=secrets.token_bytes, jid=JID.parse(f"u{index}@{DOMAIN}/idle"),
                          password=PASSWORD, require_tls=tls, mechanisms=("SCRAM-SHA-256",),
                          stream_management=False)  # fmt: skip
    sock: socket.socket = socket.create_connection(("127.0.0.1", port))
    if tls:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE  # loopback, a certificate made for this run
        sock = ctx.wrap_socket(sock, server_hostname=DOMAIN)
        der = sock.getpeercert(binary_form=True) or b""
        conn = ClientConnection(config, tls_active=True,
                                tls_info=TLSInfo(channel_binding=tls_server_end_point(der)))  # fmt: skip
    else:
        conn = ClientConnection(config)
    conn.start()
    bound = False
    while not bound:
        out = conn.data_to_send()
        if out:
            sock.sendall(out)
        while (event := conn.next_event()) is not None:
            if isinstance(event, ResourceBound):
                bound = True
            elif type(event).__name__ in ("AuthenticationFailed", "NegotiationFailed",
                                           "StreamErrorReceived", "StreamClosed", "ConnectionClosed"):  # fmt: skip
                raise RuntimeError(f"login of u{index}: {event!r}")
        if bound:
            break
        data = sock.recv(65536)
        if not data:
            raise RuntimeError(f"login of u{index}: connection closed")
        conn.receive_data(data if tls else STARTTLS.sub(b"", data))
    SASL2_USED[0] += bool(getattr(conn, "used_sasl2", False))
    out = conn.data_to_send()
    sock.sendall(out + b"<presence/><iq type='get' id='idle-ping' to='" + DOMAIN.encode()
                 + b"'><ping xmlns='urn:xmpp:ping'/></iq>")  # fmt: skip
    seen = b""
    while b"idle-ping" not in seen:  # the server has handled the presence and the ping
        data = sock.recv(65536)
        if not data:
            raise RuntimeError(f"u{index}: closed after login")
        seen = seen[-16:] + data
    return sock


SASL2_USED = [0]


def run_clients(port: int, tls: bool) -> None:
    """Read ``N`` lines from stdin: log in N more sessions, answer ``ok``."""
    socks: list[socket.socket] = []
    for line in sys.stdin:
        count = int(line)
        start = len(socks)
        socks.extend(_client(port, tls, i) for i in range(start, start + count))
        print(f"ok {SASL2_USED[0]}", flush=True)
    for sock in socks:
        with contextlib.suppress(OSError):
            sock.close()


# --- the server (this process) ------------------------------------------------------


def _rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _config_text(data: Path, tls: bool, extra: str) -> str:
    kind = "c2s-directtls" if tls else "c2s-starttls"
    mam = (
        "\n[mam]\nenabled = true\n" if (Path.cwd() / "xmpp_trio" / "mam_config.py").exists() else ""
    )
    return (f'domains = ["{DOMAIN}"]\ndata_dir = "{data}"\nlog_level = "warning"\n'
            f"{extra}scram_iterations = 4096\nrequire_tls = {'true' if tls else 'false'}\n"
            "\n[limits]\nnegotiation_timeout = 600\nresume_timeout = 0\nmax_connections = 1000000\n"
            "max_connections_per_ip = 1000000\nauth_failures_before_backoff = 1000000\n"
            "idle_timeout = 86400\n"
            f'\n[[listeners]]\nkind = "{kind}"\naddress = "127.0.0.1"\nport = 0\n{mam}')  # fmt: skip


async def _measure(args: argparse.Namespace) -> None:
    import trio

    import xmpp_trio.server
    from xmpp_trio.config import load_config
    from xmpp_trio.server import run_server
    from xmpp_trio.storage import AccountStore

    # Parser compaction after quiet (xmpp_trio/server.py): never, or after
    # ``--compact-after`` seconds (a session compacted is what stays idle).
    xmpp_trio.server._COMPACT_AFTER = args.compact_after or 1e9  # type: ignore[attr-defined]

    tls = args.tls == "direct"
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        data.mkdir()
        path = Path(tmp) / "xmpp.toml"
        path.write_text(_config_text(data, tls, args.config.replace("\\n", "\n")))
        config = load_config(path)
        with AccountStore.open(config.database_path) as store:
            for i in range(args.warmup + args.sessions):
                store.create(f"u{i}", DOMAIN, PASSWORD, iterations=4096)
        async with trio.open_nursery() as nursery:
            bound = await nursery.start(run_server, config)
            port = bound[0].port
            child = [sys.executable, str(Path(__file__).resolve()), "--clients", str(port),
                     "--tls", args.tls]  # fmt: skip
            env = os.environ | {"PYTHONPATH": str(ROOT)}
            proc = subprocess.Popen(child, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    text=True, env=env)  # fmt: skip
            stdin, stdout = proc.stdin, proc.stdout
            assert stdin is not None and stdout is not None
            used = [0]

            async def step(count: int) -> None:
                """Log ``count`` more sessions in, then let the server settle."""
                stdin.write(f"{count}\n")
                stdin.flush()
                line = await trio.to_thread.run_sync(stdout.readline)
                if not line.startswith("ok"):
                    raise RuntimeError(f"clients: {line!r}")
                used[0] = int(line.split()[1])
                await trio.sleep(args.settle + (args.compact_after or 0) * 2)
                gc.collect()

            if args.mode == "trace":
                tracemalloc.start(args.frames)
            await step(args.warmup)
            before = tracemalloc.take_snapshot() if args.mode == "trace" else None
            rss0 = _rss_kb()
            t0 = time.monotonic()
            await step(args.sessions)
            wall = time.monotonic() - t0
            after = tracemalloc.take_snapshot() if args.mode == "trace" else None
            rss1 = _rss_kb()
            stdin.close()
            proc.wait()
            nursery.cancel_scope.cancel()
    n = args.sessions
    print(f"logins over SASL2: {used[0]} of {args.warmup + n}")
    if before is None or after is None:
        print(f"RESULT rss_kb_per_session={(rss1 - rss0) / n:.2f} login_wall_s={wall:.2f}")
        return
    group = "traceback" if args.group == "traceback" else "lineno"
    skip = tracemalloc.Filter(False, tracemalloc.__file__)
    diff = after.filter_traces([skip]).compare_to(before.filter_traces([skip]), group)
    total = sum(d.size_diff for d in diff)
    blocks = sum(d.count_diff for d in diff)
    print(f"RESULT traced_bytes_per_session={total / n:.0f} blocks_per_session={blocks / n:.1f}")
    for d in diff[: args.top]:
        if abs(d.size_diff) < n * 8:
            break
        where = (
            d.traceback.format(limit=args.frames) if group == "traceback" else [str(d.traceback[0])]
        )
        label = _short(where[-1] if group == "lineno" else " <- ".join(
            _short(w) for w in reversed(where) if not w.startswith("    ")))  # fmt: skip
        print(f"{d.size_diff / n:8.0f} B {d.count_diff / n:6.2f} blk  {label}")


def _short(where: str) -> str:
    where = where.strip()
    for prefix in (str(ROOT) + "/", sys.prefix):
        where = where.replace(prefix, "")
    return re.sub(r'File "([^"]*)", line (\d+)', r"\1:\2", where)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, help=argparse.SUPPRESS)  # the child process
    parser.add_argument("--tls", default="none", help="none, direct, or both: none,direct")
    parser.add_argument("--sessions", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--settle", type=float, default=0.5)
    parser.add_argument(
        "--compact-after",
        type=float,
        default=0.0,
        help="seconds of quiet before a parser is compacted (0: never)",
    )
    parser.add_argument(
        "--config", default="", help='top-level TOML lines, e.g. "sasl2 = false\\n"'
    )
    parser.add_argument("--mode", default="trace,rss", help="trace, rss, or both")
    parser.add_argument("--group", default="lineno", choices=("lineno", "traceback"))
    parser.add_argument("--frames", type=int, default=1)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--tree", type=Path, default=None, help="run the server from this checkout")
    parser.add_argument("--against", type=Path, default=None, help="also measure this checkout")
    args = parser.parse_args()
    if args.clients is not None:
        run_clients(args.clients, args.tls == "direct")
        return
    modes = args.mode.split(",")
    tlss = args.tls.split(",")
    if len(modes) == 1 and len(tlss) == 1 and args.against is None:
        import trio

        trio.run(_measure, args)
        return
    trees = [ROOT] + ([args.against.resolve()] if args.against else [])
    for tls in tlss:
        for mode in modes:
            for tree in trees:
                cmd = [sys.executable, str(Path(__file__).resolve()), "--tls", tls, "--mode", mode,
                       "--sessions", str(args.sessions), "--warmup", str(args.warmup),
                       "--settle", str(args.settle), "--compact-after", str(args.compact_after), "--config", args.config, "--group", args.group,
                       "--frames", str(args.frames), "--top", str(args.top)]  # fmt: skip
                env = os.environ | {"PYTHONPATH": str(tree)}
                out = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True)
                print(f"== {tree.name} tls={tls} mode={mode} ({args.sessions} sessions)")
                print(out.stdout + out.stderr[-2000:], end="", flush=True)


if __name__ == "__main__":
    main()
