"""The bundled XMPP server: Trio sockets and TLS around xmpp_sansio.

Each TCP connection gets one :class:`_Session`: a reader task that feeds the
:class:`~xmpp_sansio.stream.connection.ServerConnection` and acts on its
events, and a writer task that flushes what the connection queued, so writes
to one client are batched and never block whoever produced them. Routing
decisions are made by the sans-IO :class:`~xmpp_sansio.server.router.Router`;
this module only carries out its effects and answers credential lookups from
SQLite.
"""

from __future__ import annotations

import logging
import signal
import sqlite3
import ssl
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio

from xmpp_sansio.errors import RemoteProtocolError, StanzaErrorCondition, StreamErrorCondition
from xmpp_sansio.jid import JID, InvalidJID
from xmpp_sansio.server.router import Deliver, Disconnect, Effect, Router
from xmpp_sansio.stream.config import Limits
from xmpp_sansio.stream.config import ServerConfig as StreamConfig
from xmpp_sansio.stream.connection import ServerConnection
from xmpp_sansio.stream.events import (
    Authenticated,
    AuthenticationFailed,
    ConnectionClosed,
    CredentialsRequested,
    RegistrationRequested,
    ResourceBound,
    StanzaReceived,
    StreamClosed,
    StreamErrorReceived,
    TLSRequested,
)

from . import _tls
from .certs import ensure_certificate, load_server_ssl_context
from .config import ServerConfig
from .services import build_services, open_database
from .storage import AccountExists, AccountStore

__all__ = ["BoundListener", "XMPPServer", "run_server"]

log = logging.getLogger("xmpp_trio.server")

_RECEIVE_SIZE = 65536
_TRANSPORT_ERRORS = (trio.BrokenResourceError, trio.ClosedResourceError, ssl.SSLError, OSError)
_CLOSE_GRACE = 5.0


@dataclass(frozen=True, slots=True)
class BoundListener:
    """Where a listener actually listens (the port is real even if 0 was asked),
    and the router behind it (for tests and embedding)."""

    kind: str
    address: str
    port: int
    router: Router


class _Session:
    """One client connection: the sans-IO connection plus its transport."""

    def __init__(self, server: XMPPServer, session_id: int, stream: trio.abc.Stream, peer: str):
        self.server = server
        self.id = session_id
        self.stream = stream
        self.peer = peer
        self.conn: ServerConnection | None = None
        self._wakeup = trio.Event()
        self._send_lock = trio.Lock()
        self.bound = False

    def kick(self) -> None:
        """Wake the writer: the connection has queued output."""
        self._wakeup.set()

    def deliver(self, element: Any) -> None:
        conn = self.conn
        if conn is None:
            return
        try:
            conn.send(element)
        except Exception:  # the stream is closing: nothing to deliver to
            return
        self.kick()

    async def flush(self) -> None:
        assert self.conn is not None
        async with self._send_lock:
            data = self.conn.data_to_send()
            if data:
                await self.stream.send_all(data)

    async def writer(self) -> None:
        assert self.conn is not None
        while True:
            await self._wakeup.wait()
            self._wakeup = trio.Event()
            try:
                await self.flush()
            except _TRANSPORT_ERRORS:
                # The peer is gone; the reader sees EOF and ends the session.
                await trio.aclose_forcefully(self.stream)
                return
            if self.conn.should_close:
                return


