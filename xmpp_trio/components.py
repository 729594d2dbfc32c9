"""The server's side of external components (XEP-0114) over Trio: the
``component`` listener's connections and their hosts-table entries.

Each configured component domain (``[components]``, see
:mod:`xmpp_trio.component_config`) is a
:class:`~xmpp_sansio.server.component.ComponentHost` in the router's hosts
table. A connection on a ``component`` listener is a
:class:`ComponentSession`: the sans-IO
:class:`~xmpp_sansio.stream.component.ComponentServerConnection` does the
handshake and checks every ``from``; once authenticated the session serves
its domain (the host's ``Deliver`` effects reach it through
``ComponentServer.sessions`` like a client's), and what the component sends is
routed with ``Router.route_inbound``. Output is a client's
:class:`~xmpp_trio._session.Session` output: the same ``max_output_buffer``
and ``output_stall_timeout`` bound a component that stops reading
(``policy-violation``, RFC 6120 §4.9.3.15).
"""

from __future__ import annotations

import logging
import secrets
import sqlite3
from collections.abc import Awaitable, Callable, Mapping
from contextlib import suppress
from typing import TYPE_CHECKING, Any, Protocol, cast

import trio

from xmpp_sansio.errors import RemoteProtocolError, StreamErrorCondition
from xmpp_sansio.server import Router
from xmpp_sansio.server.component import ComponentHost
from xmpp_sansio.server.hosts import HostService
from xmpp_sansio.stream.component import ComponentServerConnection
from xmpp_sansio.stream.config import ComponentServerConfig, Limits
from xmpp_sansio.stream.events import Authenticated, StanzaReceived

from ._session import CLOSE_GRACE, TRANSPORT_ERRORS, Server, Session
from ._transport import SocketTransport
from .config import ServerConfig
from .limits import peer_address

if TYPE_CHECKING:
    from .limits import ConnectionCounter


class ComponentServer(Server, Protocol):
    """What the component glue uses of :class:`~xmpp_trio.server.ComponentServer`."""

    sessions: dict[int, Session]
    connections: ConnectionCounter

    def new_id(self) -> int: ...


__all__ = [
    "ComponentSession",
    "component_entries",
    "component_handler",
    "component_hosts",
    "serve_component",
]

log = logging.getLogger("xmpp_trio.components")

_RECEIVE_SIZE = 65536


def component_hosts(
    config: ServerConfig, services: dict[str, HostService]
) -> dict[str, HostService]:
    """The service hosts with one :class:`ComponentHost` per configured
    component added; a component may not take a service's domain."""
    hosts = dict(services)
    settings = config.components.settings
    for domain in config.components.domains:
        if domain in hosts:
            raise ValueError(f"component {domain} is also a service of this server")
        hosts[domain] = ComponentHost(settings)
    return hosts


def _stream_config(config: ServerConfig) -> ComponentServerConfig:
    limits = config.limits
    return ComponentServerConfig(
        secrets=dict(config.components.secrets),
        limits=Limits(
            max_stanza_size=limits.max_stanza_size,
            max_stanza_size_preauth=limits.max_stanza_size_preauth,
            max_depth=limits.max_depth,
            negotiation_timeout=limits.negotiation_timeout,
        ),
        rng=secrets.token_bytes,
    )


