"""One client connection of the server: its transport, its sans-IO stream,
and the task that reads it.

The reader feeds the :class:`~xmpp_sansio.stream.connection.ServerConnection`
and hands what it reports to the server (stanzas to the router, bound
sessions to the session manager, credentials and registrations to
:class:`~xmpp_trio._accounts.Accounts`). Output is written without waiting for
the peer: the stanzas routed to a session during one pass of Trio's scheduler
(every reader that had input) go out at the end of that pass, one write per
receiving session (:class:`_PassWrites`). Only when a peer's buffer is full
(or a close is under way) does a session get a writer task, started on demand
and ended once it has flushed, so a slow reader never blocks whoever sends to
it.
"""

from __future__ import annotations

import logging
import sqlite3
import ssl
import time
from collections.abc import Callable, Hashable, Sequence
from contextlib import suppress
from typing import Any, Protocol

import trio

from xmpp_sansio.errors import RemoteProtocolError, StanzaErrorCondition, StreamErrorCondition
from xmpp_sansio.sasl import SASLCondition
from xmpp_sansio.server import Router
from xmpp_sansio.server.sessions import SessionEffect, SessionManager
from xmpp_sansio.stream.config import ServerConfig as StreamConfig
from xmpp_sansio.stream.connection import ServerConnection, State, TLSInfo
from xmpp_sansio.stream.events import (
    Authenticated,
    AuthenticationFailed,
    BindRequested,
    ClientStateChanged,
    ConnectionClosed,
    CredentialsRequested,
    CredentialsUpgradable,
    CredentialsUpgraded,
    DerivationRequested,
    Event,
    FastTokenIssued,
    FastTokensRequested,
    FastTokenUsed,
    RegistrationRequested,
    ResourceBound,
    ResumeRequested,
    StanzaReceived,
    StanzasAcknowledged,
    StreamClosed,
    StreamErrorReceived,
    StreamManagementEnabled,
    StreamResumed,
    TLSRequested,
    UpgradeTasksRequested,
)
from xmpp_sansio.stream.framing import Framing
from xmpp_sansio.stream.state import READY
from xmpp_sansio.xml.writer import shared_writes

from . import _tls
from ._accounts import Accounts
from ._openssl_stream import TLSContext
from ._ready import READ, Ready, Resume
from ._transport import SocketTransport, Transport
from .config import ServerConfig
from .limits import TokenBucket, loggable
from .metrics import Metrics
from .services import ServerServices

__all__ = ["CLOSE_GRACE", "TRANSPORT_ERRORS", "Session"]

log = logging.getLogger("xmpp_trio.server")

_RECEIVE_SIZE = 65536
TRANSPORT_ERRORS = (trio.BrokenResourceError, trio.ClosedResourceError, ssl.SSLError, OSError)
CLOSE_GRACE = 5.0
_SLICE = 0.005  # seconds of stanza handling after which a reader lets other tasks run
_SHARED_WRITES = shared_writes()  # the scope object (reentrant): no call per stanza to get it


class Server(Protocol):
    """What a session uses of :class:`~xmpp_trio.server.XMPPServer`."""

    config: ServerConfig
    ssl_context: TLSContext
    stream_config: StreamConfig
    tls_info: TLSInfo
    router: Router
    manager: SessionManager
    accounts: Accounts
    services: ServerServices
    metrics: Metrics
    nursery: trio.Nursery | None
    batch: set[Session] | None
    ready: Ready | None  # the readiness dispatcher (None: readers wait on Trio)

    def apply(self, effects: Sequence[SessionEffect]) -> None: ...
    def confirm(self, session_id: int, receipts: Sequence[Hashable]) -> None: ...
    def count_stream_error(self, condition: StreamErrorCondition) -> None: ...
    def storage_failed(self, exc: sqlite3.Error, doing: str) -> StanzaErrorCondition: ...
    def schedule(self, session: Session, when: float) -> None: ...
    def timer_changed(self, session: Session, conn: ServerConnection) -> None: ...
    def end_batch(self, batch: set[Session]) -> None: ...