class XMPPServer:
    """Server state shared by all sessions: config, storage, router, sessions."""

    def __init__(
        self,
        config: ServerConfig,
        store: AccountStore,
        ssl_context: ssl.SSLContext,
        certificate_der: bytes | None,
        db: sqlite3.Connection,
    ) -> None:
        self.config = config
        self.store = store
        self.ssl_context = ssl_context
        self.tls_info = _tls.server_tls_info(certificate_der)
        self.services = build_services(config, store, db)
        self.router = Router(
            config.domains, account_exists=self._account_exists, services=self.services.services
        )
        limits = config.limits
        self.stream_config = StreamConfig(
            domains=frozenset(config.domains),
            tls_available=True,
            require_tls=config.require_tls,
            allow_plain=config.allow_plain,
            allow_anonymous=config.allow_anonymous,
            allow_registration=config.allow_registration,
            post_auth_features=self.services.post_auth_features(),
            limits=Limits(
                max_stanza_size=limits.max_stanza_size,
                max_stanza_size_preauth=limits.max_stanza_size_preauth,
                max_depth=limits.max_depth,
                negotiation_timeout=limits.negotiation_timeout,
            ),
        )
        self.sessions: dict[int, _Session] = {}
        self._registrations: dict[str, list[float]] = {}  # peer address -> times
        self._next_id = 1
        self._shutting_down = False

    def _account_exists(self, local: str, domain: str) -> bool:
        return self.store.exists(local, domain)

    def apply(self, effects: Sequence[Effect]) -> None:
        """Carry out the router's effects."""
        for effect in effects:
            session = self.sessions.get(effect.session)
            if session is None:
                continue
            if isinstance(effect, Deliver):
                session.deliver(effect.element)
            elif isinstance(effect, Disconnect) and session.conn is not None:
                session.conn.close(effect.condition)
                session.kick()

    async def handle(self, stream: trio.abc.Stream, *, direct_tls: bool) -> None:
        """Serve one accepted TCP connection until it ends."""
        session_id = self._next_id
        self._next_id += 1
        peer = _peer_name(stream)
        session = _Session(self, session_id, stream, peer)
        self.sessions[session_id] = session
        log.debug("session %d: connection from %s", session_id, peer)
        try:
            await self._run_session(session, direct_tls=direct_tls)
        except _TRANSPORT_ERRORS as exc:
            log.debug("session %d: transport ended: %r", session_id, exc)
        except Exception:
            # A bug must cost one connection, never the server.
            log.exception("session %d: internal error", session_id)
        finally:
            del self.sessions[session_id]
            if session.bound:
                self.apply(self.router.unbind(session_id))
            with trio.CancelScope(shield=True), trio.move_on_after(1):
                await trio.aclose_forcefully(session.stream)
            log.debug("session %d: closed", session_id)

    async def _run_session(self, session: _Session, *, direct_tls: bool) -> None:
        if direct_tls:
            tls = trio.SSLStream(session.stream, self.ssl_context, server_side=True)
            handshaken = False
            with trio.move_on_after(self.config.limits.negotiation_timeout):
                await tls.do_handshake()
                handshaken = True
            if not handshaken:  # timed out: nothing can be said, in TLS or not
                return
            session.stream = tls
        conn = ServerConnection(
            self.stream_config,
            tls_active=direct_tls,
            tls_info=self.tls_info if direct_tls else None,
        )
        session.conn = conn
        conn.start_timer(trio.current_time(), self.config.limits.negotiation_timeout)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(session.writer)
            await self._read_loop(session, conn)
            # Let the writer flush the close, then give up on the peer.
            with trio.move_on_after(_CLOSE_GRACE):
                session.kick()
                while not conn.should_close:
                    await self._read_once(session, conn)
            nursery.cancel_scope.cancel()
            with trio.move_on_after(1), trio.CancelScope(shield=True), suppress(*_TRANSPORT_ERRORS):
                await session.flush()

    async def _read_loop(self, session: _Session, conn: ServerConnection) -> None:
        while not conn.should_close:
            if not await self._read_once(session, conn):
                return

    async def _read_once(self, session: _Session, conn: ServerConnection) -> bool:
        deadline = conn.next_deadline()
        data: bytes | bytearray | None = None
        with trio.move_on_at(float("inf") if deadline is None else deadline):
            try:
                data = await session.stream.receive_some(_RECEIVE_SIZE)
            except _TRANSPORT_ERRORS as exc:
                log.debug("session %d: transport ended: %r", session.id, exc)
                data = b""
        if data is None:  # the deadline passed
            conn.handle_timer(trio.current_time())
            log.info("session %d (%s): negotiation timed out", session.id, session.peer)
            session.kick()
            return not conn.should_close
        conn.receive_data(data)
        try:
            await self._handle_events(session, conn)
        except RemoteProtocolError as exc:
            log.info("session %d (%s): stream error %s", session.id, session.peer, exc)
        session.kick()
        return bool(data)

    async def _handle_events(self, session: _Session, conn: ServerConnection) -> None:
        while (event := conn.next_event()) is not None:
            if isinstance(event, StanzaReceived):
                self.apply(self.router.route(session.id, event.element))
            elif isinstance(event, CredentialsRequested):
                conn.provide_credentials(self._credentials(conn, event))
            elif isinstance(event, RegistrationRequested):
                conn.registration_result(await self._register(session, conn, event))
            elif isinstance(event, TLSRequested):
                await session.flush()
                tls = trio.SSLStream(session.stream, self.ssl_context, server_side=True)
                await tls.do_handshake()
                session.stream = tls
                conn.tls_established(self.tls_info)
            elif isinstance(event, ResourceBound):
                session.bound = True
                log.info("session %d: %s bound from %s", session.id, event.jid, session.peer)
                self.apply(self.router.bind(session.id, event.jid))
            elif isinstance(event, Authenticated):
                log.info(
                    "session %d: authenticated %s with %s", session.id, event.jid, event.mechanism
                )
            elif isinstance(event, AuthenticationFailed):
                log.warning(
                    "session %d: authentication failed for %r from %s: %s",
                    session.id,
                    event.username,
                    session.peer,
                    event.condition,
                )
            elif isinstance(event, (StreamClosed, StreamErrorReceived, ConnectionClosed)):
                log.debug("session %d: %s", session.id, event)

    async def _register(
        self, session: _Session, conn: ServerConnection, event: RegistrationRequested
    ) -> StanzaErrorCondition | None:
        """Create an account for in-band registration (XEP-0077 §3.1), at most
        ``registrations_per_ip_per_hour`` per peer address; over that the answer is
        ``not-acceptable``, as XEP-0077 §3.1 ("Registration with a Server") allows
        for an entity that "attempts to register too many times"."""
        assert conn.domain is not None
        address = session.peer.rsplit(":", 1)[0]
        now = trio.current_time()
        recent = [t for t in self._registrations.get(address, []) if now - t < 3600]
        if len(recent) >= self.config.limits.registrations_per_ip_per_hour:
            log.warning("session %d: registration rate limit for %s", session.id, address)
            return StanzaErrorCondition.NOT_ACCEPTABLE
        iterations = self.config.scram_iterations
        try:
            await trio.to_thread.run_sync(
                lambda: self.store.create(
                    event.local, conn.domain or "", event.password, iterations=iterations
                )
            )
        except AccountExists:
            return StanzaErrorCondition.CONFLICT
        recent.append(now)
        self._registrations[address] = recent
        log.info(
            "session %d: registered %s@%s from %s", session.id, event.local, conn.domain, address
        )
        return None

    def _credentials(self, conn: ServerConnection, event: CredentialsRequested) -> Any:
        assert conn.domain is not None
        try:
            jid = JID.from_parts(event.username, conn.domain, None)
        except InvalidJID:
            return None
        assert jid.local is not None
        return self.store.credentials(jid.local, jid.domain, event.hash_name)

    async def shutdown(self) -> None:
        """Close every stream with ``system-shutdown`` (RFC 6120 §4.9.3.22)."""
        self._shutting_down = True
        for session in list(self.sessions.values()):
            if session.conn is not None:
                session.conn.close(StreamErrorCondition.SYSTEM_SHUTDOWN)
                session.kick()
        with trio.move_on_after(_CLOSE_GRACE):
            while self.sessions:
                await trio.sleep(0.01)


