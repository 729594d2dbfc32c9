"""Prometheus metrics of the server, and a tiny HTTP endpoint serving them.

Each :class:`Metrics` has its own registry, so several servers (tests) can run
in one process. :func:`serve_metrics` answers ``GET /metrics`` on a Trio TCP
listener with the text exposition format; anything else gets 404 or 405.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Final

import trio
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.core import CounterMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["Metrics", "serve_metrics"]

log = logging.getLogger("xmpp_trio.metrics")

_MAX_REQUEST: Final = 8192
_REQUEST_TIMEOUT: Final = 10.0


class Count:
    """A counter for the per-stanza path: a plain integer, no lock (the server
    runs in one thread), read by the registry only when scraped."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0

    def inc(self, amount: int = 1) -> None:
        self.value += amount


class _CountCollector:
    def __init__(self, name: str, documentation: str, count: Count) -> None:
        self._name = name
        self._documentation = documentation
        self._count = count

    def collect(self) -> Iterator[CounterMetricFamily]:
        yield CounterMetricFamily(self._name, self._documentation, value=self._count.value)


class Metrics:
    """The server's counters and gauges (all names start with ``xmpp_``)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.sessions_opened = Counter(
            "xmpp_sessions_opened", "Client connections accepted", registry=r
        )
        self.sessions_closed = Counter(
            "xmpp_sessions_closed", "Client connections closed", registry=r
        )
        self.sessions = Gauge("xmpp_sessions", "Client connections open now", registry=r)
        self.components_connected = Gauge(
            "xmpp_components", "External components connected now (XEP-0114)", registry=r
        )
        self.stanzas_in = Count()
        self.stanzas_out = Count()
        r.register(
            _CountCollector("xmpp_stanzas_in", "Stanzas received from clients", self.stanzas_in)
        )
        r.register(
            _CountCollector("xmpp_stanzas_out", "Stanzas queued for clients", self.stanzas_out)
        )
        self.stream_errors = Counter(
            "xmpp_stream_errors",
            "Stream errors sent, by defined condition (RFC 6120 §4.9.3)",
            ["condition"],
            registry=r,
        )
        self.auth_failures = Counter(
            "xmpp_auth_failures", "Failed SASL authentications", registry=r
        )
        self.connections_refused = Counter(
            "xmpp_connections_refused", "Connections refused by a limit", ["limit"], registry=r
        )
        self.storage_errors = Counter(
            "xmpp_storage_errors",
            "Database errors met while serving (disk full, read-only, corrupt...)",
            registry=r,
        )
        self.storage_commits = Counter(
            "xmpp_storage_commits",
            "Transactions committing the writes of a batch of input (Persist effects)",
            registry=r,
        )

    def render(self) -> bytes:
        """The text exposition format of every metric."""
        return generate_latest(self.registry)


def _response(status: str, body: bytes, content_type: str = "text/plain; charset=utf-8") -> bytes:
    head = (
        f"HTTP/1.1 {status}\r\n"
        f"Content-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


async def _answer(metrics: Metrics, stream: trio.abc.Stream) -> None:
    request = b""
    with trio.move_on_after(_REQUEST_TIMEOUT):
        while b"\r\n\r\n" not in request and len(request) < _MAX_REQUEST:
            chunk = await stream.receive_some(4096)
            if not chunk:
                break
            request += chunk
    line = request.split(b"\r\n", 1)[0].split()
    if len(line) < 2:
        reply = _response("400 Bad Request", b"bad request\n")
    elif line[0] not in (b"GET", b"HEAD"):
        reply = _response("405 Method Not Allowed", b"only GET\n")
    elif line[1].split(b"?", 1)[0] != b"/metrics":
        reply = _response("404 Not Found", b"try /metrics\n")
    else:
        body = metrics.render()
        reply = _response("200 OK", body if line[0] == b"GET" else b"", CONTENT_TYPE_LATEST)
    with trio.move_on_after(_REQUEST_TIMEOUT):
        await stream.send_all(reply)


async def serve_metrics(
    metrics: Metrics,
    address: str,
    port: int,
    *,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``GET /metrics`` on ``address``:``port`` until cancelled;
    ``task_status.started`` receives the real port."""
    listeners = await trio.open_tcp_listeners(port, host=address)
    real_port = int(listeners[0].socket.getsockname()[1])

    async def handler(stream: trio.SocketStream) -> None:
        try:
            await _answer(metrics, stream)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            log.debug("metrics request failed: %r", exc)
        finally:
            await trio.aclose_forcefully(stream)

    log.info("serving metrics on http://%s:%d/metrics", address, real_port)
    async with trio.open_nursery() as nursery:
        await nursery.start(trio.serve_listeners, handler, listeners)
        task_status.started(real_port)