class Session:
    """One client connection: the sans-IO connection plus its transport.

    ``id`` is the router's session id; a connection that resumes a session
    (XEP-0198 §5) takes over the id of that session.
    """

    def __init__(
        self,
        server: Server,
        session_id: int,
        transport: Transport,
        framing: Framing | None = None,
    ):
        self.server = server
        #: the stream's framing when not TCP (WebSocket, RFC 7395: the
        #: transport gives one message per read, fed to ``receive_message``)
        self.framing = framing
        self.id = session_id
        self.transport = transport
        self.peer = transport.peer
        self.conn: ServerConnection | None = None
        # The writer task, while one runs (see kick); None: nobody waits to write.
        self._writer: trio.CancelScope | None = None
        self._writing_over = False  # the session ended: no writer starts again
        self._send_lock = trio.Lock()
        self.bound = False  # bound (or resumed): the session manager has it
        self.agent_id: str | None = None  # the SASL2 client (XEP-0388 user-agent id)
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
        self._read_size = min(_RECEIVE_SIZE, self.bucket.max_read())  # the bucket's burst
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
        with suppress(*TRANSPORT_ERRORS):
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
        if conn.state is not READY:  # a global: State.READY is slow in 3.11 (state.py)
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
        """Write what the connection queued, without waiting for the peer: at
        the end of the scheduler's pass (see :class:`_PassWrites`), so the
        stanzas that several readers routed to this session in one pass go out
        in one write; at once when a writer is at work, output waits, receipts
        are to be confirmed or the stream is closing (:meth:`push_now`)."""
        conn = self.conn
        if conn is None:
            return
        if self._now_only(conn):
            self.push_now()
        elif conn.may_have_output():  # not the reader itself, that routed but got nothing
            _PassWrites.hold(self)

    def _now_only(self, conn: ServerConnection) -> bool:
        """Whether output must take :meth:`push_now`'s path, not wait for the
        end of the pass: a writer is at work or output waits for the peer, the
        session overflowed, receipts wait to be confirmed once written, or the
        stream is not ready (negotiation, a close under way)."""
        return bool(
            self._sending
            or self.pending
            or self.overflowed
            or self.unwritten
            or conn.state is not READY
        )

    def push_now(self) -> None:
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
        if data and self._send(conn, data):
            self.kick()
        if self.unwritten and not self.pending and not self.overflowed:
            self._written()
        if conn.should_close:
            self.kick()

    def write_held(self, soon: Callable[[Callable[[], object]], None]) -> None:
        """At the end of the scheduler's pass: write what :meth:`push` held.
        Runs outside any task (a Trio instrument), so whatever may start the
        writer task or route (receipts) is left to ``soon`` (a task, at once)."""
        conn = self.conn
        if conn is None:
            return
        if self._now_only(conn):
            soon(self.push_now)
            return
        data = conn.data_to_send()
        if data and self._send(conn, data):
            soon(self.kick)

    def _send(self, conn: ServerConnection, data: bytes) -> bool:
        """Write ``data`` without waiting; what the socket does not take goes
        to ``pending`` (within the output bound). True if some is left: the
        writer task must take over."""
        try:
            sent = self.transport.send_nowait(data)
        except TRANSPORT_ERRORS:
            sent = 0  # the writer meets the error again and ends the session
        if sent == len(data):
            return False
        self.progress_at = trio.current_time()
        self.pending += data[sent:]
        self._check_bound(conn)
        return True

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
        if self.server.manager.may_detach(self.id):
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
                except TRANSPORT_ERRORS:
                    # The peer is gone; the reader sees EOF and ends the session.
                    self.closing_flushed.set()
                    self.transport.close()
                    return
                if conn.should_close:
                    # Everything, the stream error and </stream:stream> included,
                    # is out. The peer should close the connection; if it does
                    # not, drop it, so the reader ends and the session with it.
                    self.closing_flushed.set()
                    await trio.sleep(CLOSE_GRACE)
                    self.transport.close()
        finally:
            self._writer = None

    # -- the reader task -------------------------------------------------------------

    async def run(self, *, direct_tls: bool) -> None:
        """Negotiate and serve the stream until it ends, then flush and close
        (the caller then unbinds or detaches the session)."""
        with trio.CancelScope() as self.scope:
            await self._run(direct_tls=direct_tls)

    async def _run(self, *, direct_tls: bool) -> None:
        server = self.server
        negotiation_timeout = server.config.limits.negotiation_timeout
        if direct_tls:
            handshaken = False
            with trio.move_on_after(negotiation_timeout):
                try:
                    await self.transport.start_tls(server.ssl_context, server_side=True)
                except TRANSPORT_ERRORS as exc:
                    self._handshake_failed(exc)
                    return
                handshaken = True
            if not handshaken:  # timed out: nothing can be said, in TLS or not
                return
        conn = ServerConnection(
            server.stream_config,
            tls_active=direct_tls or self.framing is not None,
            tls_info=self._tls_info() if direct_tls else None,
            framing=self.framing,
        )
        self.conn = conn
        conn.start_timer(trio.current_time(), negotiation_timeout)
        deadline = conn.next_deadline()
        if deadline is not None:
            server.schedule(self, deadline)
        with trio.CancelScope() as self.read_scope:
            while not conn.should_close:
                if not await self._read_once(conn):
                    break
        # Let the writer flush everything up to the close (never cancel it in
        # the middle of a send), then give up on the peer.
        with trio.move_on_after(CLOSE_GRACE):
            self.kick()
            await self.closing_flushed.wait()
        self.stop_writer()
        with trio.move_on_after(1), trio.CancelScope(shield=True), suppress(*TRANSPORT_ERRORS):
            await self.flush()

    async def refuse(self, refusal: str, *, direct_tls: bool) -> None:
        """Over a connection limit: send a stream header and a stream error, then
        close (RFC 6120 §4.9.1.1). Too many connections in total is
        ``resource-constraint`` (§4.9.3.17: the server "lacks the system resources
        necessary to service the stream"); too many from one address is
        ``policy-violation`` (§4.9.3.15: a local service policy)."""
        server = self.server
        if refusal == "total":
            condition, text = StreamErrorCondition.RESOURCE_CONSTRAINT, "too many connections"
        else:
            condition = StreamErrorCondition.POLICY_VIOLATION
            text = "too many connections from your address"
        log.warning("session %d (%s): refused, %s", self.id, self.peer, text)
        server.metrics.connections_refused.labels(limit=refusal).inc()
        server.count_stream_error(condition)
        try:
            with trio.move_on_after(CLOSE_GRACE):
                if direct_tls:
                    await self.transport.start_tls(server.ssl_context, server_side=True)
                conn = ServerConnection(
                    server.stream_config, tls_active=direct_tls, framing=self.framing
                )
                conn.close(condition, text)
                await self.transport.send_all(conn.data_to_send())
        except TRANSPORT_ERRORS as exc:
            log.debug("session %d: transport ended: %r", self.id, exc)
        finally:
            self.transport.close()

    async def _receive(self) -> bytes:
        """One read within the session's read rate (b"" once the transport
        ended), stamping ``last_input``."""
        try:
            # Every TLS record that arrived, unless the read rate is being held
            # back: then one record per read, as the bucket's wait assumes.
            size = self._read_size
            data = await self.transport.receive_some(size, gather=self.bucket.tokens >= size)
        except TRANSPORT_ERRORS as exc:
            log.debug("session %d: transport ended: %r", self.id, exc)
            data = b""
        self.last_input = trio.current_time()
        return data

    async def _read_once(self, conn: ServerConnection) -> bool:
        """Read once and act on what came (timers are the server's business).

        A ready stream whose next read must wait for the socket parks on the
        server's readiness dispatcher (:mod:`._ready`) instead, which runs
        :meth:`_step` for it as input arrives and hands it back here with
        whatever needs this task (:meth:`_resumed`)."""
        transport = self.transport
        if type(transport) is SocketTransport and transport.would_wait and conn.state is READY:
            ready = self.server.ready
            if ready is not None and ready.running:
                resume = await ready.park(self._step, transport)
                if resume.data is not None:
                    return await self._resumed(conn, resume)
        data = await self._receive()
        self._took(conn, data)
        await self._events(conn)
        delay = self._read_done(conn, data)
        if delay > 0:
            # Backpressure (the read rate limit): wait before reading more.
            await trio.sleep(delay)
        return bool(data)

    def _took(self, conn: ServerConnection, data: bytes) -> None:
        """Hand one read's bytes (``b""``: the end) to the connection."""
        server = self.server
        if self.bound:
            server.manager.received(self.id, self.last_input)
        if self.compacted:
            self.compacted = False
            server.timer_changed(self, conn)  # compaction is due again
        if data and self.framing is not None:
            conn.receive_message(data)
        else:
            conn.receive_data(data)

    async def _events(self, conn: ServerConnection, first: Event | None = None) -> None:
        """:meth:`_handle_events`, a stream error ending them."""
        try:
            await self._handle_events(conn, first)
        except RemoteProtocolError as exc:
            self._stream_error(exc)

    def _stream_error(self, exc: RemoteProtocolError) -> None:
        log.info("session %d (%s): stream error %s", self.id, self.peer, exc)
        self.server.count_stream_error(exc.condition)

    def _read_done(self, conn: ServerConnection, data: bytes) -> float:
        """After a read's events: confirm what the peer acknowledged, write,
        and charge the read to the read rate (the seconds to wait before the
        next read)."""
        server = self.server
        if self.bound:  # acknowledged stanzas were handed over (XEP-0198 §4)
            receipts = server.manager.take_confirmed(self.id)
            if receipts:
                server.confirm(self.id, receipts)
        batch = server.batch
        if batch is not None:  # a dispatcher round: written after its commit
            batch.add(self)
        else:
            self.push()
        return self.bucket.consume(len(data), self.last_input) if data else 0.0

    async def _resumed(self, conn: ServerConnection, resume: Resume) -> bool:
        """Finish, on this task, a read the dispatcher began (see :meth:`_step`)."""
        data = resume.data or b""
        if resume.routing:
            if not (resume.sliced and conn.should_close):  # e.g. replaced meanwhile
                await self._events(conn, resume.event)
            delay = self._read_done(conn, data)
        else:
            delay = resume.delay
        if delay > 0:
            await trio.sleep(delay)
        return bool(data)

    def _step(self, transport: SocketTransport) -> Resume | None:
        """The readiness dispatcher's read of this parked session: what
        :meth:`_read_once` does, without waiting. None: the session stays
        parked. Otherwise the :class:`Resume` its task carries on from: the
        end of the stream, an event other than a stanza (handed over unhandled,
        before the read's later events), a time slice used up, a wait due to
        the read rate, a stream no longer ready; ``data`` None where nothing
        was read (TLS must write first). Routes into the dispatcher's round's
        batch (``server.batch``), which commits once and writes at the round's
        end (:mod:`._ready`); a batch of its own when called outside one."""
        conn = self.conn
        assert conn is not None
        size = self._read_size
        try:
            data = transport.receive_nowait(size, gather=self.bucket.tokens >= size)
        except ssl.SSLWantWriteError:
            return READ
        except TRANSPORT_ERRORS as exc:
            log.debug("session %d: transport ended: %r", self.id, exc)
            data = b""
        if data is None:
            return None  # a record still arriving: the socket says when
        self.last_input = trio.current_time()
        self._took(conn, data)
        if not data:
            return Resume(data, routing=True)
        server = self.server
        round_batch = server.batch  # the dispatcher's round's (committed at its end)
        own = round_batch is None
        batch: set[Session] = set() if round_batch is None else round_batch
        if own:
            server.batch = batch
        event: Event | bool | None = None
        try:
            event = self._route_read(conn)
        except RemoteProtocolError as exc:
            self._stream_error(exc)
        finally:
            if own:
                server.end_batch(batch)
        if isinstance(event, bool):  # the time slice is used up: the task goes on
            return Resume(data, routing=True, sliced=True)
        if event is not None:  # for the task to handle first
            return Resume(data, routing=True, event=event)
        delay = self._read_done(conn, data)
        if delay > 0 or conn.should_close or conn.state is not READY:
            return Resume(data, delay=delay)
        return None

    def _route_read(self, conn: ServerConnection) -> Event | bool | None:
        """Route the read's stanzas (:meth:`_step`); return the first other
        event its task must handle, True once the time slice is used up."""
        since = time.perf_counter()
        while (event := conn.next_event()) is not None:
            if isinstance(event, StanzaReceived):
                self._route(event)
                if time.perf_counter() - since > _SLICE:
                    return True
            elif not isinstance(event, StanzasAcknowledged):  # nothing to do (see below)
                return event
        return None

    def _route(self, event: StanzaReceived) -> None:
        """Route one stanza the peer sent (RFC 6120 §10) and carry out what follows."""
        server = self.server
        server.metrics.stanzas_in.inc()
        with _SHARED_WRITES:  # the stanza is serialised once (writer.py)
            try:
                effects = server.router.route(self.id, event.element, owned=True)
            except sqlite3.Error as exc:
                condition = server.storage_failed(exc, f"session {self.id}: routing")
                effects = server.router.failed(self.id, event.element, condition)
            server.apply(effects)

    async def _handle_events(self, conn: ServerConnection, first: Event | None = None) -> None:
        """Act on the events of one read (``first`` before the connection's
        next). Stanzas routed meanwhile are written
        when the read is done, one write per receiving session (a batch); the
        batch is flushed before anything that waits, so no other task's output
        is ever held up by this one."""
        server = self.server
        batch: set[Session] = set()
        server.batch = batch
        try:
            if first is None or await self._handle_event(conn, first, batch):
                await self._handle_events_batched(conn, batch)
        finally:
            server.end_batch(batch)

    async def _handle_events_batched(self, conn: ServerConnection, batch: set[Session]) -> None:
        server = self.server
        since = time.perf_counter()
        while (event := conn.next_event()) is not None:
            if isinstance(event, StanzaReceived):
                self._route(event)
                if time.perf_counter() - since > _SLICE:
                    # One read may hold thousands of stanzas: let the other
                    # clients (and a cancellation, e.g. SIGTERM) in between.
                    server.end_batch(batch)
                    await trio.sleep(0)
                    server.batch = batch
                    if conn.should_close:  # e.g. replaced meanwhile
                        return
                    since = time.perf_counter()
            elif not await self._handle_event(conn, event, batch):
                return

    async def _handle_event(
        self, conn: ServerConnection, event: Event, batch: set[Session]
    ) -> bool:
        """Act on an event other than a stanza; False: read no further (a
        STARTTLS handshake failed)."""
        server = self.server
        accounts = server.accounts
        if isinstance(event, CredentialsRequested):
            wait = accounts.blocked_for(self.peer, conn.domain, event.username)
            if wait > 0:
                # Backing off after repeated failures: refuse without checking
                # the password, with temporary-auth-failure (RFC 6120 §6.5.12).
                # The stream stays open; the refusal counts toward the
                # stream's max_auth_attempts like any failure (§6.4.5).
                accounts.log(
                    "session %d: authentication of %s from %s refused, back-off %.0f s",
                    self.id,
                    loggable(event.username),
                    self.peer,
                    wait,
                )
                conn.refuse_credentials(SASLCondition.TEMPORARY_AUTH_FAILURE)
                return True
            conn.provide_credentials(accounts.credentials(conn.domain, event))
        elif isinstance(event, (FastTokensRequested, FastTokenUsed, FastTokenIssued)):
            accounts.fast(conn, self.peer, server.services.fast_tokens, event, time.time())
        elif isinstance(event, (UpgradeTasksRequested, CredentialsUpgraded)):
            accounts.upgrade_task(conn, event)
        elif isinstance(event, DerivationRequested):
            server.end_batch(batch)
            salted = await accounts.derive(event)
            server.batch = batch
            if conn.state is State.AWAIT_DERIVATION:  # not closed meanwhile
                conn.provide_derived(salted)
        elif isinstance(event, CredentialsUpgradable):
            server.end_batch(batch)
            await accounts.upgrade(event)
            server.batch = batch
        elif isinstance(event, BindRequested):
            most = server.config.limits.max_sessions_per_account
            if server.manager.may_bind(event.jid, most):
                conn.bind_accepted()
            else:
                log.warning(
                    "session %d: bind of %s from %s refused, %d sessions already",
                    self.id,
                    event.jid,
                    self.peer,
                    most,
                )
                conn.bind_refused(StanzaErrorCondition.RESOURCE_CONSTRAINT)
        elif isinstance(event, RegistrationRequested):
            server.end_batch(batch)
            result = await accounts.register(self.id, self.peer, conn.domain, event)
            server.batch = batch
            conn.registration_result(result)
        elif isinstance(event, TLSRequested):
            if conn.should_close:
                return True  # already failed (e.g. plaintext injected after <starttls/>)
            server.end_batch(batch)
            handshaken = await self._starttls(conn)
            server.batch = batch
            return handshaken
        elif isinstance(event, ResourceBound):
            self.bound = True
            server.timer_changed(self, conn)
            log.info("session %d: %s bound from %s", self.id, event.jid, self.peer)
            server.apply(server.manager.bind(self.id, conn, event.jid, trio.current_time()))
            if event.carbons:  # Bind 2 (XEP-0386 §3.2)
                server.services.carbons.enable(self.id)
        elif isinstance(event, StreamManagementEnabled):
            server.manager.stream_management_enabled(self.id, event)
            log.debug("session %d: stream management on, resumable=%s", self.id, event.resume)
        elif isinstance(event, ResumeRequested):
            server.apply(server.manager.resume(self.id, conn, event, trio.current_time()))
            server.timer_changed(self, conn)
        elif isinstance(event, StreamResumed):
            log.debug("session %d: retransmitted %d", self.id, len(event.retransmitted))
        elif isinstance(event, ClientStateChanged):
            log.debug("session %d: client %s", self.id, "active" if event.active else "inactive")
        elif isinstance(event, Authenticated):
            log.info("session %d: authenticated %s with %s", self.id, event.jid, event.mechanism)
            accounts.succeeded(event.jid)
            if event.user_agent is not None:  # XEP-0388: the account's clients
                self.agent_id = event.user_agent.id
                server.services.fast_tokens.seen(event.jid, event.user_agent, time.time())
        elif isinstance(event, AuthenticationFailed):
            server.metrics.auth_failures.inc()
            accounts.failed(self.peer, conn.domain, event)
            accounts.log(
                "session %d: authentication failed for %s from %s: %s%s%s",
                self.id,
                loggable(event.username),
                self.peer,
                event.condition,
                f" ({loggable(event.text)})" if event.text else "",
                "" if event.credentials_checked else " (no credential checked)",
            )
        elif isinstance(event, (StreamClosed, StreamErrorReceived, ConnectionClosed)):
            log.debug("session %d: %s", self.id, event)
        return True

    async def _starttls(self, conn: ServerConnection) -> bool:
        """Flush ``<proceed/>`` and run the TLS handshake (RFC 6120 §5.4.3.3) within
        the negotiation deadline. On a timeout or a broken handshake the transport
        is closed (nothing more can be said, in TLS or not) and False returned."""
        server = self.server
        deadline = conn.next_deadline()
        handshaken = False
        with trio.move_on_at(float("inf") if deadline is None else deadline):
            try:
                await self.flush()
                # RFC 6120 §11.7 whitespace after <starttls/>, bounded like a stanza.
                if await self.transport.discard_whitespace(
                    server.config.limits.max_stanza_size_preauth
                ):
                    await self.transport.start_tls(server.ssl_context, server_side=True)
                    handshaken = True
            except TRANSPORT_ERRORS as exc:
                self._handshake_failed(exc)
        if not handshaken:
            self.transport.close()
            return False
        conn.tls_established(self._tls_info())
        return True

    def _handshake_failed(self, exc: BaseException) -> None:
        """Log a failed TLS handshake at info, with the peer's address (a
        client that does not trust the certificate shows up here)."""
        cause = exc.__cause__ or exc
        log.info("session %d: TLS handshake with %s failed: %s", self.id, self.peer, cause)

    def _tls_info(self) -> TLSInfo:
        """The channel bindings of the connection's TLS (RFC 5929, XEP-0440)."""
        transport = self.transport
        return _tls.connection_tls_info(
            self.server.tls_info,
            tls_version=transport.tls_version(),
            finished=transport.tls_unique(),
            exporter=transport.tls_exporter(),
        )


