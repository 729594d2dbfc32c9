"""The load generator: one process, one ``select.epoll`` loop, no Trio.

Theory of operation. Every simulated client is a non-blocking socket
registered (level-triggered) with one epoll object. Negotiation is driven by
our sans-IO :class:`~xmpp_sansio.stream.connection.ClientConnection`: bytes
read from the socket go into ``receive_data``, its events are handled here
(``TLSRequested`` wraps the socket in a non-blocking ``ssl.SSLSocket`` and
calls ``tls_established``), and ``data_to_send`` is written back. So the
generator logs in to any RFC 6120 server, with STARTTLS, direct TLS
(XEP-0368) or no TLS at all, and many logins overlap in the one loop.

Once a client is bound its ``ClientConnection`` is dropped. From then on the
hot path is bytes only: messages are pre-serialised (only the send time is
formatted per message, and a batch shares one time stamp) and received bytes
are scanned with a regular expression for the body marker
``T<send time ns>S<sender index>`` (a short tail is kept between reads, so a
marker split across two reads is still found). No XML is parsed.

TLS notes: an ``SSLSocket`` may hold decrypted bytes that epoll cannot see,
so after every ``recv`` the loop reads again while ``pending()`` is non-zero.
A write that raises ``SSLWantWriteError`` is retried later with the same
leading bytes (CPython sets ``SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER``), and
``SSLWantReadError`` on a write simply waits for the next readable event.

The scenario functions at the end return plain dicts (picklable) to the
orchestrator in ``run.py``.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import resource
import secrets
import select
import socket
import ssl
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xmpp_sansio.errors import ProtocolError
from xmpp_sansio.jid import JID
from xmpp_sansio.sasl import tls_server_end_point
from xmpp_sansio.stream.config import ClientConfig
from xmpp_sansio.stream.connection import ClientConnection, TLSInfo, WebSocketFraming
from xmpp_sansio.stream.events import (
    AuthenticationFailed,
    ConnectionClosed,
    NegotiationFailed,
    ResourceBound,
    StreamClosed,
    StreamErrorReceived,
    TLSRequested,
)

RESOURCE = "load"

# What a delivered benchmark message looks like to the receiver; servers
# re-serialise the stanza, but the body text is ours.
MARK = re.compile(rb"<body>T(\d{20})S(\d{7})</body>")
MARK_TAIL = 64  # bytes kept between reads so a body split across reads is still found
BODY_END = b"</body>"
# ``--tls none``: hide STARTTLS from the client connection, which would
# otherwise always take it when offered.
STARTTLS_FEATURE = re.compile(rb"<starttls\b[^>]*?/>|<starttls\b[^>]*?>.*?</starttls>", re.S)

EPOLLIN = select.EPOLLIN
EPOLLOUT = select.EPOLLOUT
READ_SIZE = 262144

_FAILED = (AuthenticationFailed, NegotiationFailed, StreamErrorReceived, StreamClosed,
           ConnectionClosed)  # fmt: skip

# SaltedPassword cache, filled by the orchestrator before it forks the
# generator: a real client may cache it (RFC 5802 §5.1), and PBKDF2 per login
# would otherwise make the generator the bottleneck.
SALTED: dict[tuple[str, bytes, int], bytes] = {}


def use_salted_cache(password: str) -> None:
    """Make the SCRAM client take SaltedPassword from :data:`SALTED` when it can."""
    from xmpp_sansio.sasl import scram
    from xmpp_sansio.sasl.credentials import salted_password

    def cached(pw: str, hash_name: str, salt: bytes, iterations: int) -> bytes:
        hit = SALTED.get((hash_name, salt, iterations)) if pw == password else None
        return hit if hit is not None else salted_password(pw, hash_name, salt, iterations)

    setattr(scram, "salted_password", cached)  # noqa: B010 (not re-exported)


# --- process measurements ------------------------------------------------------


def tree_pids(pid: int) -> list[int]:
    """``pid`` and all its descendants (from ``/proc/<pid>/task/*/children``)."""
    pids, todo = [], [pid]
    while todo:
        current = todo.pop()
        pids.append(current)
        with contextlib.suppress(OSError):
            for task in os.listdir(f"/proc/{current}/task"):
                with contextlib.suppress(OSError):
                    text = Path(f"/proc/{current}/task/{task}/children").read_text()
                    todo.extend(int(p) for p in text.split())
    return pids


def rss_kb(pid: int) -> int:
    """``VmRSS`` of ``pid`` and its descendants, in KB."""
    total = 0
    for one in tree_pids(pid):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{one}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds used so far by ``pid`` and its descendants."""
    ticks = 0
    for one in tree_pids(pid):
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{one}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def self_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def percentile(sorted_values: Sequence[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


def core_times() -> dict[str, tuple[int, int]]:
    """``{"cpu0": (busy, total), ...}`` in ticks, from ``/proc/stat``."""
    out = {}
    with contextlib.suppress(OSError):
        for line in Path("/proc/stat").read_text().splitlines():
            name, *values = line.split()
            if name.startswith("cpu") and name != "cpu":
                ticks = [int(v) for v in values[:8]]
                idle = ticks[3] + ticks[4]  # idle, iowait
                out[name] = (sum(ticks) - idle, sum(ticks))
    return out


class CpuWindow:
    """CPU shares (of one core) of the server tree and of this process over a
    window, and how busy each core was in total: a core much busier than the
    process pinned to it means something else (another job on a shared
    machine) competed for it."""

    def __init__(self, server_pid: int) -> None:
        self.server_pid = server_pid
        self.t0 = time.perf_counter()
        self.cpu0 = self_cpu_seconds()
        self.srv0 = cpu_seconds(server_pid)
        self.cores0 = core_times()

    def close(self) -> dict[str, float]:
        wall = max(1e-9, time.perf_counter() - self.t0)
        out = {
            "server_cpu": (cpu_seconds(self.server_pid) - self.srv0) / wall,
            "generator_cpu": (self_cpu_seconds() - self.cpu0) / wall,
        }
        for name, (busy, total) in core_times().items():
            busy0, total0 = self.cores0.get(name, (busy, total))
            if total > total0:
                out[f"{name}_busy"] = (busy - busy0) / (total - total0)
        return out


# --- the job description ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Job:
    """One scenario run against one running server (picklable)."""

    scenario: str  # a name in scenarios.REGISTRY
    host: str
    port: int
    tls: str  # direct | starttls | none
    mechanism: str
    domain: str
    password: str
    cafile: str | None
    server_pid: int
    count: int = 100  # logins / clients
    concurrency: int = 50
    inflight: int = 5
    duration: float = 10.0
    warmup: float = 2.0
    rates: tuple[int, ...] = ()
    sizes: tuple[int, ...] = ()
    settle: float = 2.0
    #: seconds at most, after the traffic scenarios' settle, waiting for quiet reads and an idle server
    max_settle: float = 60.0
    drain: float = 10.0
    #: parameters of scenarios registered later (scenarios.py): no edit here per scenario
    extra: dict[str, Any] = field(default_factory=dict)
    #: path of the compiled generator (gogen.py) to run the job with; "" for this one
    engine: str = ""


# --- the engine ------------------------------------------------------------------

CONNECTING, HANDSHAKE, NEGOTIATING, READY, CLOSED, UPGRADING = range(6)

#: Job.tls of XMPP over WebSocket (RFC 7395) on a plain http listener (issue 18)
WEBSOCKET = "ws"
WS_UPGRADE = (b"GET /xmpp-websocket HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
              b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
              b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: xmpp\r\n\r\n")  # fmt: skip


def ws_frame(payload: bytes) -> bytes:
    """A client text frame (RFC 6455 §5.2), masked with the all-zero key: the
    wire format a server must accept, at no masking cost to the generator
    (a real client draws a random key per frame, §5.3)."""
    size = len(payload)
    if size < 126:
        return bytes((0x81, 0x80 | size)) + b"\0\0\0\0" + payload
    if size < 65536:
        return bytes((0x81, 0xFE)) + size.to_bytes(2, "big") + b"\0\0\0\0" + payload
    return bytes((0x81, 0xFF)) + size.to_bytes(8, "big") + b"\0\0\0\0" + payload


def ws_messages(buffer: bytes) -> tuple[list[bytes], bytes]:
    """The complete (unmasked, unfragmented) server frames' payloads in
    ``buffer``, and what is left of it; control frames are skipped."""
    messages: list[bytes] = []
    while len(buffer) >= 2:
        size, at = buffer[1] & 0x7F, 2
        if size == 126:
            if len(buffer) < 4:
                break
            size, at = int.from_bytes(buffer[2:4], "big"), 4
        elif size == 127:
            if len(buffer) < 10:
                break
            size, at = int.from_bytes(buffer[2:10], "big"), 10
        if len(buffer) < at + size:
            break
        if buffer[0] & 0x0F == 1:
            messages.append(buffer[at : at + size])
        buffer = buffer[at + size :]
    return messages, buffer


class Client:
    __slots__ = ("conn", "error", "fd", "index", "mask", "out", "sock", "start", "state", "tail",
                 "tls")  # fmt: skip

    def __init__(self, index: int, sock: socket.socket) -> None:
        self.index = index
        self.sock: Any = sock
        self.fd = sock.fileno()
        self.state = CONNECTING
        self.conn: ClientConnection | None = None
        self.out = b""
        self.tail = b""
        self.mask = EPOLLOUT
        self.start = time.perf_counter()
        self.tls = False
        self.error = ""


class Engine:
    """Non-blocking clients in one epoll loop: connect, negotiate, then raw bytes."""

    def __init__(self, job: Job) -> None:
        self.job = job
        self.ep = select.epoll()
        self.by_fd: dict[int, Client] = {}
        self.again: set[Client] = set()
        self.ctx: ssl.SSLContext | None = None
        self.websocket = job.tls == WEBSOCKET
        #: each stanza sent once bound, as the transport wants it
        self.frame: Callable[[bytes], bytes] = ws_frame if self.websocket else bytes
        if job.tls not in ("none", WEBSOCKET):
            self.ctx = ssl.create_default_context(cafile=job.cafile)
            self.ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        self._bindings: dict[bytes, TLSInfo] = {}
        #: called with a client when it is bound (after initial presence is queued)
        self.on_bound: Callable[[Client], None] = lambda c: None
        #: called with a client whose login failed
        self.on_failed: Callable[[Client], None] = lambda c: None
        #: ``time.perf_counter()`` of the last poll that found a socket ready (``settle``: reads,
        #: as nothing is written then)
        self.last_read = time.perf_counter()
        #: called with (client, bytes) for every read once bound
        self.on_data: Callable[[Client, bytes], None] = lambda c, d: None

    # -- lifecycle -----------------------------------------------------------------

    def connect(self, index: int) -> Client:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        client = Client(index, sock)
        err = sock.connect_ex((self.job.host, self.job.port))
        if err not in (0, 115):  # EINPROGRESS
            client.error = os.strerror(err)
            client.state = CLOSED
            sock.close()
            self.on_failed(client)
            return client
        self.by_fd[client.fd] = client
        self.ep.register(client.fd, EPOLLOUT)
        return client

    def fail(self, client: Client, reason: str) -> None:
        if client.state == CLOSED:
            return
        bound = client.state == READY
        client.error = client.error or reason
        self.close(client)
        if not bound:
            self.on_failed(client)

    def close(self, client: Client) -> None:
        if client.state == CLOSED:
            return
        client.state = CLOSED
        self.again.discard(client)
        self.by_fd.pop(client.fd, None)
        with contextlib.suppress(OSError, ValueError):
            self.ep.unregister(client.fd)
        with contextlib.suppress(OSError):
            client.sock.close()
        client.conn = None

    def close_all(self) -> None:
        for client in list(self.by_fd.values()):
            self.close(client)

    # -- the loop --------------------------------------------------------------------

    def poll(self, timeout: float) -> None:
        if self.again:
            timeout = 0
        by_fd = self.by_fd
        ready = self.ep.poll(timeout)
        if ready:
            self.last_read = time.perf_counter()
        for fd, events in ready:
            client = by_fd.get(fd)
            if client is None:
                continue
            if events & EPOLLOUT:
                self._writable(client)
            if events & ~EPOLLOUT and client.state != CLOSED:
                self._readable(client)
        if self.again:
            for client in list(self.again):
                self.again.discard(client)
                if client.state != CLOSED:
                    self._readable(client)

    def _set_mask(self, client: Client, mask: int) -> None:
        if client.mask != mask and client.state != CLOSED:
            client.mask = mask
            self.ep.modify(client.fd, mask)

    def _writable(self, client: Client) -> None:
        state = client.state
        if state == CONNECTING:
            err = client.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                self.fail(client, f"connect: {os.strerror(err)}")
                return
            self._set_mask(client, EPOLLIN)
            if self.websocket:
                client.state = UPGRADING
                self.send(client, WS_UPGRADE)
            elif self.job.tls == "direct":
                self._start_tls(client)
            else:
                client.conn = ClientConnection(self._config(client.index))
                client.conn.start()
                client.state = NEGOTIATING
                self._flush_conn(client)
        elif state == HANDSHAKE:
            self._handshake(client)
        else:
            self.flush(client)

    def _readable(self, client: Client) -> None:
        if client.state == HANDSHAKE:
            self._handshake(client)
            return
        if client.state == CONNECTING:
            self._writable(client)  # an error on connect
            return
        sock = client.sock
        try:
            data = sock.recv(READ_SIZE)
            if client.tls:
                while sock.pending():
                    data += sock.recv(READ_SIZE)
        except (ssl.SSLWantReadError, BlockingIOError, InterruptedError):
            return
        except ssl.SSLWantWriteError:
            self._set_mask(client, EPOLLIN | EPOLLOUT)
            return
        except OSError as exc:
            self.fail(client, f"recv: {exc!r}")
            return
        if not data:
            self.fail(client, "the server closed the connection")
            return
        if client.state == READY:
            self.on_data(client, data)
        elif client.state == UPGRADING:
            self._upgraded(client, data)
        else:
            self._negotiate(client, data)
        if client.out and client.state != CLOSED:
            self.flush(client)  # a write may have waited for this read (TLS)

    # -- writing ---------------------------------------------------------------------

    def send(self, client: Client, data: bytes) -> None:
        if client.out:
            client.out += data
            return
        client.out = data
        self.flush(client)

    def flush(self, client: Client) -> None:
        out = client.out
        if not out:
            self._set_mask(client, EPOLLIN)
            return
        try:
            sent = client.sock.send(out)
        except (ssl.SSLWantWriteError, BlockingIOError, InterruptedError):
            sent = 0
        except ssl.SSLWantReadError:
            return  # retried after the next read
        except OSError as exc:
            self.fail(client, f"send: {exc!r}")
            return
        client.out = out[sent:] if sent < len(out) else b""
        self._set_mask(client, EPOLLIN | EPOLLOUT if client.out else EPOLLIN)

    # -- negotiation -------------------------------------------------------------------

    def _config(self, index: int) -> ClientConfig:
        job = self.job
        return ClientConfig(
            rng=secrets.token_bytes,
            jid=JID.parse(f"u{index}@{job.domain}/{RESOURCE}"),
            password=job.password,
            require_tls=job.tls != "none",
            allow_plain=job.mechanism == "PLAIN",
            mechanisms=(job.mechanism,),
            stream_management=False,
        )

    def _start_tls(self, client: Client) -> None:
        assert self.ctx is not None
        try:
            client.sock = self.ctx.wrap_socket(
                client.sock, do_handshake_on_connect=False, server_hostname=self.job.domain
            )
        except (OSError, ssl.SSLError) as exc:
            self.fail(client, f"TLS: {exc!r}")
            return
        client.tls = True
        client.state = HANDSHAKE
        self._handshake(client)

    def _handshake(self, client: Client) -> None:
        try:
            client.sock.do_handshake()
        except ssl.SSLWantReadError:
            self._set_mask(client, EPOLLIN)
            return
        except ssl.SSLWantWriteError:
            self._set_mask(client, EPOLLIN | EPOLLOUT)
            return
        except (OSError, ssl.SSLError) as exc:
            self.fail(client, f"TLS handshake: {exc!r}")
            return
        self._set_mask(client, EPOLLIN)
        info = self._tls_info(client.sock.getpeercert(binary_form=True) or b"")
        if client.conn is None:  # direct TLS
            client.conn = ClientConnection(self._config(client.index), tls_active=True,
                                           tls_info=info)  # fmt: skip
            client.conn.start()
        else:
            client.conn.tls_established(info)
        client.state = NEGOTIATING
        self._pump(client)
        if client.state != CLOSED:
            self.again.add(client)  # the server's first bytes may already be buffered

    def _tls_info(self, der: bytes) -> TLSInfo:
        info = self._bindings.get(der)
        if info is None:
            try:
                binding = tls_server_end_point(der) if der else None
            except ValueError:
                binding = None
            info = self._bindings[der] = TLSInfo(channel_binding=binding)
        return info

    def _upgraded(self, client: Client, data: bytes) -> None:
        """The 101 of the WebSocket upgrade; then the stream over RFC 7395."""
        head, found, rest = (client.tail + data).partition(b"\r\n\r\n")
        if not found:
            client.tail = head
            return
        client.tail = b""
        if b" 101 " not in head.split(b"\r\n", 1)[0]:
            self.fail(client, f"WebSocket upgrade refused: {head[:80]!r}")
            return
        client.conn = ClientConnection(self._config(client.index), tls_active=True,
                                       framing=WebSocketFraming(wrap=ws_frame))  # fmt: skip
        client.conn.start()
        client.state = NEGOTIATING
        self._flush_conn(client)
        if rest:
            self._negotiate(client, rest)

    def _negotiate(self, client: Client, data: bytes) -> None:
        conn = client.conn
        assert conn is not None
        if self.job.tls == "none" and b"starttls" in data:
            data = STARTTLS_FEATURE.sub(b"", data)
        try:
            if self.websocket:
                messages, client.tail = ws_messages(client.tail + data)
                for message in messages:
                    conn.receive_message(message)
            else:
                conn.receive_data(data)
        except ProtocolError as exc:
            self._flush_conn(client)
            self.fail(client, f"protocol error: {exc!r}")
            return
        self._pump(client)

    def _pump(self, client: Client) -> None:
        conn = client.conn
        assert conn is not None
        bound = False
        while (event := conn.next_event()) is not None:
            if isinstance(event, TLSRequested):
                self._flush_conn(client)
                if self.ctx is None:
                    self.fail(client, "the server asked for TLS with --tls none")
                    return
                self._start_tls(client)
                return
            if isinstance(event, ResourceBound):
                bound = True
            elif isinstance(event, _FAILED):
                self._flush_conn(client)
                self.fail(client, f"login of u{client.index} failed: {event!r}")
                return
        self._flush_conn(client)
        if bound and client.state != CLOSED:
            client.state = READY
            client.conn = None
            client.tail = b""
            # RFC 7395 §3.3.3: over WebSocket every element declares its namespace.
            presence = b"<presence xmlns='jabber:client'/>" if self.websocket else b"<presence/>"
            self.send(client, self.frame(presence))
            if client.state != CLOSED:
                self.on_bound(client)

    def _flush_conn(self, client: Client) -> None:
        conn = client.conn
        if conn is not None:
            data = conn.data_to_send()
            if data:
                self.send(client, data)


# --- logins ------------------------------------------------------------------------


@dataclass(slots=True)
class LoginResult:
    clients: list[Client]
    latencies: list[float]
    failures: int
    first_error: str
    wall: float


def login_many(engine: Engine, indices: Sequence[int], concurrency: int,
               stall: float = 60.0) -> LoginResult:  # fmt: skip
    """Log in every index, at most ``concurrency`` at once; keep the sessions open."""
    todo = iter(indices)
    total = len(indices)
    bound: list[Client] = []
    latencies: list[float] = []
    failed: list[Client] = []

    def next_login() -> None:
        index = next(todo, None)
        if index is not None:
            engine.connect(index)

    def on_bound(client: Client) -> None:
        latencies.append(time.perf_counter() - client.start)
        bound.append(client)
        next_login()

    def on_failed(client: Client) -> None:
        failed.append(client)
        next_login()

    engine.on_bound, engine.on_failed = on_bound, on_failed
    start = time.perf_counter()
    for _ in range(min(concurrency, total)):
        next_login()
    progress, last = 0, time.perf_counter()
    while len(bound) + len(failed) < total:
        engine.poll(0.05)
        done = len(bound) + len(failed)
        now = time.perf_counter()
        if done != progress:
            progress, last = done, now
        elif now - last > stall:
            break
    wall = time.perf_counter() - start
    engine.on_bound = engine.on_failed = lambda c: None
    stalled = total - len(bound) - len(failed)
    error = failed[0].error if failed else ""
    if stalled:
        error = error or f"{stalled} logins made no progress for {stall:.0f} s"
    bound.sort(key=lambda c: c.index)
    return LoginResult(bound, latencies, len(failed) + stalled, error, wall)


def idle(engine: Engine, seconds: float) -> None:
    end = time.perf_counter() + seconds
    while (left := end - time.perf_counter()) > 0:
        engine.poll(min(left, 0.1))


#: ``settle``: no read for this long, and the server under ``_IDLE_SHARE`` of a core over it.
_QUIET_FOR = 0.3
_IDLE_SHARE = 0.1


def settle(engine: Engine, job: Job, seconds: float) -> dict[str, Any]:
    """The compiled generator's settle (gen/traffic.go ``settle``): ``seconds``
    after the logins, then until no client has read anything for 0.3 s and
    the server's process tree (``job.server_pid``) used under a tenth of a
    core over that time, at most ``job.max_settle`` more (a server may still
    be answering the logins' presence and probes while it writes nothing for
    300 ms: ejabberd with 1,000 clients and rosters of 50, docs/benchmarks.md
    "Session 17"). Returns ``settle_s`` and ``settled`` for the result."""
    start = time.perf_counter()
    idle(engine, seconds)
    deadline = time.perf_counter() + job.max_settle
    pid = job.server_pid
    cpu0, at0 = cpu_seconds(pid), time.perf_counter()
    while (now := time.perf_counter()) < deadline:
        quiet = now - engine.last_read
        if quiet < _QUIET_FOR:
            idle(engine, _QUIET_FOR - quiet)
            continue
        since = now - at0
        if since < _QUIET_FOR:
            idle(engine, _QUIET_FOR - since)
            continue
        cpu = cpu_seconds(pid)
        if pid <= 0 or (cpu - cpu0) / since < _IDLE_SHARE:
            return {"settle_s": time.perf_counter() - start, "settled": True}
        cpu0, at0 = cpu, time.perf_counter()
    return {"settle_s": time.perf_counter() - start, "settled": False}


# --- scenarios ------------------------------------------------------------------------


def login_scenario(job: Job) -> dict[str, Any]:
    engine = Engine(job)
    window = CpuWindow(job.server_pid)
    result = login_many(engine, range(job.count), job.concurrency)
    cpu = window.close()
    engine.close_all()
    lat = sorted(result.latencies)
    out: dict[str, Any] = {
        "logins": len(lat),
        "failures": result.failures,
        "concurrency": job.concurrency,
        "wall_s": result.wall,
        "logins_per_s": len(lat) / result.wall,
        "p50_ms": percentile(lat, 0.50) * 1000,
        "p99_ms": percentile(lat, 0.99) * 1000,
        "max_ms": (lat[-1] * 1000) if lat else float("nan"),
        **cpu,
    }
    if result.first_error:
        out["first_error"] = result.first_error
    return out


class Traffic:
    """Senders and receivers of benchmark messages over bound clients."""

    def __init__(self, engine: Engine, clients: list[Client], domain: str) -> None:
        self.engine = engine
        self.clients = clients
        count = len(clients)
        self.count = count
        # Pre-serialised pieces: only the time stamp is formatted, once per batch.
        self.prefixes = [
            f"<message type='chat' to='u{c.index}@{domain}/{RESOURCE}'><body>T".encode()
            for c in clients
        ]
        self.suffixes = [f"S{i:07d}</body></message>".encode() for i in range(count)]
        if engine.websocket:  # RFC 7395 §3.3.3: each element declares its namespace
            self.prefixes = [p.replace(b"<message ", b"<message xmlns='jabber:client' ", 1)
                             for p in self.prefixes]  # fmt: skip
        self.credits = [0] * count
        self.due: set[int] = set()
        self.sent = 0
        self.delivered = 0
        self.measuring = False
        self.measured = 0
        self.latencies: list[int] = []
        self.rng = random.Random(6)
        engine.on_data = self.receive

    def receive(self, client: Client, data: bytes) -> None:
        now = time.monotonic_ns()
        if client.tail:
            data = client.tail + data
        hits = MARK.findall(data)
        if hits:
            credits, due = self.credits, self.due
            measuring = self.measuring
            latencies = self.latencies
            for stamp, sender in hits:
                index = int(sender)
                credits[index] += 1
                due.add(index)
                if measuring:
                    latencies.append(now - int(stamp))
            self.delivered += len(hits)
            if measuring:
                self.measured += len(hits)
        cut = data.rfind(BODY_END)
        cut = cut + len(BODY_END) if cut >= 0 else 0
        client.tail = data[max(cut, len(data) - MARK_TAIL) :]

    def send_batch(self, sender: int, n: int, stamp: bytes) -> None:
        """``n`` messages from client number ``sender`` to random other clients."""
        count = self.count
        prefixes = self.prefixes
        rand = self.rng.randrange
        tail = stamp + self.suffixes[sender]
        parts = []
        frame = self.engine.frame if self.engine.websocket else None
        for _ in range(n):
            peer = rand(count - 1) if count > 1 else 0
            if peer >= sender and count > 1:
                peer += 1
            if frame is not None:  # RFC 7395: one stanza per frame
                parts.append(frame(prefixes[peer] + tail))
                continue
            parts.append(prefixes[peer])
            parts.append(tail)
        self.sent += n
        self.engine.send(self.clients[sender], b"".join(parts))

    def drain(self, seconds: float) -> float:
        """Wait for what is still in flight: until all of it came or nothing
        came for ``seconds`` (the rest is lost), 120 s at most (as the Go
        generator's drain: a slow server is not a lossy one)."""
        start = progress = time.perf_counter()
        last = self.delivered
        while self.delivered < self.sent and time.perf_counter() - start < 120:
            self.engine.poll(0.02)
            if self.delivered != last:
                last, progress = self.delivered, time.perf_counter()
            elif time.perf_counter() - progress >= seconds:
                break
        return time.perf_counter() - start

    def stats(self, window: float) -> dict[str, Any]:
        ordered = sorted(self.latencies)
        return {
            "msgs_per_s": self.measured / window,
            "p50_ms": percentile(ordered, 0.50) / 1e6,
            "p99_ms": percentile(ordered, 0.99) / 1e6,
            "max_ms": (ordered[-1] / 1e6) if ordered else float("nan"),
        }


def _login_clients(job: Job) -> tuple[Engine, list[Client], LoginResult]:
    engine = Engine(job)
    result = login_many(engine, range(job.count), job.concurrency)
    if not result.clients or result.failures:
        engine.close_all()
        raise RuntimeError(f"{result.failures} of {job.count} logins failed: {result.first_error}")
    return engine, result.clients, result


def throughput_scenario(job: Job) -> dict[str, Any]:
    """Closed loop: every client keeps ``inflight`` messages in flight."""
    engine, clients, login = _login_clients(job)
    traffic = Traffic(engine, clients, job.domain)
    settled = settle(engine, job, 0.5)  # presence echoes and the like
    traffic.delivered = traffic.sent = 0
    credits, due = traffic.credits, traffic.due
    for index in range(len(clients)):
        credits[index] = 0
        traffic.send_batch(index, job.inflight, b"%020d" % time.monotonic_ns())
    start = time.perf_counter()
    measure_at, stop_at = start + job.warmup, start + job.duration
    window: CpuWindow | None = None
    t0 = t1 = start
    cpu: dict[str, float] = {}
    while True:
        engine.poll(0.05)
        now = time.perf_counter()
        if window is None and now >= measure_at:
            window, traffic.measuring, t0 = CpuWindow(job.server_pid), True, now
        if now >= stop_at:
            traffic.measuring, t1 = False, now
            assert window is not None
            cpu = window.close()
            break
        if due:
            stamp = b"%020d" % time.monotonic_ns()
            for index in due:
                n = credits[index]
                credits[index] = 0
                traffic.send_batch(index, n, stamp)
            due.clear()
    drain = traffic.drain(job.drain)
    engine.close_all()
    return {
        "clients": len(clients),
        "inflight": job.inflight,
        "login_wall_s": login.wall,
        "window_s": t1 - t0,
        "sent": traffic.sent,
        "delivered": traffic.delivered,
        "lost": traffic.sent - traffic.delivered,
        "drain_s": drain,
        **traffic.stats(t1 - t0),
        **cpu,
        **settled,
    }


def openloop_scenario(job: Job) -> dict[str, Any]:
    """Open loop: offered rates in turn, each sent on schedule whatever gets delivered."""
    engine, clients, login = _login_clients(job)
    traffic = Traffic(engine, clients, job.domain)
    settled = settle(engine, job, 0.5)
    count = len(clients)
    rand = traffic.rng.randrange
    steps: list[dict[str, Any]] = []
    stopped = ""
    for rate in job.rates:
        traffic.sent = traffic.delivered = traffic.measured = 0
        traffic.latencies = []
        start = last = time.perf_counter()
        measure_at, stop_at = start + job.warmup, start + job.duration
        window: CpuWindow | None = None
        cpu: dict[str, float] = {}
        tokens = 0.0
        t0 = t1 = start
        sent_in_window = 0
        while True:
            engine.poll(0.001)
            now = time.perf_counter()
            if window is None and now >= measure_at:
                window, traffic.measuring, t0 = CpuWindow(job.server_pid), True, now
                sent_in_window = traffic.sent
            if now >= stop_at:
                traffic.measuring, t1 = False, now
                assert window is not None
                cpu = window.close()
                sent_in_window = traffic.sent - sent_in_window
                break
            tokens += rate * (now - last)
            last = now
            n = int(tokens)
            if n:
                tokens -= n
                stamp = b"%020d" % time.monotonic_ns()
                if n == 1:
                    traffic.send_batch(rand(count), 1, stamp)
                else:
                    per: dict[int, int] = {}
                    for _ in range(n):
                        s = rand(count)
                        per[s] = per.get(s, 0) + 1
                    for s, k in per.items():
                        traffic.send_batch(s, k, stamp)
        drain = traffic.drain(job.drain)
        window_s = t1 - t0
        step = {
            "offered_per_s": rate,
            "sent_per_s": sent_in_window / window_s,
            "window_s": window_s,
            "sent": traffic.sent,
            "delivered": traffic.delivered,
            "lost": traffic.sent - traffic.delivered,
            "drain_s": drain,
            **traffic.stats(window_s),
            **cpu,
        }
        steps.append(step)
        if step["lost"] > 0:
            stopped = f"losses at {rate}/s"
            break
        if step["msgs_per_s"] < 0.95 * rate or step["p99_ms"] > 1000:
            stopped = f"saturated at {rate}/s"
            break
        if step["generator_cpu"] > 0.95:
            stopped = f"the generator saturated at {rate}/s"
            break
    engine.close_all()
    return {"clients": count, "login_wall_s": login.wall, "steps": steps, "stopped": stopped,
            **settled}  # fmt: skip


def memory_scenario(job: Job) -> dict[str, Any]:
    """Server RSS before and after growing numbers of idle authenticated sessions."""
    engine = Engine(job)
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    idle(engine, job.settle)
    base = rss_kb(job.server_pid)
    points: list[dict[str, Any]] = []
    skipped: list[str] = []
    clients: list[Client] = []
    previous_n, previous_rss = 0, base
    for size in job.sizes:
        if size + 64 > hard:
            skipped.append(f"{size} (RLIMIT_NOFILE hard limit {hard})")
            continue
        result = login_many(engine, range(len(clients), size), job.concurrency)
        clients.extend(result.clients)
        if result.failures:
            skipped.append(f"{size}: {result.failures} logins failed: {result.first_error}")
            break
        idle(engine, job.settle)  # let the server settle (presence, buffers)
        rss = rss_kb(job.server_pid)
        n = len(clients)
        points.append(
            {
                "sessions": n,
                "rss_kb": rss,
                "kb_per_session": (rss - base) / n,
                "marginal_kb_per_session": (rss - previous_rss) / max(1, n - previous_n),
                "login_wall_s": result.wall,
            }
        )
        previous_n, previous_rss = n, rss
    engine.close_all()
    return {"tls": job.tls, "rss_base_kb": base, "points": points, "skipped": skipped}


# --- traffic users send (issue 24): bare JIDs, presence to rosters, a mix ------------


def contacts_of(index: int, count: int, contacts: int) -> list[int]:
    """The roster of account ``index`` among ``count`` accounts: its ``contacts``
    nearest neighbours on a ring (``contacts // 2`` on each side, so every
    subscription is both-way and every account has the same number)."""
    half = min(contacts // 2, (count - 1) // 2)
    return sorted({(index + d) % count for d in range(-half, half + 1) if d})


# Kinds of stanza a client sends in the user-traffic scenarios, and the letter
# that ends their marker ``T<send time ns>S<sender><kind>``.
KINDS = {"chat-bare": b"b", "chat-full": b"f", "presence": b"p", "ping": b"i"}
# The marker is at the end of a body or status, or is the id of a ping (its
# result comes back with the id); the quote is either kind a server writes.
USER_MARK = re.compile(rb"T(\d{20})S(\d{7})([bfpi])(?:</|['\"])")
FILLER = (b"Sounds good, see you at the station at half past seven; I'll bring the"
          b" tickets and some coffee for the train. ") * 4  # fmt: skip


class UserTraffic:
    """Closed loop of a mix of stanza kinds (:data:`KINDS`) over bound clients.

    Each client keeps ``inflight`` stanzas in flight; a finished one is
    replaced by a new one of a kind drawn with the mix's weights. A chat
    message or ping is finished when it arrives (the ping's result comes back
    to its sender); a presence update when all the sender's contacts got it
    (its echo to the sender itself is not counted). Every delivery counts as
    one stanza delivered and one latency sample.
    """

    def __init__(self, engine: Engine, clients: list[Client], domain: str,
                 weights: dict[str, float], body_size: int, contacts: int) -> None:  # fmt: skip
        self.engine = engine
        self.clients = clients
        self.count = count = len(clients)
        self.contacts = contacts
        kinds = [k for k, w in weights.items() if w > 0]
        self.kinds = [KINDS[k] for k in kinds]
        self.weights = [weights[k] for k in kinds]
        self.rng = random.Random(24)
        pad = FILLER[: max(0, body_size - 30)]  # the marker is 30 bytes of the body
        self.bare = [f"<message type='chat' to='u{c.index}@{domain}'><body>".encode() + pad
                     for c in clients]  # fmt: skip
        self.full = [f"<message type='chat' to='u{c.index}@{domain}/{RESOURCE}'><body>".encode()
                     + pad for c in clients]  # fmt: skip
        self.ping = f"<iq type='get' to='{domain}' id='".encode()
        self.shows = (b"<presence><show>away</show><status>", b"<presence><status>")
        self.credits = [0] * count
        self.due: set[int] = set()
        self.presence_seen = [0] * count  # deliveries of each sender's presence, mod contacts
        self.sent: Counter[bytes] = Counter()
        self.delivered: Counter[bytes] = Counter()
        self.measured: Counter[bytes] = Counter()
        self.measuring = False
        self.latencies: dict[bytes, list[int]] = {k: [] for k in KINDS.values()}
        engine.on_data = self.receive

    def expected(self) -> int:
        """Deliveries owed for what was sent so far."""
        sent = self.sent
        return sum(sent.values()) - sent[b"p"] + sent[b"p"] * self.contacts

    def receive(self, client: Client, data: bytes) -> None:
        now = time.monotonic_ns()
        if client.tail:
            data = client.tail + data
        last = 0
        me = client.index
        contacts = self.contacts
        credits, due, seen = self.credits, self.due, self.presence_seen
        delivered, measured, latencies = self.delivered, self.measured, self.latencies
        measuring = self.measuring
        for match in USER_MARK.finditer(data):
            last = match.end()
            stamp, sender, kind = match.groups()
            index = int(sender)
            if kind == b"p":
                if index == me:
                    continue  # the server's copy to the sender's own resource
                seen[index] += 1
                if seen[index] >= contacts:
                    seen[index] = 0
                    credits[index] += 1
                    due.add(index)
            else:
                credits[index] += 1
                due.add(index)
            delivered[kind] += 1
            if measuring:
                measured[kind] += 1
                latencies[kind].append(now - int(stamp))
        client.tail = data[max(last, len(data) - MARK_TAIL) :]

    def send_batch(self, sender: int, n: int, stamp: bytes) -> None:
        """``n`` stanzas from client number ``sender``, kinds drawn by weight."""
        count = self.count
        rand = self.rng.randrange
        marker = b"T" + stamp + b"S%07d" % sender
        parts = []
        for kind in self.rng.choices(self.kinds, self.weights, k=n):
            self.sent[kind] += 1
            if kind == b"p":
                parts += (self.shows[self.sent[kind] & 1], marker, b"p</status></presence>")
            elif kind == b"i":
                parts += (self.ping, marker, b"i'><ping xmlns='urn:xmpp:ping'/></iq>")
            else:
                peer = rand(count - 1) if count > 1 else 0
                if peer >= sender and count > 1:
                    peer += 1
                prefix = self.bare[peer] if kind == b"b" else self.full[peer]
                parts += (prefix, marker, kind, b"</body></message>")
        self.engine.send(self.clients[sender], b"".join(parts))

    def drain(self, seconds: float) -> float:
        start = time.perf_counter()
        while sum(self.delivered.values()) < self.expected() and \
                time.perf_counter() - start < seconds:  # fmt: skip
            self.engine.poll(0.02)
        return time.perf_counter() - start


def _ms(ordered: Sequence[int], q: float) -> float:
    return percentile(ordered, q) / 1e6


def user_traffic_scenario(job: Job) -> dict[str, Any]:
    """Closed loop of the stanza mix ``job.extra["mix"]`` (weights per kind of
    :data:`KINDS`), ``job.inflight`` in flight per client, bodies of
    ``job.extra["body_size"]`` bytes, ``job.extra["contacts"]`` contacts per
    roster (provisioned by the target before the server started)."""
    extra = job.extra
    contacts = int(extra.get("contacts", 0))
    mix = dict(extra["mix"])
    if mix.get("presence") and contacts < 1:
        raise RuntimeError("presence updates need rosters (contacts >= 1)")
    engine, clients, login = _login_clients(job)
    traffic = UserTraffic(engine, clients, job.domain, mix, int(extra.get("body_size", 120)),
                          len(contacts_of(0, len(clients), contacts)))  # fmt: skip
    settled = settle(engine, job, float(extra.get("settle", 0.5)))  # initial presence, probes
    credits, due = traffic.credits, traffic.due
    stamp = b"%020d" % time.monotonic_ns()
    for index in range(len(clients)):
        traffic.send_batch(index, job.inflight, stamp)
    start = time.perf_counter()
    measure_at, stop_at = start + job.warmup, start + job.duration
    window: CpuWindow | None = None
    t0 = t1 = start
    cpu: dict[str, float] = {}
    sent_at_t0 = 0
    while True:
        engine.poll(0.05)
        now = time.perf_counter()
        if window is None and now >= measure_at:
            window, traffic.measuring, t0 = CpuWindow(job.server_pid), True, now
            sent_at_t0 = sum(traffic.sent.values())
        if now >= stop_at:
            traffic.measuring, t1 = False, now
            assert window is not None
            cpu = window.close()
            break
        if due:
            stamp = b"%020d" % time.monotonic_ns()
            for index in due:
                n = credits[index]
                credits[index] = 0
                traffic.send_batch(index, n, stamp)
            due.clear()
    sent_in_window = sum(traffic.sent.values()) - sent_at_t0
    drain = traffic.drain(job.drain)
    engine.close_all()
    window_s = t1 - t0
    every = sorted(x for values in traffic.latencies.values() for x in values)
    names = {v: k for k, v in KINDS.items()}
    kinds = {}
    for kind, values in traffic.latencies.items():
        if traffic.sent[kind]:
            ordered = sorted(values)
            kinds[names[kind]] = {
                "sent": traffic.sent[kind],
                "delivered": traffic.delivered[kind],
                "per_s": traffic.measured[kind] / window_s,
                "p99_ms": _ms(ordered, 0.99),
            }
    delivered = sum(traffic.delivered.values())
    return {
        "clients": len(clients),
        "inflight": job.inflight,
        "contacts": traffic.contacts,
        "body_size": int(extra.get("body_size", 120)),
        "login_wall_s": login.wall,
        "window_s": window_s,
        "sent": sum(traffic.sent.values()),
        "sent_per_s": sent_in_window / window_s,
        "expected": traffic.expected(),
        "delivered": delivered,
        "lost": traffic.expected() - delivered,
        "drain_s": drain,
        "stanzas_per_s": sum(traffic.measured.values()) / window_s,
        "p50_ms": _ms(every, 0.50),
        "p99_ms": _ms(every, 0.99),
        "max_ms": (every[-1] / 1e6) if every else float("nan"),
        "kinds": kinds,
        **cpu,
        **settled,
    }
