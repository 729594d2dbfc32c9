"""The server's resource limits on the wire (issue 5): connection counts,
authentication back-off, read rate, idle timeout, the output bound for clients
that do not read, fairness under a flood, and the Prometheus endpoint.

Every wait is bounded with ``trio.fail_after``; where a time is asserted it is
the limiter's own accounting or a lower bound the limiter guarantees.
"""

from __future__ import annotations

import dataclasses
import socket
import ssl
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing
from conftest import PASSWORDS, RunningServer
from hypothesis import given, settings
from hypothesis import strategies as st
from memory import memory_client, negotiated, serving

from xmpp_sansio.jid import JID
from xmpp_sansio.stream.config import ClientConfig
from xmpp_sansio.stream.connection import ClientConnection
from xmpp_sansio.testing import seeded_rng
from xmpp_trio.client import (
    AuthenticationError,
    Client,
    _negotiate,
    open_client,
)
from xmpp_trio.config import ConfigError, MetricsConfig, ServerConfig, load_config
from xmpp_trio.limits import AuthBackoff, ConnectionCounter, LogLimiter, TokenBucket, loggable
from xmpp_trio.server import BoundListener, XMPPServer, run_server

WAIT = 15.0
BODY = "{jabber:client}body"
HEADER = (
    b"<?xml version='1.0'?><stream:stream to='localhost' version='1.0' "
    b"xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>"
)


def chat(to: str, body: str) -> ET.Element:
    msg = ET.Element("{jabber:client}message", {"to": to, "type": "chat"})
    ET.SubElement(msg, BODY).text = body
    return msg


def with_limits(config: ServerConfig, **changes: Any) -> ServerConfig:
    return dataclasses.replace(config, limits=dataclasses.replace(config.limits, **changes))


@dataclasses.dataclass
class Started:
    port: int
    server: XMPPServer
    bound: list[BoundListener]
    ctx: ssl.SSLContext

    def options(self) -> dict[str, Any]:
        return {"host": "127.0.0.1", "port": self.port, "ssl_context": self.ctx}


async def start(
    nursery: trio.Nursery, config: ServerConfig, server: RunningServer | None = None
) -> Started:
    bound: list[BoundListener] = await nursery.start(run_server, config)
    listener = next(b for b in bound if b.kind == "c2s-starttls")
    assert listener.server is not None
    cafile = config.tls.cert
    assert cafile is not None
    return Started(listener.port, listener.server, bound, _ctx(config))


def _ctx(config: ServerConfig) -> ssl.SSLContext:
    # The fixture's certificate is issued by the session CA; trust that CA via the
    # certificate chain written next to it by the ``server_config`` fixture.
    ca_file = config.data_dir.parent / "ca.pem"
    return ssl.create_default_context(cafile=str(ca_file))


@pytest.fixture
def config(server_config: ServerConfig, ca: Any) -> ServerConfig:
    ca.cert_pem.write_to_path(str(server_config.data_dir.parent / "ca.pem"))
    return server_config


async def read_until(stream: trio.abc.Stream, marker: bytes) -> bytes:
    received = b""
    with trio.fail_after(WAIT):
        while marker not in received:
            chunk = await stream.receive_some(65536)
            if not chunk:
                break
            received += chunk
    return received


@asynccontextmanager
async def silent_client(
    started: Started, local: str, *, sm: bool, rcvbuf: int = 4096
) -> AsyncIterator[tuple[ClientConnection, trio.abc.Stream]]:
    """A client that negotiates with our client code, then never reads again
    (no reader task); a small receive buffer makes the kernel hold little."""
    tcp = await trio.open_tcp_stream("127.0.0.1", started.port)
    tcp.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    conn = ClientConnection(
        ClientConfig(
            rng=seeded_rng(0),
            jid=JID.parse(f"{local}@localhost/silent"),
            password=PASSWORDS[local],
            stream_management=sm,
        )
    )
    with trio.fail_after(WAIT):
        negotiated = await _negotiate(conn, tcp, started.ctx, "localhost")
    try:
        yield conn, negotiated.stream
    finally:
        await trio.aclose_forcefully(negotiated.stream)


async def wait_for(predicate: Any, timeout: float = WAIT) -> None:
    with trio.fail_after(timeout):
        while not predicate():
            await trio.sleep(0.01)


# -- configuration ---------------------------------------------------------------------