class ComponentSession(Session):
    """One component connection: a client session's transport and output,
    a component stream (XEP-0114) read by :meth:`_run`."""

    #: the domain this connection serves, once its handshake succeeded
    domain: str | None = None

    async def _run(self, *, direct_tls: bool) -> None:
        server = self.server
        if not server.config.components.secrets:
            self.transport.close()  # no component configured: nothing to accept
            return
        conn = ComponentServerConnection(_stream_config(server.config))
        # Session drives any stream with the _Connection interface (send,
        # data_to_send, close, state, timers): the same output bounds apply.
        self.conn = cast(Any, conn)
        conn.start_timer(trio.current_time(), server.config.limits.negotiation_timeout)
        deadline = conn.next_deadline()
        if deadline is not None:
            server.schedule(self, deadline)
        try:
            with trio.CancelScope() as self.read_scope:
                while not conn.should_close:
                    if not await self._read_component(conn):
                        break
        finally:
            self._leave()
        with trio.move_on_after(CLOSE_GRACE):
            self.kick()
            await self.closing_flushed.wait()
        self.stop_writer()
        with trio.move_on_after(1), trio.CancelScope(shield=True), suppress(*TRANSPORT_ERRORS):
            await self.flush()

    def _host(self) -> ComponentHost | None:
        host = self.server.router.hosts.services.get(self.domain or "")
        return host if isinstance(host, ComponentHost) else None

    def _leave(self) -> None:
        host = self._host()
        if host is not None:
            host.disconnected(self.id)
            log.info("component %s (session %d) disconnected", self.domain, self.id)

    async def _read_component(self, conn: ComponentServerConnection) -> bool:
        server = self.server
        data = await self._receive()
        conn.receive_data(data)
        batch: set[Session] = set()
        server.batch = batch
        try:
            self._component_events(conn)
        except RemoteProtocolError as exc:
            log.info("component session %d (%s): stream error %s", self.id, self.peer, exc)
            server.count_stream_error(exc.condition)
        finally:
            server.end_batch(batch)
        self.push()
        if data:
            delay = self.bucket.consume(len(data), self.last_input)
            if delay > 0:
                await trio.sleep(delay)
        return bool(data)

    def _component_events(self, conn: ComponentServerConnection) -> None:
        server = self.server
        router = server.router
        while (event := conn.next_event()) is not None:
            if isinstance(event, Authenticated):
                self._authenticated(conn, event.jid.domain)
            elif isinstance(event, StanzaReceived) and self.domain is not None:
                server.metrics.stanzas_in.inc()
                try:
                    effects = router.route_inbound(event.element)
                except sqlite3.Error as exc:
                    condition = server.storage_failed(exc, f"component {self.domain}: routing")
                    effects = router.bounce(event.element, condition)
                server.apply(effects)

    def _authenticated(self, conn: ComponentServerConnection, domain: str) -> None:
        server = self.server
        host = server.router.hosts.services.get(domain)
        if not isinstance(host, ComponentHost):  # configured, but not in the table
            conn.close(StreamErrorCondition.HOST_UNKNOWN)
            server.count_stream_error(StreamErrorCondition.HOST_UNKNOWN)
            return
        outcomes = host.connected(self.id)
        if outcomes is None:
            # RFC 6120 §4.9.3.3: another connection serves the domain.
            log.info("component %s: refused a second connection (%s)", domain, self.peer)
            conn.close(StreamErrorCondition.CONFLICT, "the component is already connected")
            server.count_stream_error(StreamErrorCondition.CONFLICT)
            return
        self.domain = domain
        server.metrics.components_connected.inc()
        log.info("component %s connected (session %d, %s)", domain, self.id, self.peer)
        server.apply(server.router.drain(outcomes))


async def serve_component(server: ComponentServer, stream: trio.SocketStream) -> None:
    """Serve one connection of a ``component`` listener until it ends
    (counted against the connection limits like a client's)."""
    transport = SocketTransport.from_trio(stream)
    session_id = server.new_id()
    address = peer_address(transport.peer)
    session = ComponentSession(server, session_id, transport)
    refusal = server.connections.refusal(address)
    if refusal is not None:
        transport.close()
        return
    server.connections.add(address)
    server.sessions[session_id] = session
    try:
        await session.run(direct_tls=False)
    except TRANSPORT_ERRORS as exc:
        log.debug("component session %d: transport ended: %r", session_id, exc)
    except Exception:
        log.exception("component session %d: internal error", session_id)
        session.fail(StreamErrorCondition.INTERNAL_SERVER_ERROR)
    finally:
        if server.sessions.get(session_id) is session:
            del server.sessions[session_id]
        if session.domain is not None:
            server.metrics.components_connected.dec()
        server.connections.remove(address)
        session.stop_writer()
        session.transport.close()


def component_handler(
    server: ComponentServer, kind: str
) -> Callable[[trio.SocketStream], Awaitable[None]] | None:
    """The connection handler of a ``component`` listener (None: another kind)."""
    if kind != "component":
        return None

    async def handler(stream: trio.SocketStream) -> None:
        await serve_component(server, stream)

    return handler


def component_entries(router: Router, sessions: Mapping[int, Session]) -> list[dict[str, object]]:
    """The connected components, for the admin socket (``status``, ``sessions``)."""
    found: list[dict[str, object]] = []
    for domain, host in sorted(router.hosts.services.items()):
        if not isinstance(host, ComponentHost) or host.session is None:
            continue
        session = sessions.get(host.session)
        found.append(
            {
                "jid": domain,
                "resource": None,
                "id": host.session,
                "address": session.peer if session is not None else None,
                "tls": None,
                "sm": "component",
                "client": "component (XEP-0114)",
                "queued": len(host.queue),
            }
        )
    return found
