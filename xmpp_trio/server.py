"""The bundled XMPP server: Trio sockets and TLS around xmpp_sansio.

Each TCP connection gets one :class:`_Session` and one reader task that feeds
the :class:`~xmpp_sansio.stream.connection.ServerConnection` and acts on its
events. Output is written without waiting by the task that produced it: the
stanzas routed while one read is handled go out at the end of that read, one
write per receiving session. Only when a peer's socket buffer is full (or a
close is under way) does its session get a writer task, started on demand
and ended once it has flushed, so a slow reader never blocks whoever sends to
it. Routing decisions are made by the sans-IO
:class:`~xmpp_sansio.server.router.Router`; this module only carries out its
effects and answers credential lookups from SQLite.

Bound sessions belong to the sans-IO
:class:`~xmpp_sansio.server.sessions.SessionManager`: detachment and
resumption (XEP-0198), presence held for detached sessions (XEP-0352), idle
pings (XEP-0199) and the re-routing of unacknowledged stanzas are its
decisions, and its timers run here (:meth:`XMPPServer.run_timers`). This
module carries out the effects of both (:meth:`XMPPServer.apply`) on
:class:`~xmpp_trio._transport.Transport` objects: TCP/TLS sockets, or
in-memory pipes in tests.

Limits enforced here (see :mod:`xmpp_trio.limits`): connections per address and
in total (refused with a stream error), failed authentications per address and
per account with exponential back-off, a read rate per connection (the reader
waits: backpressure, never a disconnection), the negotiation timeout, and a
bound on the bytes queued for a client that does not read (the session is
closed, or detached when it is resumable).
"""

from __future__ import annotations

import heapq
import logging
import os
import signal
import sqlite3
import ssl
import time
from collections import deque
from collections.abc import Hashable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, assert_never

import trio

from xmpp_sansio.errors import RemoteProtocolError, StanzaErrorCondition, StreamErrorCondition
from xmpp_sansio.jid import JID, InvalidJID
from xmpp_sansio.sasl import SASLCondition
from xmpp_sansio.sasl.credentials import salted_password
from xmpp_sansio.server import Deliver, Disconnect, Router
from xmpp_sansio.server.hosts import AccountHost, Authentication
from xmpp_sansio.server.register import PasswordChange
from xmpp_sansio.server.sessions import (
    CloseStream,
    Reroute,
    Resumed,
    SessionEffect,
    SessionManager,
)
from xmpp_sansio.stream.config import Limits
from xmpp_sansio.stream.config import ServerConfig as StreamConfig
from xmpp_sansio.stream.connection import ServerConnection, State, TLSInfo
from xmpp_sansio.stream.events import (
    Authenticated,
    AuthenticationFailed,
    BindRequested,
    ClientStateChanged,
    ConnectionClosed,
    CredentialsRequested,
    DerivationRequested,
    RegistrationRequested,
    ResourceBound,
    ResumeRequested,
    StanzaReceived,
    StreamClosed,
    StreamErrorReceived,
    StreamManagementEnabled,
    StreamResumed,
    TLSRequested,
)

from . import _tls
from ._transport import SocketTransport, Transport
from .certs import ensure_certificate, load_server_ssl_context
from .config import ServerConfig
from .limits import (
    AuthBackoff,
    ConnectionCounter,
    LogLimiter,
    TokenBucket,
    loggable,
    peer_address,
)
from .metrics import Metrics, serve_metrics
from .services import build_services, open_database
from .storage import AccountExists, AccountNotFound, AccountStore

__all__ = ["BoundListener", "XMPPServer", "run_server"]

log = logging.getLogger("xmpp_trio.server")

_RECEIVE_SIZE = 65536
_TRANSPORT_ERRORS = (trio.BrokenResourceError, trio.ClosedResourceError, ssl.SSLError, OSError)
_CLOSE_GRACE = 5.0
_STORE_FLUSH = 1.0  # seconds between writes of what stores keep behind
_STORAGE_LOG_EVERY = 10.0  # seconds between logs of database errors
_SQLITE_FULL = 13  # SQLITE_FULL: database or disk is full
_COMPACT_AFTER = 10.0  # seconds of quiet before an idle session's parser is compacted
_SLICE = 0.005  # seconds of stanza handling after which a reader lets other tasks run


def _derive(password: str, hash_name: str, salt: bytes, iterations: int) -> bytes:
    """PBKDF2 for a PLAIN check (run in a worker thread, never on the event loop)."""
    return salted_password(password, hash_name, salt, iterations)


@dataclass(frozen=True, slots=True)
class BoundListener:
    """Where a listener actually listens (the port is real even if 0 was asked),
    and the router behind it (for tests and embedding)."""

    kind: str
    address: str
    port: int
    router: Router
    server: XMPPServer | None = field(default=None, compare=False, repr=False)