def test_limits_and_metrics_load_from_toml(tmp_path: Path) -> None:
    path = tmp_path / "xmpp.toml"
    path.write_text(
        "[limits]\nmax_connections = 7\nmax_connections_per_ip = 3\n"
        "auth_failures_before_backoff = 2\nmax_read_rate = 5000\nidle_timeout = 30\n"
        "max_output_buffer = 100000\nmax_unacked_connected = 50\n"
        '[metrics]\nenabled = true\naddress = "::1"\nport = 9100\n'
    )
    config = load_config(path)
    assert config.limits.max_connections == 7
    assert config.limits.max_connections_per_ip == 3
    assert config.limits.auth_failures_before_backoff == 2
    assert config.limits.max_read_rate == 5000
    assert config.limits.idle_timeout == 30.0
    assert config.limits.max_output_buffer == 100000
    assert config.limits.max_unacked_connected == 50
    assert config.metrics == MetricsConfig(enabled=True, address="::1", port=9100)
    defaults = load_config(None)
    assert defaults.metrics.enabled is False
    assert (defaults.limits.max_connections, defaults.limits.max_connections_per_ip) == (10000, 50)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("[limits]\nmax_read_rate = 10", "limits.max_read_rate"),
        ("[limits]\nidle_timeout = 0", "limits.idle_timeout"),
        ("[limits]\nmax_output_buffer = 10", "limits.max_output_buffer"),
        ("[metrics]\nport = 70000", "metrics.port"),
        ("[metrics]\nenable = true", "metrics.enable"),
    ],
)
def test_bad_limits_name_the_key(tmp_path: Path, text: str, key: str) -> None:
    path = tmp_path / "xmpp.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.key == key


# -- the limiters on their own -----------------------------------------------------------


def test_token_bucket_accounting() -> None:
    bucket = TokenBucket(rate=1000, burst=2000)
    assert bucket.consume(2000, now=0.0) == 0.0  # the burst is free
    assert bucket.consume(500, now=0.0) == pytest.approx(0.5)  # in debt: wait
    assert bucket.consume(0, now=1.5) == 0.0  # debt paid, 1000 tokens back
    assert bucket.tokens == pytest.approx(1000)
    assert bucket.consume(10_000, now=100.0) == pytest.approx(8.0)  # refills to 2000 only
    assert bucket.waited == pytest.approx(8.5)
    assert bucket.consumed == 12_500


async def test_token_bucket_throttles_to_its_rate(autojump_clock: trio.testing.MockClock) -> None:
    bucket = TokenBucket(rate=10_000, burst=20_000)
    start = trio.current_time()
    for _ in range(100):
        await bucket.throttle(1000)  # 100 kB at 10 kB/s, 20 kB of it free
    assert trio.current_time() - start == pytest.approx(8.0, abs=0.01)


def test_connection_counter() -> None:
    counter = ConnectionCounter(max_total=3, max_per_address=2)
    counter.add("a")
    counter.add("a")
    assert counter.refusal("a") == "address"
    assert counter.refusal("b") is None
    counter.add("b")
    assert counter.refusal("c") == "total"
    counter.remove("a")
    assert counter.refusal("a") is None
    counter.remove("a")
    counter.remove("b")
    assert counter.total == 0 and counter.per_address == {}


def test_auth_backoff_doubles_up_to_the_maximum() -> None:
    backoff = AuthBackoff(free=2, initial=1.0, maximum=8.0)
    assert backoff.failed("k", 1000.0) == 0.0
    assert backoff.failed("k", 1000.0) == 0.0
    assert backoff.blocked_for("k", 1000.0) == 0.0
    assert len(backoff) == 1  # remembered, though not blocked yet
    assert [backoff.failed("k", 1000.0) for _ in range(5)] == [1.0, 2.0, 4.0, 8.0, 8.0]
    assert backoff.blocked_for("k", 1003.0) == pytest.approx(5.0)
    assert backoff.blocked_for("k", 1015.0) == 0.0 and len(backoff) == 1
    assert backoff.blocked_for("k", 1100.0) == 0.0 and len(backoff) == 0  # forgotten
    backoff.failed("k", 0.0)
    backoff.succeeded("k")
    assert backoff.blocked_for("k", 0.0) == 0.0


