"""The bundled XMPP server: accept loops, transports, timers and the
interpreter of sans-IO effects.

Each accepted connection gets a :class:`~xmpp_trio._session.Session` (its
:class:`~xmpp_trio._transport.Transport`, its stream and its reader task).
Routing is the sans-IO :class:`~xmpp_sansio.server.router.Router`'s; bound
sessions belong to the sans-IO
:class:`~xmpp_sansio.server.sessions.SessionManager` (detachment and
resumption, presence held while detached, idle pings, re-routing of
unacknowledged stanzas). This module runs their timers
(:meth:`XMPPServer.run_timers`) and carries out their effects
(:meth:`XMPPServer.apply`); it makes no XMPP decision of its own.

Limits enforced at this edge (see :mod:`xmpp_trio.limits`): connections per
address and in total (refused with a stream error), the login back-off (see
:mod:`xmpp_trio._accounts`), a read rate per connection (backpressure), the
negotiation timeout, and a bound on the bytes queued for a client that does
not read (the session is closed, or detached when it is resumable).
"""

from __future__ import annotations

import heapq
import logging
import secrets
import signal
import sqlite3
from collections import deque
from collections.abc import AsyncIterator, Hashable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import assert_never

import trio

from xmpp_sansio.errors import StanzaErrorCondition, StreamErrorCondition
from xmpp_sansio.jid import JID
from xmpp_sansio.server import Deliver, Disconnect, Router
from xmpp_sansio.server.admin import with_text
from xmpp_sansio.server.effects import Load, Persist, RouteRemote
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
from xmpp_sansio.stream.connection import ServerConnection
from xmpp_sansio.stream.framing import Framing

from . import _tls
from ._accounts import Accounts
from ._edge import StorageEdge
from ._ready import Ready
from ._session import CLOSE_GRACE, TRANSPORT_ERRORS, Session
from ._transport import SocketTransport, Transport
from .admin import Admin
from .admin import socket_path as admin_socket_path
from .admin_jobs import client_sessions, start_deferred
from .certs import server_tls_material
from .components import component_handler, component_hosts
from .config import ServerConfig, bind_host
from .http import HTTPService
from .limits import ConnectionCounter, peer_address
from .logs import SESSION
from .metrics import Metrics, serve_metrics
from .s2s import Federation, s2s_handler, start_federation
from .services import build_services, open_database
from .storage import AccountStore

__all__ = ["BoundListener", "XMPPServer", "open_server", "run_server"]

log = logging.getLogger("xmpp_trio.server")

_STORE_FLUSH = 1.0  # seconds between writes of what stores keep behind
_COMPACT_AFTER = 10.0  # seconds of quiet before an idle session's parser is compacted
_NO_REMOTE = StanzaErrorCondition.REMOTE_SERVER_NOT_FOUND  # federation off


@dataclass(frozen=True, slots=True)
class BoundListener:
    """Where a listener actually listens (the port is real even if 0 was asked),
    and the router behind it (for tests and embedding)."""

    kind: str
    address: str
    port: int
    router: Router
    server: XMPPServer | None = field(default=None, compare=False, repr=False)