class _PassWrites(trio.abc.Instrument):
    """Writes held to the end of the scheduler's pass (issue 24).

    A session's output used to be written at the end of each read that routed
    to it: with many clients each read routes a stanza or two to other
    sessions, so nearly every delivered stanza cost a TLS record and a
    ``write`` of its own. Trio runs every runnable task once per pass and then
    waits for I/O; :meth:`before_io_wait` (once per pass, before that wait)
    writes each held session once, with everything routed to it during the
    pass. Nothing waits longer than the pass it was routed in: no timer, no
    delay beyond the tasks already runnable. One per ``trio.run`` (a
    ``RunVar``, added as an instrument at the run's first hold), so servers
    in runs of their own, in other threads, do not share it."""

    def __init__(self, token: trio.lowlevel.TrioToken) -> None:
        self.sessions: dict[Session, None] = {}  # insertion order: who routed first
        self._token = token

    @staticmethod
    def hold(session: Session) -> None:
        """Write ``session`` at the end of this pass."""
        try:
            writes = _PASS_WRITES.get()
        except LookupError:  # the run's first
            writes = _PassWrites(trio.lowlevel.current_trio_token())
            _PASS_WRITES.set(writes)
            trio.lowlevel.add_instrument(writes)
        writes.sessions[session] = None

    def before_io_wait(self, timeout: float) -> None:
        sessions = self.sessions
        token = self._token

        def soon(call: Callable[[], object]) -> None:
            token.run_sync_soon(_guarded, call)

        while sessions:
            held = list(sessions)
            sessions.clear()
            for session in held:
                try:
                    session.write_held(soon)
                except Exception:  # a bug costs that connection only (as a reader's would)
                    log.exception("session %d: writing held output", session.id)


def _guarded(call: Callable[[], object]) -> None:
    """Run ``call`` from Trio's ``run_sync_soon`` task, where an exception
    would end the whole run: log it instead (it concerns one connection)."""
    try:
        call()
    except Exception:
        log.exception("writing held output")


_PASS_WRITES: trio.lowlevel.RunVar[_PassWrites] = trio.lowlevel.RunVar("pass_writes")