def test_auth_backoff_sweeps_stale_records_without_a_lookup() -> None:
    """Item 13: a record nobody looks up again is still forgotten (the next
    failure of any key sweeps stale ones from the oldest)."""
    backoff = AuthBackoff(free=5, initial=1.0, maximum=10.0)
    for n in range(100):
        backoff.failed(f"account:user{n}", 0.0)
    assert len(backoff) == 100
    backoff.failed("account:late", 11.0)  # everything before is stale now
    assert len(backoff) == 1


def test_auth_backoff_table_is_capped_dropping_the_oldest() -> None:
    backoff = AuthBackoff(free=1, maximum=300.0, max_entries=3)
    for n in range(5):
        backoff.failed(f"k{n}", float(n))
    assert len(backoff) == 3
    assert [backoff.has_failures(f"k{n}", 5.0) for n in range(5)] == [
        False,
        False,
        True,
        True,
        True,
    ]
    backoff.failed("k2", 6.0)  # failing again makes it the newest
    backoff.failed("k5", 7.0)
    assert backoff.has_failures("k2", 7.0) and not backoff.has_failures("k3", 7.0)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 20), st.floats(0, 50)), max_size=60),
    st.integers(1, 8),
    st.integers(1, 4),
)
def test_auth_backoff_stays_bounded_and_never_blocks_below_free(
    failures: list[tuple[int, float]], max_entries: int, free: int
) -> None:
    backoff = AuthBackoff(free=free, initial=1.0, maximum=30.0, max_entries=max_entries)
    now = 0.0
    counts: dict[int, int] = {}
    for key, step in failures:
        now += step
        backoff.failed(f"k{key}", now)
        counts[key] = counts.get(key, 0) + 1
        assert len(backoff) <= max_entries
        assert 0.0 <= backoff.blocked_for(f"k{key}", now) <= 30.0
        if counts[key] <= free:
            assert backoff.blocked_for(f"k{key}", now) == 0.0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("juliet", "'juliet'"),
        ("a\nforged line\x1b[31m", "'a\\nforged line\\x1b[31m'"),
        ("x" * 70, "'" + "x" * 64 + "'...(+6 characters)"),
        (None, "None"),
    ],
)
def test_loggable_escapes_and_truncates(text: str | None, expected: str) -> None:
    assert loggable(text) == expected


def test_log_limiter_allows_a_burst_then_the_rate() -> None:
    limiter = LogLimiter(per_minute=3)
    assert [limiter.allow(0.0) for _ in range(5)] == [True, True, True, False, False]
    assert limiter.take_suppressed() == 2 and limiter.take_suppressed() == 0
    assert limiter.allow(20.0) and not limiter.allow(20.0)


def test_new_auth_limits_load_and_are_validated(tmp_path: Path) -> None:
    path = tmp_path / "xmpp.toml"
    path.write_text(
        "[limits]\nauth_backoff_max_entries = 50\nauth_log_lines_per_minute = 10\n"
        "password_changes_per_hour = 2\n"
    )
    limits = load_config(path).limits
    assert (
        limits.auth_backoff_max_entries,
        limits.auth_log_lines_per_minute,
        limits.password_changes_per_hour,
    ) == (50, 10, 2)
    defaults = load_config(None).limits
    assert (
        defaults.auth_backoff_max_entries,
        defaults.auth_log_lines_per_minute,
        defaults.password_changes_per_hour,
    ) == (100_000, 60, 5)
    for key in (
        "auth_backoff_max_entries",
        "auth_log_lines_per_minute",
        "password_changes_per_hour",
    ):
        path.write_text(f"[limits]\n{key} = 0\n")
        with pytest.raises(ConfigError, match=f"limits\\.{key}"):
            load_config(path)


# -- 1. connections per address and in total ------------------------------------------------