class _Session:
    """One client connection: the sans-IO connection plus its transport.

    ``id`` is the router's session id; a connection that resumes a session
    (XEP-0198 §5) takes over the id of that session.
    """

    def __init__(self, server: XMPPServer, session_id: int, transport: Transport):
        self.server = server
        self.id = session_id
        self.transport = transport
        self.peer = transport.peer
        self.conn: ServerConnection | None = None
        # The writer task, while one runs (see kick); None: nobody waits to write.
        self._writer: trio.CancelScope | None = None
        self._writing_over = False  # the session ended: no writer starts again
        self._send_lock = trio.Lock()
        self.bound = False  # bound (or resumed): the session manager has it
        limits = server.config.limits
        # Bytes taken from the connection, not yet written to the transport.
        self.pending = bytearray()
        self._sending = False  # the writer is blocked writing to the peer
        self.max_output = limits.max_output_buffer
        self.stall_timeout = limits.output_stall_timeout
        # When the peer last took bytes, or output began to wait for it.
        self.progress_at = 0.0
        self.overflowed = False
        # Receipts (Deliver.receipt) of stanzas queued for the peer on a stream
        # without XEP-0198: confirmed once everything queued so far is written.
        self.unwritten: list[Hashable] = []
        self.bucket = TokenBucket(limits.max_read_rate, 2.0 * limits.max_read_rate)
        self.last_input = trio.current_time()
        self.scope: trio.CancelScope | None = None  # cancel to drop the transport
        self.read_scope: trio.CancelScope | None = None  # cancel to stop reading
        self.timer_at: float | None = None  # when its live timer entry is due
        self.compacted = False  # compaction tried since the last input
        #: set once the writer has sent everything after the stream was closed
        self.closing_flushed = trio.Event()

    def kick(self) -> None:
        """The connection has output the socket would not take now, or a close
        to carry out: make sure a writer task is on it. Writers start on
        demand, in the server's nursery, and end once nothing is left to do,
        so an idle or fast-reading session has no task but its reader."""
        if self._writer is not None or self._writing_over:
            return  # the running writer drains everything before it ends
        nursery = self.server.nursery
        if nursery is None:
            return
        scope = trio.CancelScope()
        self._writer = scope
        nursery.start_soon(self._write, scope)

    def fail(self, condition: StreamErrorCondition) -> None:
        """End the stream with the stream error ``condition`` (after an internal
        error): write what the socket takes now, without waiting."""
        conn = self.conn
        if conn is None or conn.should_close:
            return
        conn.close(condition)
        self.server.count_stream_error(condition)
        with suppress(*_TRANSPORT_ERRORS):
            self.transport.send_nowait(bytes(self.pending) + conn.data_to_send())

    def stop_writer(self) -> None:
        """The session is over: cancel its writer, start no other."""
        self._writing_over = True
        if self._writer is not None:
            self._writer.cancel()

    def deliver(self, element: Any, receipt: Hashable | None = None) -> None:
        """Queue ``element`` for the peer. Its ``receipt``, if any, is confirmed
        to the router once the stanza is written (acknowledged, with XEP-0198)."""
        conn = self.conn
        if conn is None:
            return
        if conn.state is not State.READY:
            # The stream is ending; the session may go on (XEP-0198 §4).
            self.server.manager.keep(self.id, element, receipt)
            return
        try:
            conn.send(element)
        except Exception:  # an element that cannot be serialised: drop it
            log.exception("session %d: cannot deliver a stanza", self.id)
            return
        if receipt is not None and not self.server.manager.sent(self.id, element, receipt):
            self.unwritten.append(receipt)
        server = self.server
        server.metrics.stanzas_out.inc()
        batch = server.batch
        if batch is not None:
            batch.add(self)  # written once the routing task is done with its input
        else:
            self.push()

    def push(self) -> None:
        """Write what the connection queued, without waiting: the task that
        routed a stanza writes it itself. Whatever the socket does not take now
        is left to the writer task, which waits until the peer reads."""
        conn = self.conn
        if conn is None:
            return
        if self._sending or self.pending or self.overflowed:
            # The writer is at work (or about to be): account for the bytes now,
            # so they cannot pile up unseen while it waits for the peer.
            self._drain()
            self.kick()
            return
        data = conn.data_to_send()
        if data:
            try:
                sent = self.transport.send_nowait(data)
            except _TRANSPORT_ERRORS:
                sent = 0  # the writer meets the error again and ends the session
            if sent < len(data):
                self.progress_at = trio.current_time()
                self.pending += data[sent:]
                self._check_bound(conn)
                self.kick()
        if self.unwritten and not self.pending and not self.overflowed:
            self._written()
        if conn.should_close:
            self.kick()

    def _written(self) -> None:
        """Everything queued for the peer so far is written: confirm the
        receipts of the stanzas among it."""
        receipts, self.unwritten = self.unwritten, []
        self.server.confirm(self.id, receipts)

    def _drain(self) -> None:
        """Move the connection's output into ``pending``, enforcing its bound."""
        conn = self.conn
        if conn is None or self.overflowed:
            return
        self.pending += conn.data_to_send()
        self._check_bound(conn)

    def _check_bound(self, conn: ServerConnection) -> None:
        """Apply ``max_output_buffer`` to a peer that stopped reading: more
        than that waits for it and it took no byte for ``output_stall_timeout``
        seconds. A peer that reads is given the time to take a burst (a
        resumption's retransmission, say) up to four times the bound."""
        size = len(self.pending)
        if size > self.max_output and (
            size > 4 * self.max_output
            or trio.current_time() - self.progress_at >= self.stall_timeout
        ):
            self._overflow(conn)

    def _overflow(self, conn: ServerConnection) -> None:
        """More than ``max_output_buffer`` bytes wait for a peer that does not
        read (see :meth:`_check_bound`). A resumable session is detached (its unacknowledged stanzas stay
        in the XEP-0198 queue); any other is closed with ``policy-violation``
        (RFC 6120 §4.9.3.15). Either way the transport is dropped at once: the
        peer reads nothing, so waiting for it to take the error is pointless."""
        self.overflowed = True
        size = len(self.pending)
        self.pending = bytearray()
        if conn.sm_resumable:
            log.warning("session %d (%s): %d bytes unread, detaching", self.id, self.peer, size)
        else:
            log.warning("session %d (%s): %d bytes unread, closing", self.id, self.peer, size)
            conn.close(StreamErrorCondition.POLICY_VIOLATION, "too much unread output")
            self.server.count_stream_error(StreamErrorCondition.POLICY_VIOLATION)
            conn.data_to_send()  # the peer does not read: drop the error too
        if self.scope is not None:
            self.scope.cancel()

    async def flush(self) -> None:
        """Write everything queued, waiting for the peer as needed."""
        assert self.conn is not None
        async with self._send_lock:
            self._sending = True
            try:
                await trio.lowlevel.checkpoint_if_cancelled()
                while True:
                    self._drain()
                    if not self.pending:
                        break
                    # A write that would block must be retried with the same
                    # bytes first (see _transport): pending only grows at its end.
                    sent = self.transport.send_nowait(self.pending)
                    if sent:
                        del self.pending[:sent]
                        self.progress_at = trio.current_time()
                    elif self.stall_timeout > 0:
                        # Over the bound, the peer must read within the stall
                        # time; under it, look again after that long, in case
                        # output grows past the bound meanwhile.
                        now = trio.current_time()
                        over = len(self.pending) > self.max_output
                        due = self.progress_at if over else now
                        with trio.move_on_at(due + self.stall_timeout):
                            await self.transport.wait_send()
                        self._check_bound(self.conn)
                        if self.overflowed:
                            return
                    else:  # _drain applies the bound as soon as it is exceeded
                        await self.transport.wait_send()
            finally:
                self._sending = False
            if self.unwritten and not self.pending and not self.overflowed:
                self._written()

    async def _write(self, scope: trio.CancelScope) -> None:
        """The writer task: flush (waiting for the peer as needed), carry out
        a close, then end."""
        conn = self.conn
        assert conn is not None
        try:
            with scope:
                try:
                    await self.flush()
                except _TRANSPORT_ERRORS:
                    # The peer is gone; the reader sees EOF and ends the session.
                    self.closing_flushed.set()
                    self.transport.close()
                    return
                if conn.should_close:
                    # Everything, the stream error and </stream:stream> included,
                    # is out. The peer should close the connection; if it does
                    # not, drop it, so the reader ends and the session with it.
                    self.closing_flushed.set()
                    await trio.sleep(_CLOSE_GRACE)
                    self.transport.close()
        finally:
            self._writer = None


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
        self.db = db  # the services' database connection
        self.ssl_context = ssl_context
        self.tls_info = _tls.server_tls_info(certificate_der)
        self.services = build_services(config, store, db)
        self.router = Router(
            [
                *config.domains,
                *(AccountHost(d, Authentication.ANONYMOUS) for d in config.anonymous_domains),
            ],
            account_exists=self._account_exists,
            services=self.services.services,
            hosts=self.services.hosts,
        )
        limits = config.limits
        #: bound sessions (attached or detached), their timers and XEP-0198 policy
        self.manager = SessionManager(
            self.router,
            resume_timeout=limits.resume_timeout,
            max_unacked=limits.max_unacked,
            max_unacked_bytes=limits.max_unacked_bytes,
            idle_timeout=limits.idle_timeout,
        )
        self.stream_config = StreamConfig(
            domains=frozenset(config.hosted_domains),
            anonymous_domains=frozenset(config.anonymous_domains),
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
                max_auth_attempts=limits.max_auth_attempts,
            ),
            sm_resume_timeout=limits.resume_timeout,
            sm_max_unacked=limits.max_unacked_connected,
            sm_max_unacked_bytes=limits.max_unacked_bytes,
            ask_before_bind=True,  # answered by manager.may_bind (max_sessions_per_account)
            decoy_iterations=config.scram_iterations,  # unknown users look like real ones
        )
        #: live transports by the id of the session they carry
        self.sessions: dict[int, _Session] = {}
        self._registrations: dict[str, list[float]] = {}  # peer address -> times
        self.metrics = Metrics()
        self.connections = ConnectionCounter(limits.max_connections, limits.max_connections_per_ip)
        self.auth_backoff = AuthBackoff(
            free=limits.auth_failures_before_backoff, max_entries=limits.auth_backoff_max_entries
        )
        self._auth_log = LogLimiter(limits.auth_log_lines_per_minute)
        #: PBKDF2 runs in worker threads, at most one per CPU at once
        self.derivation_limiter = trio.CapacityLimiter(max(1, os.cpu_count() or 1))
        self._password_changes: dict[str, list[float]] = {}  # account -> times
        self._next_id = 1
        #: sessions with output from the read being handled (see _handle_events)
        self.batch: set[_Session] | None = None
        # Receipts handed back to the router by confirm(), in order.
        self._confirmations: deque[tuple[int, Hashable]] = deque()
        self._confirming = False
        self._storage_errors = 0  # database errors since the last logged one
        self._storage_log_at = 0.0
        #: where sessions' writer tasks run (set by run_server)
        self.nursery: trio.Nursery | None = None
        # Stream timers (negotiation deadline, parser compaction): one entry per
        # connection, (when, sequence, session), checked lazily by run_timers so
        # that reads need no cancel scope of their own.
        self._timers: list[tuple[float, int, _Session]] = []
        self._timer_seq = 0
        #: seconds without input after which a session's parser is compacted
        self.compact_after = _COMPACT_AFTER
        shortest = min(limits.negotiation_timeout, limits.idle_timeout / 2, _COMPACT_AFTER)
        self._timer_tick = min(1.0, max(0.01, shortest / 8))

    def _account_exists(self, local: str, domain: str) -> bool:
        return self.store.exists(local, domain)

    def count_stream_error(self, condition: StreamErrorCondition) -> None:
        self.metrics.stream_errors.labels(condition=condition.value).inc()

    def apply(self, effects: Sequence[SessionEffect]) -> None:
        """Carry out effects of the router and the session manager (and start
        the password changes the registration service deferred meanwhile)."""
        for change in self.services.registration.take_password_changes():
            if self.nursery is not None:
                self.nursery.start_soon(self._change_password, change)
        for effect in effects:
            match effect:
                case Deliver():
                    session = self.sessions.get(effect.session)
                    if session is None:
                        self.apply(self.manager.undeliverable(effect))
                    else:
                        session.deliver(effect.element, effect.receipt)
                case Disconnect():
                    session = self.sessions.get(effect.session)
                    if session is None:
                        self.apply(self.manager.undeliverable(effect))
                    else:
                        self._close(session, effect.condition)
                case CloseStream():
                    session = self.sessions.get(effect.session)
                    if session is not None:
                        log.info("session %d (%s): %s", session.id, session.peer, effect.condition)
                        self._close(session, effect.condition, effect.text)
                case Resumed():
                    self._rekey(effect.transport, effect.session)
                case Reroute():
                    try:
                        self.apply(self.router.route_inbound(effect.element))
                    except sqlite3.Error as exc:  # e.g. offline storage full: tell the sender
                        what = f"session {effect.session}: routing unacked"
                        condition = self.storage_failed(exc, what)
                        self.apply(self.router.bounce(effect.element, condition))
                case _:
                    assert_never(effect)

    def _close(
        self, session: _Session, condition: StreamErrorCondition, text: str | None = None
    ) -> None:
        """End ``session``'s stream with a stream error (RFC 6120 §4.9)."""
        conn = session.conn
        if conn is None or conn.should_close:
            return
        conn.close(condition, text)
        self.count_stream_error(condition)
        session.kick()

    def _rekey(self, transport: int, session_id: int) -> None:
        """The transport filed as ``transport`` resumed ``session_id`` (XEP-0198 §5)."""
        session = self.sessions.pop(transport, None)
        if session is None:
            return
        log.info("session %d: resumed session %d", transport, session_id)
        session.id = session_id
        session.bound = True
        self.sessions[session_id] = session

    def storage_failed(self, exc: sqlite3.Error, doing: str) -> StanzaErrorCondition:
        """Count and log (at most every few seconds) a database error met while
        ``doing`` something; return the stanza error that tells the sender:
        ``resource-constraint`` when the database or disk is full (RFC 6120
        §8.3.3.18), else ``internal-server-error`` (§8.3.3.6). The session
        goes on: whatever does not need the failed write is still served."""
        self.metrics.storage_errors.inc()
        self._storage_errors += 1
        now = trio.current_time()
        if now >= self._storage_log_at:
            log.error(
                "%s: database error %s (%d since the last report)",
                doing,
                exc,
                self._storage_errors,
            )
            self._storage_errors = 0
            self._storage_log_at = now + _STORAGE_LOG_EVERY
        if getattr(exc, "sqlite_errorcode", None) == _SQLITE_FULL:
            return StanzaErrorCondition.RESOURCE_CONSTRAINT
        return StanzaErrorCondition.INTERNAL_SERVER_ERROR

    def confirm(self, session_id: int, receipts: Sequence[Hashable]) -> None:
        """Hand the receipts of stanzas that reached their client back to the
        router, and carry out what follows (e.g. the next page of offline
        messages). Receipts confirmed meanwhile wait their turn: no recursion."""
        self._confirmations.extend((session_id, receipt) for receipt in receipts)
        if self._confirming:
            return
        self._confirming = True
        try:
            while self._confirmations:
                sid, receipt = self._confirmations.popleft()
                try:
                    effects = self.router.handed_over(sid, receipt)
                except sqlite3.Error as exc:  # kept stored: delivered again later
                    self.storage_failed(exc, f"session {sid}: confirming a delivery")
                    continue
                self.apply(effects)
        finally:
            self._confirming = False

    async def handle(self, stream: trio.SocketStream, *, direct_tls: bool) -> None:
        """Serve one accepted TCP connection until it ends."""
        await self.serve(SocketTransport.from_trio(stream), direct_tls=direct_tls)

    async def serve(self, transport: Transport, *, direct_tls: bool = False) -> None:
        """Serve one client connection, on any :class:`Transport`, until it ends."""
        session_id = self._next_id
        self._next_id += 1
        peer = transport.peer
        address = peer_address(peer)
        session = _Session(self, session_id, transport)
        refusal = self.connections.refusal(address)
        if refusal is not None:
            await self._refuse(session, refusal, direct_tls=direct_tls)
            return
        self.connections.add(address)
        self.sessions[session_id] = session
        self.metrics.sessions_opened.inc()
        self.metrics.sessions.inc()
        log.debug("session %d: connection from %s", session_id, peer)
        try:
            await self._run_session(session, direct_tls=direct_tls)
        except _TRANSPORT_ERRORS as exc:
            log.debug("session %d: transport ended: %r", session_id, exc)
        except Exception:
            # A bug must cost one connection, never the server; the client is
            # told (RFC 6120 §4.9.3.8), as far as its socket takes it now.
            log.exception("session %d: internal error", session_id)
            session.fail(StreamErrorCondition.INTERNAL_SERVER_ERROR)
        finally:
            # Synchronously (no checkpoint): from here on, stanzas for the session
            # are kept for its resumption or routed elsewhere, never lost.
            if self.sessions.get(session.id) is session:
                del self.sessions[session.id]
                if session.bound:
                    try:
                        self.apply(self.manager.transport_lost(session.id, trio.current_time()))
                    except Exception:
                        log.exception("session %d: internal error ending it", session.id)
            self.connections.remove(address)
            self.metrics.sessions.dec()
            self.metrics.sessions_closed.inc()
            session.stop_writer()
            session.transport.close()
            log.debug("session %d: closed", session_id)

    async def _refuse(self, session: _Session, refusal: str, *, direct_tls: bool) -> None:
        """Over a connection limit: send a stream header and a stream error, then
        close (RFC 6120 §4.9.1.1). Too many connections in total is
        ``resource-constraint`` (§4.9.3.17: the server "lacks the system resources
        necessary to service the stream"); too many from one address is
        ``policy-violation`` (§4.9.3.15: a local service policy)."""
        if refusal == "total":
            condition, text = StreamErrorCondition.RESOURCE_CONSTRAINT, "too many connections"
        else:
            condition = StreamErrorCondition.POLICY_VIOLATION
            text = "too many connections from your address"
        log.warning("session %d (%s): refused, %s", session.id, session.peer, text)
        self.metrics.connections_refused.labels(limit=refusal).inc()
        self.count_stream_error(condition)
        try:
            with trio.move_on_after(_CLOSE_GRACE):
                if direct_tls:
                    await session.transport.start_tls(self.ssl_context, server_side=True)
                conn = ServerConnection(self.stream_config, tls_active=direct_tls)
                conn.close(condition, text)
                await session.transport.send_all(conn.data_to_send())
        except _TRANSPORT_ERRORS as exc:
            log.debug("session %d: transport ended: %r", session.id, exc)
        finally:
            session.transport.close()

    async def _run_session(self, session: _Session, *, direct_tls: bool) -> None:
        with trio.CancelScope() as scope:
            session.scope = scope
            await self._run_session_inner(session, direct_tls=direct_tls)

    async def _run_session_inner(self, session: _Session, *, direct_tls: bool) -> None:
        if direct_tls:
            handshaken = False
            with trio.move_on_after(self.config.limits.negotiation_timeout):
                await session.transport.start_tls(self.ssl_context, server_side=True)
                handshaken = True
            if not handshaken:  # timed out: nothing can be said, in TLS or not
                return
        conn = ServerConnection(
            self.stream_config,
            tls_active=direct_tls,
            tls_info=self._tls_info(session) if direct_tls else None,
        )
        session.conn = conn
        conn.start_timer(trio.current_time(), self.config.limits.negotiation_timeout)
        deadline = conn.next_deadline()
        if deadline is not None:
            self._schedule(session, deadline)
        await self._read_loop(session, conn)
        # Let the writer flush everything up to the close (never cancel it in
        # the middle of a send), then give up on the peer.
        with trio.move_on_after(_CLOSE_GRACE):
            session.kick()
            await session.closing_flushed.wait()
        session.stop_writer()
        with trio.move_on_after(1), trio.CancelScope(shield=True), suppress(*_TRANSPORT_ERRORS):
            await session.flush()

    async def _read_loop(self, session: _Session, conn: ServerConnection) -> None:
        with trio.CancelScope() as session.read_scope:
            while not conn.should_close:
                if not await self._read_once(session, conn):
                    return

    def _schedule(self, session: _Session, when: float) -> None:
        """Make ``when`` the session's timer entry (an older entry goes stale)."""
        self._timer_seq += 1
        session.timer_at = when
        heapq.heappush(self._timers, (when, self._timer_seq, session))

    def _timer_changed(self, session: _Session, conn: ServerConnection) -> None:
        """The session's deadline may have moved earlier (negotiation ended and
        compaction is due): schedule it."""
        due = self._deadline(session, conn)
        if due is not None and (session.timer_at is None or due < session.timer_at):
            self._schedule(session, due)

    def _deadline(self, session: _Session, conn: ServerConnection) -> float | None:
        """The stream's next deadline: negotiation, else compaction once bound
        (None: none). Session timers (idle, resumption) are the manager's."""
        negotiation = conn.next_deadline()
        if negotiation is not None or not session.bound:
            return negotiation
        return self._compact_at(session)

    def _compact_at(self, session: _Session) -> float | None:
        """When the session's parser is due for compaction (None: not before
        its next input)."""
        if session.compacted or self.compact_after <= 0:
            return None
        return session.last_input + self.compact_after

    async def run_timers(self) -> None:
        """Fire the streams' timers and the session manager's, within
        ``_timer_tick`` of their time.

        A stream's entry may be early (input arrived since it was pushed): it
        is then pushed again for its real deadline. A deadline moves earlier
        only when negotiation ends (compaction is due), and that schedules a
        new entry."""
        timers = self._timers
        next_flush = trio.current_time() + _STORE_FLUSH
        while True:
            await trio.sleep(self._timer_tick)
            now = trio.current_time()
            if now >= next_flush:
                next_flush = now + _STORE_FLUSH
                try:
                    self.services.flush()
                except sqlite3.Error:
                    log.exception("could not write the last logout times")
            while timers and timers[0][0] <= now:
                when, _, session = heapq.heappop(timers)
                conn = session.conn
                if when != session.timer_at:
                    continue  # stale: replaced by an earlier entry
                session.timer_at = None
                if conn is None or session.transport.closed or conn.should_close:
                    continue
                due = self._deadline(session, conn)
                if due is None:
                    continue
                if due > now:
                    self._schedule(session, due)
                    continue
                try:
                    self._fire_timer(session, conn, now)
                except Exception:
                    log.exception("session %d: internal error in a timer", session.id)
            due = self.manager.next_deadline()
            if due is not None and due <= now:
                try:
                    self._session_timers(now)
                except Exception:
                    log.exception("internal error in a session timer")

    def _session_timers(self, now: float) -> None:
        """Carry out what the session manager's timers give (idle pings and
        closes, expiries); a stream closed for idleness is read no more."""
        effects = self.manager.handle_timer(now)
        self.apply(effects)
        for effect in effects:
            if isinstance(effect, CloseStream):
                session = self.sessions.get(effect.session)
                if session is not None:
                    session.push()
                    if session.read_scope is not None:
                        session.read_scope.cancel()

    def _fire_timer(self, session: _Session, conn: ServerConnection, now: float) -> None:
        negotiation = conn.next_deadline()
        compact = self._compact_at(session)
        if negotiation is None and compact is not None and now >= compact:
            # Quiet for a while: drop the parser's state (most of an idle
            # session's memory); the next input restores it.
            session.compacted = True
            conn.compact()
        elif negotiation is not None:
            conn.handle_timer(now)
            log.info("session %d (%s): negotiation timed out", session.id, session.peer)
            if conn.should_close:
                self.count_stream_error(StreamErrorCondition.CONNECTION_TIMEOUT)
            session.push()
            if conn.should_close:
                if session.read_scope is not None:
                    session.read_scope.cancel()
                return
        due = self._deadline(session, conn)
        if due is not None:
            self._schedule(session, due)

    async def _read_once(self, session: _Session, conn: ServerConnection) -> bool:
        """Read once and act on what came (timers are run_timers' business)."""
        try:
            data = await session.transport.receive_some(
                min(_RECEIVE_SIZE, session.bucket.max_read())
            )
        except _TRANSPORT_ERRORS as exc:
            log.debug("session %d: transport ended: %r", session.id, exc)
            data = b""
        session.last_input = trio.current_time()
        if session.bound:
            self.manager.received(session.id, session.last_input)
        if session.compacted:
            session.compacted = False
            self._timer_changed(session, conn)  # compaction is due again
        conn.receive_data(data)
        try:
            await self._handle_events(session, conn)
        except RemoteProtocolError as exc:
            log.info("session %d (%s): stream error %s", session.id, session.peer, exc)
            self.count_stream_error(exc.condition)
        if session.bound:  # acknowledged stanzas were handed over (XEP-0198 §4)
            receipts = self.manager.take_confirmed(session.id)
            if receipts:
                self.confirm(session.id, receipts)
        session.push()
        if data:
            # Backpressure (the read rate limit): wait before reading more.
            delay = session.bucket.consume(len(data), session.last_input)
            if delay > 0:
                await trio.sleep(delay)
        return bool(data)

    def _auth_blocked(self, session: _Session, conn: ServerConnection, username: str) -> float:
        """Seconds the peer must still wait before authenticating again (0: go ahead).

        The address's own back-off always applies. The account's back-off (keyed
        on the PRECIS-prepared localpart) applies only to addresses that have
        failures on record: a client from a clean address always gets its
        password checked, so guessing from elsewhere cannot lock the real user
        out, and each fresh address of a distributed guesser gets one guess
        before the account's back-off holds it too.
        """
        now = trio.current_time()
        address = _ip_key(session.peer)
        wait = self.auth_backoff.blocked_for(address, now)
        account = _account_key(username, conn.domain)
        if account is not None and self.auth_backoff.has_failures(address, now):
            wait = max(wait, self.auth_backoff.blocked_for(account, now))
        return wait

    def _log_auth(self, message: str, *args: object) -> None:
        """A warning about a failed or refused login, at most
        ``auth_log_lines_per_minute`` of them (peers choose how many)."""
        if not self._auth_log.allow(trio.current_time()):
            return
        suppressed = self._auth_log.take_suppressed()
        if suppressed:
            message += " (%d similar messages suppressed)"
            args = (*args, suppressed)
        log.warning(message, *args)

    async def _derive_off_loop(self, event: DerivationRequested) -> bytes:
        """Run a PLAIN derivation in a worker thread (bounded by the limiter)."""
        return await trio.to_thread.run_sync(
            _derive,
            event.password,
            event.hash_name,
            event.salt,
            event.iterations,
            limiter=self.derivation_limiter,
        )

    async def _handle_events(self, session: _Session, conn: ServerConnection) -> None:
        """Act on the events of one read. Stanzas routed meanwhile are written
        when the read is done, one write per receiving session (a batch); the
        batch is flushed before anything that waits, so no other task's output
        is ever held up by this one."""
        batch: set[_Session] = set()
        self.batch = batch
        try:
            await self._handle_events_batched(session, conn, batch)
        finally:
            self._end_batch(batch)

    def _end_batch(self, batch: set[_Session]) -> None:
        """Write the batch's output now; stanzas routed from here on are
        written at once, until ``self.batch`` is set again."""
        self.batch = None
        for receiver in batch:
            receiver.push()
        batch.clear()

    async def _handle_events_batched(
        self, session: _Session, conn: ServerConnection, batch: set[_Session]
    ) -> None:
        since = time.perf_counter()
        while (event := conn.next_event()) is not None:
            if isinstance(event, StanzaReceived):
                self.metrics.stanzas_in.inc()
                try:
                    effects = self.router.route(session.id, event.element)
                except sqlite3.Error as exc:
                    condition = self.storage_failed(exc, f"session {session.id}: routing")
                    effects = self.router.failed(session.id, event.element, condition)
                self.apply(effects)
                if time.perf_counter() - since > _SLICE:
                    # One read may hold thousands of stanzas: let the other
                    # clients (and a cancellation, e.g. SIGTERM) in between.
                    self._end_batch(batch)
                    await trio.sleep(0)
                    self.batch = batch
                    if conn.should_close:  # e.g. replaced meanwhile
                        return
                    since = time.perf_counter()
            elif isinstance(event, CredentialsRequested):
                wait = self._auth_blocked(session, conn, event.username)
                if wait > 0:
                    # Backing off after repeated failures: refuse without checking
                    # the password, with temporary-auth-failure (RFC 6120 §6.5.12).
                    # The stream stays open; the refusal counts toward the
                    # stream's max_auth_attempts like any failure (§6.4.5).
                    self._log_auth(
                        "session %d: authentication of %s from %s refused, back-off %.0f s",
                        session.id,
                        loggable(event.username),
                        session.peer,
                        wait,
                    )
                    conn.refuse_credentials(SASLCondition.TEMPORARY_AUTH_FAILURE)
                    continue
                conn.provide_credentials(self._credentials(conn, event))
            elif isinstance(event, DerivationRequested):
                self._end_batch(batch)
                salted = await self._derive_off_loop(event)
                self.batch = batch
                if conn.state is State.AWAIT_DERIVATION:  # not closed meanwhile
                    conn.provide_derived(salted)
            elif isinstance(event, BindRequested):
                if self.manager.may_bind(event.jid, self.config.limits.max_sessions_per_account):
                    conn.bind_accepted()
                else:
                    log.warning(
                        "session %d: bind of %s from %s refused, %d sessions already",
                        session.id,
                        event.jid,
                        session.peer,
                        self.config.limits.max_sessions_per_account,
                    )
                    conn.bind_refused(StanzaErrorCondition.RESOURCE_CONSTRAINT)
            elif isinstance(event, RegistrationRequested):
                self._end_batch(batch)
                result = await self._register(session, conn, event)
                self.batch = batch
                conn.registration_result(result)
            elif isinstance(event, TLSRequested):
                if conn.should_close:
                    continue  # already failed (e.g. plaintext injected after <starttls/>)
                self._end_batch(batch)
                handshaken = await self._starttls(session, conn)
                self.batch = batch
                if not handshaken:
                    return
            elif isinstance(event, ResourceBound):
                session.bound = True
                self._timer_changed(session, conn)
                log.info("session %d: %s bound from %s", session.id, event.jid, session.peer)
                self.apply(self.manager.bind(session.id, conn, event.jid, trio.current_time()))
            elif isinstance(event, StreamManagementEnabled):
                self.manager.stream_management_enabled(session.id, event)
                log.debug(
                    "session %d: stream management on, resumable=%s", session.id, event.resume
                )
            elif isinstance(event, ResumeRequested):
                self.apply(self.manager.resume(session.id, conn, event, trio.current_time()))
                self._timer_changed(session, conn)
            elif isinstance(event, StreamResumed):
                log.debug("session %d: retransmitted %d", session.id, len(event.retransmitted))
            elif isinstance(event, ClientStateChanged):
                log.debug(
                    "session %d: client %s", session.id, "active" if event.active else "inactive"
                )
            elif isinstance(event, Authenticated):
                log.info(
                    "session %d: authenticated %s with %s", session.id, event.jid, event.mechanism
                )
                account = _account_key(event.jid.local or "", event.jid.domain)
                if account is not None:
                    self.auth_backoff.succeeded(account)
            elif isinstance(event, AuthenticationFailed):
                self.metrics.auth_failures.inc()
                # Only a credential that was checked and found wrong is a guess
                # the back-off counts (not an abort, an unknown mechanism, a
                # malformed request, a channel binding problem, or the
                # back-off's own temporary-auth-failure).
                if event.credentials_checked:
                    now = trio.current_time()
                    self.auth_backoff.failed(_ip_key(session.peer), now)
                    account = _account_key(event.username or "", conn.domain)
                    if account is not None:
                        self.auth_backoff.failed(account, now)
                self._log_auth(
                    "session %d: authentication failed for %s from %s: %s%s%s",
                    session.id,
                    loggable(event.username),
                    session.peer,
                    event.condition,
                    f" ({loggable(event.text)})" if event.text else "",
                    "" if event.credentials_checked else " (no credential checked)",
                )
            elif isinstance(event, (StreamClosed, StreamErrorReceived, ConnectionClosed)):
                log.debug("session %d: %s", session.id, event)

    async def _starttls(self, session: _Session, conn: ServerConnection) -> bool:
        """Flush ``<proceed/>`` and run the TLS handshake (RFC 6120 §5.4.3.3) within
        the negotiation deadline. On a timeout or a broken handshake the transport
        is closed (nothing more can be said, in TLS or not) and False returned."""
        deadline = conn.next_deadline()
        handshaken = False
        with trio.move_on_at(float("inf") if deadline is None else deadline):
            try:
                await session.flush()
                # RFC 6120 §11.7 whitespace after <starttls/>, bounded like a stanza.
                if await session.transport.discard_whitespace(
                    self.config.limits.max_stanza_size_preauth
                ):
                    await session.transport.start_tls(self.ssl_context, server_side=True)
                    handshaken = True
            except _TRANSPORT_ERRORS as exc:
                log.debug("session %d: STARTTLS handshake failed: %r", session.id, exc)
        if not handshaken:
            session.transport.close()
            return False
        conn.tls_established(self._tls_info(session))
        return True

    def _tls_info(self, session: _Session) -> TLSInfo:
        """The channel bindings of the session's TLS connection (RFC 5929, XEP-0440)."""
        transport = session.transport
        return _tls.connection_tls_info(
            self.tls_info, tls_version=transport.tls_version(), finished=transport.tls_unique()
        )

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
        self._registrations[address] = recent
        if len(recent) >= self.config.limits.registrations_per_ip_per_hour:
            self._log_auth("session %d: registration rate limit for %s", session.id, address)
            return StanzaErrorCondition.NOT_ACCEPTABLE
        # The name first: a taken name costs no PBKDF2, and counts as an attempt
        # (each probe of an existing name uses up the address's allowance).
        recent.append(now)
        if self.store.exists(event.local, conn.domain):
            return StanzaErrorCondition.CONFLICT
        iterations = self.config.scram_iterations
        try:
            await trio.to_thread.run_sync(
                lambda: self.store.create(
                    event.local, conn.domain or "", event.password, iterations=iterations
                ),
                limiter=self.derivation_limiter,
            )
        except AccountExists:  # created meanwhile
            return StanzaErrorCondition.CONFLICT
        log.info(
            "session %d: registered %s@%s from %s", session.id, event.local, conn.domain, address
        )
        return None

    async def _change_password(self, change: PasswordChange) -> None:
        """Carry out a password change (XEP-0077 §3.3) in a worker thread, at most
        ``password_changes_per_hour`` per account; over that the answer is
        ``resource-constraint`` (RFC 6120 §8.3.3.18, type wait)."""
        account = str(change.account)
        now = trio.current_time()
        recent = [t for t in self._password_changes.get(account, []) if now - t < 3600]
        self._password_changes[account] = recent
        registration = self.services.registration
        if len(recent) >= self.config.limits.password_changes_per_hour:
            log.warning("password change rate limit for %s", account)
            self.apply(
                self.router.drain(
                    registration.password_change_finished(
                        change, StanzaErrorCondition.RESOURCE_CONSTRAINT
                    )
                )
            )
            return
        recent.append(now)
        local, domain = change.account.local or "", change.account.domain
        iterations = self.config.scram_iterations
        error: StanzaErrorCondition | None = None
        try:
            await trio.to_thread.run_sync(
                lambda: self.store.set_password(
                    local, domain, change.password, iterations=iterations
                ),
                limiter=self.derivation_limiter,
            )
        except AccountNotFound:
            error = StanzaErrorCondition.REGISTRATION_REQUIRED
        except ValueError:
            error = StanzaErrorCondition.NOT_ACCEPTABLE
        self.apply(self.router.drain(registration.password_change_finished(change, error)))

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
        self.apply(self.manager.close())
        for session in list(self.sessions.values()):
            if session.conn is not None:
                session.conn.close(StreamErrorCondition.SYSTEM_SHUTDOWN)
                self.count_stream_error(StreamErrorCondition.SYSTEM_SHUTDOWN)
                session.kick()
        with trio.move_on_after(_CLOSE_GRACE):
            while self.sessions:
                await trio.sleep(0.01)