def _peer_name(stream: trio.abc.Stream) -> str:
    sock = getattr(stream, "socket", None)
    try:
        host, port, *_ = sock.getpeername() if sock is not None else ("?", 0)
    except OSError:
        return "?"
    return f"{host}:{port}"


def _tls_material(config: ServerConfig) -> tuple[ssl.SSLContext, bytes | None]:
    if config.tls.cert is not None and config.tls.key is not None:
        cert, key = config.tls.cert, config.tls.key
    else:
        cert, key = ensure_certificate(config.data_dir, config.domains)
    return load_server_ssl_context(cert, key), _certificate_der(cert)


def _certificate_der(cert: Path) -> bytes | None:
    pem = cert.read_text()
    start = pem.find("-----BEGIN CERTIFICATE-----")
    if start < 0:
        return None
    end = pem.index("-----END CERTIFICATE-----", start) + len("-----END CERTIFICATE-----")
    return ssl.PEM_cert_to_DER_cert(pem[start:end])


async def run_server(
    config: ServerConfig,
    *,
    task_status: trio.TaskStatus[list[BoundListener]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run the server until cancelled or sent SIGINT/SIGTERM.

    ``task_status.started`` receives the listeners with their real ports.
    """
    config.data_dir.mkdir(parents=True, exist_ok=True)
    store = AccountStore.open(config.database_path)
    db = open_database(config)
    try:
        ssl_context, der = _tls_material(config)
        server = XMPPServer(config, store, ssl_context, der, db)
        async with trio.open_nursery() as nursery:
            bound: list[BoundListener] = []
            for spec in config.listeners:
                listeners = await trio.open_tcp_listeners(spec.port, host=spec.address)
                direct = spec.kind == "c2s-directtls"
                for listener in listeners:
                    sockname = listener.socket.getsockname()
                    bound.append(BoundListener(spec.kind, sockname[0], sockname[1], server.router))

                    async def handler(stream: trio.SocketStream, direct: bool = direct) -> None:
                        await server.handle(stream, direct_tls=direct)

                    nursery.start_soon(trio.serve_listeners, handler, [listener])
                log.info("listening for %s on %s port %d", spec.kind, spec.address, bound[-1].port)
            log.info("serving %s", ", ".join(config.domains))
            task_status.started(bound)
            with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                async for signum in signals:
                    log.info("received %s, shutting down", signal.Signals(signum).name)
                    break
            await server.shutdown()
            nursery.cancel_scope.cancel()
    finally:
        db.close()
        store.close()