@pytest.mark.parametrize(
    ("limit", "condition"),
    [
        ("max_connections_per_ip", b"<policy-violation"),
        ("max_connections", b"<resource-constraint"),
    ],
)
async def test_connections_over_the_limit_get_a_stream_error(
    config: ServerConfig, nursery: trio.Nursery, limit: str, condition: bytes
) -> None:
    started = await start(nursery, with_limits(config, **{limit: 2}))
    first = await trio.open_tcp_stream("127.0.0.1", started.port)
    second = await trio.open_tcp_stream("127.0.0.1", started.port)
    await wait_for(lambda: started.server.connections.total == 2)
    third = await trio.open_tcp_stream("127.0.0.1", started.port)
    received = await read_until(third, b"</stream:stream>")
    assert received.startswith(b"<?xml") and b"<stream:stream" in received
    assert condition in received and received.endswith(b"</stream:stream>")
    with trio.fail_after(WAIT):  # and the connection is closed
        while await third.receive_some(65536):
            pass
    # The first two are served; once one leaves, a new one is too.
    await first.send_all(HEADER)
    assert b"<stream:features" in await read_until(first, b"</stream:features>")
    await second.aclose()
    await wait_for(lambda: started.server.connections.total == 1)
    fourth = await trio.open_tcp_stream("127.0.0.1", started.port)
    await fourth.send_all(HEADER)
    assert b"<stream:features" in await read_until(fourth, b"</stream:features>")
    for stream in (first, third, fourth):
        await stream.aclose()


# -- 3. authentication back-off -----------------------------------------------------------


async def test_failed_logins_back_off_across_connections(
    config: ServerConfig, autojump_clock: trio.testing.MockClock
) -> None:
    async with serving(with_limits(config, auth_failures_before_backoff=2)) as server:
        # In memory, every connection comes from its own address: one peer
        # address for all, as from one client reconnecting.
        def login(password: str) -> Any:
            return memory_client(server, "juliet@localhost", password, peer="10.0.0.1:5222")

        for _ in range(2):  # the free attempts: plain not-authorized
            with pytest.raises(AuthenticationError) as info:
                async with login("wrong"):
                    pass
            assert getattr(info.value, "condition", None) == "not-authorized"
        # The third failure starts a back-off of a second...
        with pytest.raises(AuthenticationError):
            async with login("wrong"):
                pass
        # ...during which even the right password is refused, on a new connection,
        # with temporary-auth-failure (RFC 6120 §6.5.12), not a stream error.
        with pytest.raises(AuthenticationError) as refused:
            async with login(PASSWORDS["juliet"]):
                pass
        assert refused.value.condition == "temporary-auth-failure"
        errors = server.metrics.stream_errors
        assert errors.labels(condition="policy-violation")._value.get() == 0
        assert server.metrics.auth_failures._value.get() == 4
        await trio.sleep(1.1)  # the back-off (1 s) is over (virtual time)
        async with login(PASSWORDS["juliet"]) as c:
            assert c.jid.local == "juliet"


# -- 4. read rate ----------------------------------------------------------------------------


async def test_fast_sender_is_throttled_not_disconnected(
    config: ServerConfig, nursery: trio.Nursery
) -> None:
    rate = 20_000
    started = await start(nursery, with_limits(config, max_read_rate=rate))
    count, body = 60, "x" * 1000  # about 70 kB: 30 kB over the 40 kB burst
    async with (
        open_client("juliet@localhost/in", PASSWORDS["juliet"], **started.options()) as juliet,
        open_client("romeo@localhost/out", PASSWORDS["romeo"], **started.options()) as romeo,
    ):
        session = next(
            s for s in started.server.sessions.values() if s.conn and s.conn.jid == romeo.jid
        )
        before = session.bucket.consumed
        start_time = trio.current_time()
        for i in range(count):
            await romeo.send(chat("juliet@localhost/in", f"{i} {body}"))
        got = []
        with trio.fail_after(WAIT):
            async for stanza in juliet:
                if stanza.tag == "{jabber:client}message":
                    got.append(stanza.findtext(BODY, "").split()[0])
                    if len(got) == count:
                        break
        elapsed = trio.current_time() - start_time
    assert got == [str(i) for i in range(count)]  # everything, in order
    sent = session.bucket.consumed - before
    assert sent > count * 1000
    # The bucket made the reader wait for what exceeded the burst, and the
    # messages could not arrive faster than that. (How much of that time the
    # reader spent waiting depends on how fast the machine parses: on a loaded
    # one the bucket refills while the reader works, so only "it waited" and
    # the rate seen by the recipient are machine-independent.)
    expected = (sent - 2 * rate) / rate
    assert expected > 0.5
    assert session.bucket.waited > 0
    assert elapsed >= expected * 0.9


# -- 5. idle timeout ------------------------------------------------------------------------


