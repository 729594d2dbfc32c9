"""The real server over in-memory transports, for tests under Trio's
``MockClock`` (``autojump_clock``): no socket is involved, so the clock may
jump to the next timer whenever every task waits, and a test of a timer
(idle, resumption, negotiation) takes no wall-clock time.

TLS is real (OpenSSL over memory BIOs on the server side, ``trio.SSLStream``
on the client side)."""

from __future__ import annotations

import functools
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio

from xmpp_sansio.jid import JID
from xmpp_sansio.sm import SMState
from xmpp_sansio.stream.config import ClientConfig
from xmpp_sansio.stream.connection import ClientConnection
from xmpp_sansio.testing import seeded_rng
from xmpp_trio._memory_transport import MemoryStream, memory_transport_pair
from xmpp_trio.client import Client, _negotiate, _Negotiated
from xmpp_trio.config import ServerConfig
from xmpp_trio.server import XMPPServer, open_server

__all__ = ["client_context", "connect", "memory_client", "negotiated", "serving"]


def client_context(config: ServerConfig) -> ssl.SSLContext:
    """Trust the test CA (written next to the data directory)."""
    return ssl.create_default_context(cafile=str(config.data_dir.parent / "ca.pem"))


@asynccontextmanager
async def serving(config: ServerConfig) -> AsyncIterator[XMPPServer]:
    """The server, with its timers running, and no listener."""
    async with open_server(config) as server:
        yield server


_peers = iter(range(1, 1 << 30))


def connect(
    server: XMPPServer,
    *,
    direct_tls: bool = False,
    peer: str | None = None,
    capacity: int | None = None,
) -> MemoryStream:
    """A new client connection to ``server`` (from ``peer``, by default a new
    address each time; the server may queue ``capacity`` unread bytes);
    returns the client's end."""
    if peer is None:
        peer = f"10.0.{next(_peers) % 250}.{next(_peers) % 250 + 1}:5222"
    transport, stream = memory_transport_pair(peer, capacity=capacity)
    assert server.nursery is not None
    server.nursery.start_soon(functools.partial(server.serve, transport, direct_tls=direct_tls))
    return stream


async def negotiated(
    server: XMPPServer,
    jid: str,
    password: str,
    *,
    stream_management: bool = True,
    resume: SMState | None = None,
    peer: str | None = None,
    capacity: int | None = None,
) -> tuple[ClientConnection, trio.abc.Stream]:
    """Log in over a new in-memory connection; the client reads nothing more
    (with a ``capacity``, the server's output to it soon waits)."""
    conn, result = await _login(server, jid, password, stream_management, resume, peer, capacity)
    return conn, result.stream


async def _login(
    server: XMPPServer,
    jid: str,
    password: str,
    stream_management: bool,
    resume: SMState | None,
    peer: str | None,
    capacity: int | None = None,
) -> tuple[ClientConnection, _Negotiated]:
    conn = ClientConnection(
        ClientConfig(
            rng=seeded_rng(0),
            jid=JID.parse(jid),
            password=password,
            stream_management=stream_management,
        ),
        sm_state=resume,
    )
    stream = connect(server, peer=peer, capacity=capacity)
    return conn, await _negotiate(conn, stream, client_context(server.config), "localhost")


@asynccontextmanager
async def memory_client(
    server: XMPPServer,
    jid: str,
    password: str,
    *,
    stream_management: bool = True,
    resume: SMState | None = None,
    peer: str | None = None,
) -> AsyncIterator[Client]:
    """Our client (which answers pings) over an in-memory connection."""
    conn, result = await _login(server, jid, password, stream_management, resume, peer)
    client = Client(conn, result.stream, result)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(client._reader)
        try:
            yield client
        finally:
            with trio.CancelScope(shield=True):
                await client.aclose()
            nursery.cancel_scope.cancel()