class XMPPServer:
    """Server state shared by all sessions: config, storage, router, sessions."""

    def __init__(
        self,
        config: ServerConfig,
        store: AccountStore,
        ssl_context: _tls.TLSContext,
        certificate_der: bytes | None,
        db: sqlite3.Connection,
    ) -> None:
        self.config = config
        self.store = store
        #: the account store behind the login, registration and password limits
        self.accounts = Accounts(config, store)
        self.db = db  # the services' database connection
        self.ssl_context = ssl_context
        self.tls_info = _tls.server_tls_info(certificate_der)
        self.services = build_services(config, store, db, archive_writer=config.mam_writer_thread)
        self.services.client_sessions = partial(client_sessions, self)  # ad-hoc revoke
        self.router = Router(
            [
                *config.domains,
                *(AccountHost(d, Authentication.ANONYMOUS) for d in config.anonymous_domains),
            ],
            rng=secrets.token_bytes,
            account_exists=self.accounts.exists,
            services=self.services.services,
            hosts=component_hosts(config, self.services.hosts),  # XEP-0114 domains too
            clock=self.services.clock,
            federation=config.federation.enabled,
        )
        self.federation: Federation | None = None  # xmpp_trio/s2s.py, set by run_server
        limits = config.limits
        #: bound sessions (attached or detached), their timers and XEP-0198 policy
        self.manager = SessionManager(
            self.router,
            resume_timeout=limits.resume_timeout,
            max_unacked=limits.max_unacked,
            max_unacked_bytes=limits.max_unacked_bytes,
            idle_timeout=limits.idle_timeout,
        )
        self.stream_config = self.stream_config_for(config)
        #: live transports by the id of the session they carry
        self.sessions: dict[int, Session] = {}
        self.metrics = Metrics()
        self.connections = ConnectionCounter(limits.max_connections, limits.max_connections_per_ip)
        self.auth_backoff = self.accounts.auth_backoff
        self._next_id = 1
        #: sessions with output from the read being handled (see Session)
        self.batch: set[Session] | None = None
        #: The Persist effects not yet committed, the Load effects not yet answered.
        self.edge = StorageEdge(self.services, self.router, self.metrics)
        # Receipts handed back to the router by confirm(), in order.
        self._confirmations: deque[tuple[int, Hashable]] = deque()
        self._confirming = False
        #: where sessions' writer tasks run (set by run_server)
        self.nursery: trio.Nursery | None = None
        self.ready: Ready | None = None  # parked readers' dispatcher (_ready.py), open_server's
        # Stream timers (negotiation deadline, parser compaction): one entry per
        # connection, (when, sequence, session), checked lazily by run_timers so
        # that reads need no cancel scope of their own.
        self._timers: list[tuple[float, int, Session]] = []
        self._timer_seq = 0
        #: seconds without input after which a session's parser is compacted
        self.compact_after = _COMPACT_AFTER
        shortest = min(limits.negotiation_timeout, limits.idle_timeout / 2, _COMPACT_AFTER)
        self._timer_tick = min(1.0, max(0.01, shortest / 8))

    def stream_config_for(self, config: ServerConfig) -> StreamConfig:
        """The stream settings of new connections under ``config`` (built
        again on reload: streams already open keep theirs)."""
        limits = config.limits
        return StreamConfig(
            rng=secrets.token_bytes,
            domains=frozenset(config.hosted_domains),
            anonymous_domains=frozenset(config.anonymous_domains),
            tls_available=True,
            require_tls=config.require_tls,
            allow_plain=config.allow_plain,
            allow_anonymous=config.allow_anonymous,
            allow_registration=config.allow_registration,
            sasl2=config.sasl2,
            fast_token_lifetime=config.fast_token_lifetime,
            fast_rotate_within=config.fast_rotate_within,
            clock=self.services.clock,  # wall-clock time: token expiry (XEP-0484)
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
            sm_unacked_burst=limits.unacked_burst,  # a burst may pass them before an ack
            ask_before_bind=True,  # answered by manager.may_bind (max_sessions_per_account)
            decoy_iterations=config.scram_iterations,  # unknown users look like real ones
        )

    def new_id(self) -> int:
        """A fresh session id (connections of every kind share the numbering)."""
        self._next_id += 1
        return self._next_id - 1

    def count_stream_error(self, condition: StreamErrorCondition) -> None:
        self.metrics.stream_errors.labels(condition=condition.value).inc()

    def apply(self, effects: Sequence[SessionEffect]) -> None:
        """Carry out effects of the router and the session manager (and deferred work)."""
        if self.services.deferred.pending:
            start_deferred(self)
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
                case Persist():
                    self.edge.persists.append(effect)
                case Load():
                    self.edge.loads.append(effect)
                case RouteRemote() if self.federation is not None:
                    self.federation.send(effect)
                case RouteRemote():
                    self.apply(self.router.bounce(effect.element, _NO_REMOTE))
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
        if self.batch is None and self.edge and not self._confirming:
            self.commit()  # not part of a read's batch: commit at once

    def commit(self) -> None:
        """Commit the batch's writes and answer its reads (:meth:`StorageEdge.settle`)."""
        self.edge.settle(self.apply)

    def _close(
        self, session: Session, condition: StreamErrorCondition, text: str | None = None
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
        """A router call raised a database error (see :meth:`StorageEdge.failed`
        for the answer): the writes its services returned went nowhere, so
        they forget them (``Router.abandoned``), keeping the batch's others."""
        condition = self.edge.failed(exc, doing)
        self.apply(self.router.abandoned([p.op for p in self.edge.persists]))
        return condition

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
        self.commit()  # the deletes of all the receipts confirmed: one transaction

    async def handle(self, stream: trio.SocketStream, *, direct_tls: bool) -> None:
        """Serve one accepted TCP connection until it ends."""
        await self.serve(SocketTransport.from_trio(stream), direct_tls=direct_tls)

    async def serve(
        self, transport: Transport, *, direct_tls: bool = False, framing: Framing | None = None
    ) -> None:
        """Serve one client connection, on any :class:`Transport`, until it ends
        (``framing``: RFC 7395's for a WebSocket, secure by the listener's decision)."""
        session_id = self._next_id
        self._next_id += 1
        peer = transport.peer
        address = peer_address(peer)
        session = Session(self, session_id, transport, framing)
        SESSION.set(session_id)  # this task's log lines (and its children's) name it
        refusal = self.connections.refusal(address)
        if refusal is not None:
            await session.refuse(refusal, direct_tls=direct_tls)
            return
        self.connections.add(address)
        self.sessions[session_id] = session
        self.metrics.sessions_opened.inc()
        self.metrics.sessions.inc()
        log.debug("session %d: connection from %s", session_id, peer)
        try:
            await session.run(direct_tls=direct_tls)
        except TRANSPORT_ERRORS as exc:
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

    def schedule(self, session: Session, when: float) -> None:
        """Make ``when`` the session's timer entry (an older entry goes stale)."""
        self._timer_seq += 1
        session.timer_at = when
        heapq.heappush(self._timers, (when, self._timer_seq, session))

    def timer_changed(self, session: Session, conn: ServerConnection) -> None:
        """The session's deadline may have moved earlier (negotiation ended and
        compaction is due): schedule it."""
        due = self._deadline(session, conn)
        if due is not None and (session.timer_at is None or due < session.timer_at):
            self.schedule(session, due)

    def _deadline(self, session: Session, conn: ServerConnection) -> float | None:
        """The stream's next deadline: negotiation, else compaction once bound
        (None: none). Session timers (idle, resumption) are the manager's."""
        negotiation = conn.next_deadline()
        if negotiation is not None or not session.bound:
            return negotiation
        return self._compact_at(session)

    def _compact_at(self, session: Session) -> float | None:
        """When the session's parser is due for compaction (None: not before
        its next input)."""
        if session.compacted or self.compact_after <= 0:
            return None
        return session.last_input + self.compact_after

    async def run_timers(self) -> None:
        """Fire the streams' timers, the session manager's and the services',
        within ``_timer_tick`` of their time.

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
                    log.exception("could not write what is kept behind (logout times, archives)")
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
                    self.schedule(session, due)
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
            # The services' time-based work (caps queries that timed out), on
            # the services' clock.
            due = self.router.next_deadline()
            if due is not None and due <= self.services.clock():
                try:
                    self.apply(self.router.handle_timer())
                except Exception:
                    log.exception("internal error in a service timer")

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

    def _fire_timer(self, session: Session, conn: ServerConnection, now: float) -> None:
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
            self.schedule(session, due)

    def end_batch(self, batch: set[Session]) -> None:
        """Write the batch's output now; stanzas routed from here on are
        written at once, until ``self.batch`` is set again. The batch's
        writes are committed first (see :meth:`commit`)."""
        self.commit()
        self.batch = None
        for receiver in batch:
            receiver.push()
        batch.clear()

    async def _change_password(self, change: PasswordChange) -> None:
        """Carry out a password change (XEP-0077 §3.3) off the event loop, then
        answer it (and end the account's other sessions, see the service)."""
        error = await self.accounts.change_password(change)
        registration = self.services.registration
        self.apply(self.router.drain(registration.password_change_finished(change, error)))

    def end_sessions(
        self,
        account: JID,
        condition: StreamErrorCondition = StreamErrorCondition.POLICY_VIOLATION,
        *,
        text: str | None = None,
        removed: bool = False,
    ) -> None:
        """Kick: end every session of ``account``, live or detached, with the
        stream error ``condition`` and ``text`` (the administrator's operation,
        see :mod:`xmpp_sansio.server.admin`; ``removed``: the account is gone,
        :meth:`~xmpp_sansio.server.sessions.SessionManager.end_sessions`)."""
        log.info("ending the sessions of %s: %s", account, condition)
        effects = self.manager.end_sessions(account, condition, removed=removed)
        self.apply(with_text(effects, text))

    async def shutdown(self) -> None:
        """Close every stream with ``system-shutdown`` (RFC 6120 §4.9.3.22);
        room occupants first leave their rooms with 332 (XEP-0045 §7.14)."""
        if self.services.muc is not None:
            self.apply(self.router.drain(self.services.muc.shutdown()))
        self.apply(self.manager.close())
        for session in list(self.sessions.values()):
            if session.conn is not None:
                session.conn.close(StreamErrorCondition.SYSTEM_SHUTDOWN)
                self.count_stream_error(StreamErrorCondition.SYSTEM_SHUTDOWN)
                session.kick()
        with trio.move_on_after(CLOSE_GRACE):
            while self.sessions:
                await trio.sleep(0.01)


@asynccontextmanager
async def open_server(config: ServerConfig) -> AsyncIterator[XMPPServer]:
    """Open the stores, build the server and run its timers, without listeners:
    feed it connections with :meth:`XMPPServer.serve` (tests drive it over
    in-memory transports). On exit every stream is closed with
    ``system-shutdown`` and the stores are written and closed."""
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
        ssl_context, der = server_tls_material(config)
        server = XMPPServer(config, store, ssl_context, der, db)
        async with trio.open_nursery() as nursery:
            server.nursery = nursery
            nursery.start_soon(server.run_timers)
            server.ready = Ready.start(nursery, server)
            yield server
            await server.shutdown()
            nursery.cancel_scope.cancel()
    finally:
        if server is not None:
            try:
                server.services.close()  # what is kept behind; ends the archive's writer
            except sqlite3.Error:
                log.exception("could not write what is kept behind (logout times, archives)")
        db.close()
        store.close()


async def run_server(
    config: ServerConfig,
    *,
    task_status: trio.TaskStatus[list[BoundListener]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run the server until cancelled or sent SIGINT/SIGTERM.

    ``task_status.started`` receives the listeners with their real ports.
    """
    async with open_server(config) as server:
        nursery = server.nursery
        assert nursery is not None
        bound: list[BoundListener] = []
        web = HTTPService(server)  # the http and https listeners (xmpp_trio/http.py)
        for spec in config.listeners:
            listeners = await trio.open_tcp_listeners(spec.port, host=bind_host(spec.address))
            handler = (
                web.handler(spec.kind)
                or component_handler(server, spec.kind)
                or s2s_handler(server, spec.kind)
                or partial(server.handle, direct_tls=spec.kind == "c2s-directtls")
            )
            for listener in listeners:
                host, port = listener.socket.getsockname()[:2]
                bound.append(BoundListener(spec.kind, host, port, server.router, server))
                nursery.start_soon(trio.serve_listeners, handler, [listener])
            where = ", ".join(f"{b.address} port {b.port}" for b in bound[-len(listeners) :])
            log.info("listening for %s on %s", spec.kind, where)
        if config.federation.enabled:  # the s2s listener (xmpp_trio/s2s.py)
            for host, port in await start_federation(server, nursery):
                bound.append(BoundListener("s2s", host, port, server.router, server))
        web.start(bound, nursery)  # uploads: their URL, their expiry
        if config.metrics.enabled:
            metrics = config.metrics
            port = await nursery.start(serve_metrics, server.metrics, metrics.address, metrics.port)
            bound.append(BoundListener("metrics", metrics.address, port, server.router, server))
        log.info(
            "serving %s", ", ".join(config.hosted_domains + tuple(server.router.hosts.services))
        )
        admin = Admin(server, bound)
        await nursery.start(admin.serve, admin_socket_path(config))
        task_status.started(bound)
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM, signal.SIGHUP) as signals:
            nursery.start_soon(admin.on_signals, signals)
            await admin.stop_requested.wait()