async def test_idle_client_is_pinged_then_timed_out(
    config: ServerConfig, autojump_clock: trio.testing.MockClock
) -> None:
    async with serving(with_limits(config, idle_timeout=1.0)) as server:
        _conn, stream = await negotiated(
            server, "juliet@localhost/silent", PASSWORDS["juliet"], stream_management=False
        )
        received = await read_until(stream, b"</stream:stream>")
    assert b"urn:xmpp:ping" in received and b'type="get"' in received.replace(b"'", b'"')
    assert b"<connection-timeout" in received
    assert received.index(b"urn:xmpp:ping") < received.index(b"<connection-timeout")


async def test_client_answering_pings_stays_connected(
    config: ServerConfig, autojump_clock: trio.testing.MockClock
) -> None:
    async with (
        serving(with_limits(config, idle_timeout=0.6)) as server,
        memory_client(server, "juliet@localhost", PASSWORDS["juliet"]) as c,
    ):
        await trio.sleep(2.0)  # three idle timeouts (virtual time); our client answers the pings
        assert not c.closed.is_set()
        ping = ET.Element("{jabber:client}iq", {"type": "get", "to": "localhost"})
        ET.SubElement(ping, "{urn:xmpp:ping}ping")
        assert (await c.request(ping, timeout=WAIT)).get("type") == "result"


async def test_connected_sm_client_that_never_acks_is_closed_at_the_bound(
    config: ServerConfig, nursery: trio.Nursery
) -> None:
    """``max_unacked_connected``: a live XEP-0198 stream whose client leaves more
    stanzas unacknowledged gets ``resource-constraint`` (XEP-0198 §4)."""
    started = await start(nursery, with_limits(config, max_unacked_connected=3, unacked_burst=1))
    async with (
        silent_client(started, "juliet", sm=True) as (_conn, stream),
        open_client("romeo@localhost", PASSWORDS["romeo"], **started.options()) as romeo,
    ):
        for i in range(5):
            await romeo.send(chat("juliet@localhost/silent", f"unacked {i}"))
        received = await read_until(stream, b"</stream:stream>")
    assert b"<resource-constraint" in received
    assert b"unacked 3" in received and b"unacked 4" not in received


async def test_connected_sm_client_holding_too_many_unacked_bytes_is_closed(
    config: ServerConfig, nursery: trio.Nursery
) -> None:
    """``max_unacked_bytes``: the same bound in bytes, for a client that leaves
    a few large stanzas unacknowledged (XEP-0198 §4)."""
    started = await start(nursery, with_limits(config, max_unacked_bytes=65536, unacked_burst=1))
    async with (
        silent_client(started, "juliet", sm=True, rcvbuf=1 << 20) as (_conn, stream),
        open_client("romeo@localhost", PASSWORDS["romeo"], **started.options()) as romeo,
    ):
        for i in range(4):
            await romeo.send(chat("juliet@localhost/silent", f"big {i} " + "b" * 30000))
        received = await read_until(stream, b"</stream:stream>")
    assert b"<resource-constraint" in received
    assert b"big 2 " in received and b"big 3 " not in received


# -- 6. output bound for clients that do not read -------------------------------------------


async def _flood(sender: Client, to: str, count: int, size: int) -> None:
    body = "y" * size
    for i in range(count):
        await sender.send(chat(to, f"{i} {body}"))


@pytest.mark.parametrize("sm", [False, True], ids=["closed", "sm-detached"])
async def test_output_to_a_client_that_does_not_read_is_bounded(
    config: ServerConfig, nursery: trio.Nursery, sm: bool
) -> None:
    bound = 65536
    # output_stall_timeout 0: over the bound is over, as soon as the socket is
    # full (test_offline_delivery covers the stall time given to a reader).
    started = await start(
        nursery,
        with_limits(
            config, max_output_buffer=bound, max_read_rate=10_000_000, output_stall_timeout=0
        ),
    )
    server = started.server
    async with silent_client(started, "juliet", sm=sm) as (conn, _stream):
        victim = next(s for s in server.sessions.values() if s.conn and s.conn.jid == conn.jid)
        peak = 0

        async def watch() -> None:
            nonlocal peak
            while True:
                peak = max(peak, len(victim.pending))
                await trio.sleep(0)

        async with (
            open_client("romeo@localhost", PASSWORDS["romeo"], **started.options()) as romeo,
            trio.open_nursery() as watcher,
        ):
            watcher.start_soon(watch)
            with trio.fail_after(WAIT * 2):
                # Up to 32 MB, far beyond any socket buffers; it stops early.
                for _ in range(64):
                    await _flood(romeo, str(conn.jid), 64, 8000)
                    if victim.overflowed:
                        break
            watcher.cancel_scope.cancel()
        assert victim.overflowed
        assert peak <= bound + 65536  # the bound plus at most one stanza's bytes
        await wait_for(lambda: victim not in server.sessions.values())
        if sm:  # kept for resumption (XEP-0198), its stanzas with it
            await wait_for(lambda: len(server.manager.detached()) == 1)
        errors = server.metrics.stream_errors.labels(condition="policy-violation")
        assert errors._value.get() == (0 if sm else 1)