def _ip_key(peer: str) -> str:
    return "ip:" + peer_address(peer)


def _account_key(username: str, domain: str | None) -> str | None:
    """The back-off key of an account: its PRECIS-prepared localpart (RFC 7622
    §3.3, so case and width variants share it), or None for a username that
    can name no account."""
    try:
        jid = JID.from_parts(username, domain or "localhost", None)
    except InvalidJID:
        return None
    return f"account:{jid.local}@{domain or ''}"


def _tls_material(config: ServerConfig) -> tuple[ssl.SSLContext, bytes | None]:
    if config.tls.cert is not None and config.tls.key is not None:
        cert, key = config.tls.cert, config.tls.key
    else:
        cert, key = ensure_certificate(config.data_dir, config.hosted_domains)
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
    try:
        store.check_integrity()
    except BaseException:
        store.close()
        raise
    db = open_database(config)
    server: XMPPServer | None = None
    try:
        ssl_context, der = _tls_material(config)
        server = XMPPServer(config, store, ssl_context, der, db)
        async with trio.open_nursery() as nursery:
            bound: list[BoundListener] = []
            server.nursery = nursery
            nursery.start_soon(server.run_timers)
            for spec in config.listeners:
                listeners = await trio.open_tcp_listeners(spec.port, host=spec.address)
                direct = spec.kind == "c2s-directtls"
                for listener in listeners:
                    sockname = listener.socket.getsockname()
                    bound.append(
                        BoundListener(spec.kind, sockname[0], sockname[1], server.router, server)
                    )

                    async def handler(stream: trio.SocketStream, direct: bool = direct) -> None:
                        await server.handle(stream, direct_tls=direct)

                    nursery.start_soon(trio.serve_listeners, handler, [listener])
                log.info("listening for %s on %s port %d", spec.kind, spec.address, bound[-1].port)
            if config.metrics.enabled:
                metrics = config.metrics
                port = await nursery.start(
                    serve_metrics, server.metrics, metrics.address, metrics.port
                )
                bound.append(BoundListener("metrics", metrics.address, port, server.router, server))
            log.info(
                "serving %s", ", ".join(config.hosted_domains + tuple(server.router.hosts.services))
            )
            task_status.started(bound)
            with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                async for signum in signals:
                    log.info("received %s, shutting down", signal.Signals(signum).name)
                    break
            await server.shutdown()
            nursery.cancel_scope.cancel()
    finally:
        if server is not None:
            try:
                server.services.flush()  # logout times written behind
            except sqlite3.Error:
                log.exception("could not write the last logout times")
        db.close()
        store.close()