# -- 7. fairness under a flood ------------------------------------------------------------


async def test_flood_does_not_starve_other_clients(
    config: ServerConfig, nursery: trio.Nursery
) -> None:
    started = await start(nursery, config)
    async with (
        open_client("juliet@localhost/a", PASSWORDS["juliet"], **started.options()) as juliet,
        open_client("juliet@localhost/flood", PASSWORDS["juliet"], **started.options()) as sink,
        open_client("romeo@localhost/a", PASSWORDS["romeo"], **started.options()) as romeo,
        open_client("romeo@localhost/flood", PASSWORDS["romeo"], **started.options()) as flood,
        trio.open_nursery() as tasks,
    ):
        flooding = trio.Event()

        async def drain() -> None:
            async for _ in sink:
                pass

        async def flooder() -> None:
            flooding.set()
            while True:
                await _flood(flood, "juliet@localhost/flood", 50, 500)

        tasks.start_soon(drain)
        tasks.start_soon(flooder)
        await flooding.wait()
        metrics = started.server.metrics
        await wait_for(lambda: metrics.stanzas_in.value >= 200)  # the flood flows
        worst = 0.0
        for i in range(20):
            sent = trio.current_time()
            await romeo.send(chat("juliet@localhost/a", f"ping {i}"))
            with trio.fail_after(WAIT):
                async for stanza in juliet:
                    if stanza.findtext(BODY) == f"ping {i}":
                        break
            worst = max(worst, trio.current_time() - sent)
        tasks.cancel_scope.cancel()
        flooded = metrics.stanzas_in.value
    assert worst < 2.0, f"a message took {worst:.2f} s under the flood"
    assert flooded > 200 + 20  # and went on while the others talked


# -- 8. metrics ---------------------------------------------------------------------------


async def http_get(port: int, path: str) -> tuple[int, str]:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    await stream.send_all(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    data = b""
    with trio.fail_after(WAIT):
        while chunk := await stream.receive_some(65536):
            data += chunk
    await stream.aclose()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body.decode()


def sample(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in the metrics")


async def test_metrics_endpoint_counts_logins_and_messages(
    config: ServerConfig, nursery: trio.Nursery
) -> None:
    config = dataclasses.replace(config, metrics=MetricsConfig(enabled=True, port=0))
    started = await start(nursery, config)
    port = next(b.port for b in started.bound if b.kind == "metrics")
    status, before = await http_get(port, "/metrics")
    assert status == 200
    assert sample(before, "xmpp_sessions") == 0
    with pytest.raises(AuthenticationError):
        async with open_client("romeo@localhost", "wrong", **started.options()):
            pass
    async with (
        open_client("juliet@localhost/a", PASSWORDS["juliet"], **started.options()) as juliet,
        open_client("romeo@localhost/a", PASSWORDS["romeo"], **started.options()) as romeo,
    ):
        await romeo.send(chat("juliet@localhost/a", "hello"))
        with trio.fail_after(WAIT):
            async for stanza in juliet:
                if stanza.findtext(BODY) == "hello":
                    break
        _, during = await http_get(port, "/metrics")
    assert sample(during, "xmpp_sessions") == 2
    assert sample(during, "xmpp_sessions_opened_total") == 3
    assert sample(during, "xmpp_stanzas_in_total") >= 1
    assert sample(during, "xmpp_stanzas_out_total") >= 1
    assert sample(during, "xmpp_auth_failures_total") == 1
    await wait_for(lambda: started.server.metrics.sessions._value.get() == 0)
    _, after = await http_get(port, "/metrics")
    assert sample(after, "xmpp_sessions_closed_total") == 3
    assert (await http_get(port, "/other"))[0] == 404
