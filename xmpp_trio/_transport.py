"""The server's byte transport: a non-blocking TCP socket, with TLS done by
OpenSSL on the socket itself.

``trio.SSLStream`` runs OpenSSL over memory BIOs and moves every record
through Python: for a chat server that sends one small stanza at a time, that
pumping was about a fifth of the server's CPU. Here the socket is a plain
non-blocking :class:`socket.socket` (or an :class:`ssl.SSLSocket` once TLS is
on, RFC 6120 §5 for STARTTLS, XEP-0368 for direct TLS), every read and write
is one C call, and Trio is used only to wait for readiness
(:func:`trio.lowlevel.wait_readable` / :func:`~trio.lowlevel.wait_writable`).

:meth:`SocketTransport.send_nowait` never waits, so a stanza routed to a
session can be written by whichever task routed it, without waking the
session's writer task: the writer only takes over when the peer's socket
buffer is full.

OpenSSL rule kept by the callers: after a write that would block, the next
write must start with the same bytes and be at least as long (OpenSSL
remembers how much of the record it already sent). The server's output
buffer only grows at its tail and writes are capped at :data:`SEND_CHUNK`
bytes, which keeps both true.
"""

from __future__ import annotations

import collections
import contextlib
import fcntl
import socket
import ssl
import sys
import termios
from collections.abc import Callable
from typing import Final, Protocol

import trio

from xmpp_sansio.http import WebSocketStream

from . import _read_ahead
from ._openssl_stream import OpenSSLSocket, TLSContext

__all__ = [
    "SEND_CHUNK",
    "BoshTransport",
    "SocketTransport",
    "Transport",
    "WebSocketTransport",
]

#: The most one write hands to the kernel (or to OpenSSL) at a time.
SEND_CHUNK: Final = 65536

_DISCARD_READS: Final = 4  # at most 256 KiB of unread input discarded on close
_PEEK_BYTES: Final = 64  # whitespace looked at per read before a STARTTLS handshake
_WOULD_BLOCK_READ = (BlockingIOError, InterruptedError, ssl.SSLWantReadError)
_TLS_SOCKETS = (ssl.SSLSocket, OpenSSLSocket)  # tls_backend "stdlib" and "openssl"
_RECORD_HEADER: Final = 5  # bytes of a TLS record's header (RFC 8446 §5.1)
#: The fewest bytes a record adds to its content: header and 16-byte AEAD tag, and
#: TLS 1.3's content type (RFC 8446 §5.2) or TLS 1.2 ChaCha20-Poly1305's nothing more
#: (RFC 7905); AES-GCM in TLS 1.2 adds an 8-byte explicit nonce too (RFC 5288 §3).
_RECORD_OVERHEAD: Final = 21
_COUNT = bytes(4)  # FIONREAD's argument: a C int


def _unread(fd: int) -> int:
    """Bytes the kernel holds unread on ``fd`` (0 if it cannot say)."""
    try:
        return int.from_bytes(fcntl.ioctl(fd, termios.FIONREAD, _COUNT), sys.byteorder)
    except OSError:
        return 0


class Transport(Protocol):
    """What the server needs of a client connection's byte stream: TCP and TLS
    sockets (:class:`SocketTransport`), in-memory pipes in tests
    (:class:`~xmpp_trio._memory_transport.MemoryTransport`), WebSocket and
    BOSH. One reader task and one writer at a time.

    :meth:`send_nowait` is the hot path: it writes what the peer takes now
    and never waits, so the task that routed a stanza writes it itself; the
    writer task only calls :meth:`wait_send` once the peer stops reading."""

    peer: str

    @property
    def closed(self) -> bool: ...

    async def receive_some(self, max_bytes: int, *, gather: bool = False) -> bytes:
        """Up to ``max_bytes`` bytes; ``b""`` at the end of the stream. With
        ``gather``, a TLS read also takes the records that arrived behind the
        first (see :meth:`SocketTransport.receive_some`); without, it returns
        at most one record's content, as an ``SSL_read`` does."""
        ...

    def send_nowait(self, data: bytes | bytearray | memoryview) -> int:
        """Write what the peer takes now; the number of bytes written (0: would block)."""
        ...

    async def wait_send(self) -> None:
        """Wait until a write may make progress."""
        ...

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        """Write all of ``data``, waiting as needed."""
        ...

    async def start_tls(
        self, context: TLSContext, *, server_side: bool, server_hostname: str | None = None
    ) -> None:
        """Run a TLS handshake on the stream (STARTTLS, RFC 6120 §5; direct TLS, XEP-0368)."""
        ...

    async def discard_whitespace(self, limit: int) -> bool:
        """Drop the whitespace before the peer's first TLS record (see
        :meth:`SocketTransport.discard_whitespace`)."""
        ...

    def tls_version(self) -> str | None: ...

    def tls_unique(self) -> bytes | None: ...

    def tls_exporter(self) -> bytes | None:
        """``tls-exporter`` data (RFC 9266 §2) where the TLS backend exports it."""
        ...

    def close(self) -> None:
        """Close now (idempotent); waiting tasks get :class:`trio.ClosedResourceError`."""
        ...


class _Base:
    """What both transports share: ``closed``, the check that raises once
    closed, and :meth:`send_all` on top of ``send_nowait``/``wait_send``."""

    __slots__ = ()
    _closed: bool

    @property
    def closed(self) -> bool:
        return self._closed

    def _check(self) -> None:
        if self._closed:
            raise trio.ClosedResourceError("transport closed")

    def send_nowait(self, data: bytes | bytearray | memoryview) -> int:
        raise NotImplementedError

    async def wait_send(self) -> None:
        raise NotImplementedError

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        """Write all of ``data``, waiting as needed."""
        await trio.lowlevel.checkpoint_if_cancelled()
        view = memoryview(data)
        while view:
            sent = self.send_nowait(view)
            if sent:
                view = view[sent:]
            else:
                await self.wait_send()


class SocketTransport(_Base):
    """One TCP connection, optionally under TLS; used by one reader task and
    one writer at a time."""

    __slots__ = (
        "_closed",
        "_drained",
        "_on_close",
        "_pending",
        "_records",
        "_recv",
        "_send",
        "_send_needs_read",
        "_sock",
        "peer",
    )

    def __init__(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock: socket.socket = sock
        # The socket's (or its TLS object's) read and write: see _tls_calls.
        self._recv: Callable[[int], bytes] = sock.recv
        self._send: Callable[[bytes | bytearray | memoryview], int] = sock.send
        self._closed = False
        self._send_needs_read = False
        self._records = False  # TLS is on: a read takes every record that arrived
        # With OpenSSL's read-ahead on (see _read_ahead): its SSL_has_pending.
        self._pending: Callable[[], int] | None = None
        # The last read left OpenSSL holding nothing: the next waits first.
        self._drained = False
        #: called once at :meth:`close`, before the socket closes (the readiness
        #: dispatcher's: a parked reader's descriptor leaves its epoll set first)
        self._on_close: Callable[[], None] | None = None
        try:
            host, port, *_ = sock.getpeername()
            self.peer = f"{host}:{port}"
        except (OSError, ValueError):
            self.peer = "?"

    @classmethod
    def from_trio(cls, stream: trio.SocketStream) -> SocketTransport:
        """Take over the socket of an accepted Trio stream (the stream is left
        without a socket and must not be used again)."""
        trio_sock = stream.socket
        family, type_, proto = trio_sock.family, trio_sock.type, trio_sock.proto
        fd = trio_sock.detach()
        return cls(socket.socket(family, type_, proto, fileno=fd))

    async def start_tls(
        self, context: TLSContext, *, server_side: bool, server_hostname: str | None = None
    ) -> None:
        """Wrap the socket in TLS and run the handshake (cancellable; on
        cancellation or failure the caller closes the transport)."""
        self._check()
        # The server's contexts only (a client's may be its caller's, read by
        # code that polls the socket); copied into each connection at SSL_new.
        ahead = server_side and isinstance(context, ssl.SSLContext) and _read_ahead.enable(context)
        tls = context.wrap_socket(
            self._sock,
            server_side=server_side,
            server_hostname=server_hostname,
            do_handshake_on_connect=False,
        )
        self._sock = tls
        self._recv, self._send = _tls_calls(tls)
        self._records = True
        if ahead and isinstance(tls, ssl.SSLSocket):
            self._pending = _read_ahead.pending(tls)
        while True:
            self._check()
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                await trio.lowlevel.wait_readable(tls)
            except ssl.SSLWantWriteError:
                await trio.lowlevel.wait_writable(tls)
        await trio.lowlevel.checkpoint_if_cancelled()

    async def discard_whitespace(self, limit: int) -> bool:
        """Before a STARTTLS handshake: read and drop the XML whitespace that
        precedes the peer's first TLS record (a client that writes
        ``<starttls/>\\n`` may have its newline arrive after ``<starttls/>`` was
        answered; RFC 6120 §5.3.3 says not to send it, peers do). A TLS record
        never starts with whitespace (its first byte is a content type, 20-24),
        so nothing of the handshake is lost. Returns at the first other byte or
        at the end of the stream (True), or once more than ``limit`` bytes were
        dropped (False: the caller closes); cancellable."""
        sock = self._sock
        dropped = 0
        while dropped <= limit:
            self._check()
            try:
                head = sock.recv(_PEEK_BYTES, socket.MSG_PEEK)
            except (BlockingIOError, InterruptedError):
                await trio.lowlevel.wait_readable(sock)
                continue
            space = len(head) - len(head.lstrip(b" \t\r\n"))
            if space:
                dropped += len(sock.recv(space))
            if not head or space < len(head):
                return True
        return False

    def tls_version(self) -> str | None:
        """The negotiated TLS version (``"TLSv1.3"``), ``None`` without TLS."""
        sock = self._sock
        return sock.version() if isinstance(sock, _TLS_SOCKETS) else None

    def tls_unique(self) -> bytes | None:
        """The first Finished message of the TLS handshake (RFC 5929 §3.1), as
        :meth:`ssl.SSLSocket.get_channel_binding` gives it; ``None`` without TLS."""
        sock = self._sock
        return sock.get_channel_binding("tls-unique") if isinstance(sock, _TLS_SOCKETS) else None

    def tls_exporter(self) -> bytes | None:
        """``tls-exporter`` data (RFC 9266 §2): only with ``tls_backend =
        "openssl"`` (the ssl module cannot export keying material)."""
        sock = self._sock
        return sock.get_channel_binding("tls-exporter") if isinstance(sock, OpenSSLSocket) else None

    async def receive_some(self, max_bytes: int, *, gather: bool = False) -> bytes:
        """Up to ``max_bytes`` bytes; ``b""`` at the end of the stream. Under
        TLS with ``gather``, every complete record that arrived is read (see
        :meth:`_buffered_records` and :meth:`_more_records`), not only the first.

        A read is tried before waiting for readability (OpenSSL may hold
        records the socket no longer shows), unless the last gathering read
        left OpenSSL holding nothing (:meth:`_buffered_records`): then
        whatever comes next is in the kernel, and a trial read would only
        fail (``SSLWantReadError``, ~3 us: most reads of a busy server)."""
        if self._drained:
            self._drained = False
            if self._closed:
                raise trio.ClosedResourceError("transport closed")
            await trio.lowlevel.wait_readable(self._sock)
            waited = True
        else:
            await trio.lowlevel.checkpoint_if_cancelled()
            waited = False
        while True:
            try:
                data = self.receive_nowait(max_bytes, gather=gather)
            except ssl.SSLWantWriteError:
                await trio.lowlevel.wait_writable(self._sock)
                waited = True
                continue
            if data is None:
                await trio.lowlevel.wait_readable(self._sock)
                waited = True
                continue
            if not waited:
                # Data was already there: still let other tasks run (Trio's rule
                # that every async operation is a scheduling point).
                await trio.lowlevel.cancel_shielded_checkpoint()
            return data

    def receive_nowait(self, max_bytes: int, *, gather: bool = False) -> bytes | None:
        """:meth:`receive_some`'s read, without waiting: ``None`` where it would
        have to wait for the socket to be readable (``SSLWantWriteError``
        passes through: TLS must write first). Sets ``_drained`` as
        :meth:`_buffered_records` finds it (the readiness dispatcher,
        :mod:`._ready`, reads parked sessions with it)."""
        if self._closed:  # _check, inline: once per read
            raise trio.ClosedResourceError("transport closed")
        self._drained = False
        try:
            data = self._recv(max_bytes)
        except _WOULD_BLOCK_READ:
            self._drained = True  # OpenSSL holds no whole record: the socket says when
            return None
        except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
            # close_notify: a clean end of the TLS stream; or the TCP
            # stream ended without one (a "ragged EOF": SSLSocket.recv's
            # suppress_ragged_eofs makes it b"" too).
            return b""
        pending = self._pending
        if gather and self._records and data and len(data) < max_bytes:
            if pending is not None:
                return self._buffered_records(data, max_bytes, pending)
            return self._more_records(data, max_bytes)
        if pending is not None and not pending():
            self._drained = True  # one record (the read rate holds reads back): none left
        return data

    @property
    def would_wait(self) -> bool:
        """The last read left OpenSSL holding nothing: the next read must wait
        for the socket (what :meth:`receive_some` does first when true); False
        once closed."""
        return self._drained and not self._closed

    def fileno(self) -> int:
        """The socket's file descriptor (-1 once closed)."""
        return self._sock.fileno()

    def _buffered_records(self, data: bytes, max_bytes: int, pending: Callable[[], int]) -> bytes:
        """After a TLS read with OpenSSL's read-ahead: the records it took
        behind the first one (one ``read()`` takes what the kernel held, see
        :mod:`._read_ahead`), read while OpenSSL holds bytes of one, up to
        ``max_bytes``, stopping at the first that would block (a record still
        arriving). What is left in the kernel is the next read's.

        The next read waits for the socket first (``_drained``) when OpenSSL
        said it holds nothing or needed the socket for the rest of a record
        (``SSLWantReadError``: it had returned every whole record it held);
        never after stopping at ``max_bytes``, where it may hold more."""
        recv = self._recv
        chunks = [data]
        size = len(data)
        while size < max_bytes:
            if not pending():
                self._drained = True
                break
            try:
                more = recv(max_bytes - size)
            except ssl.SSLWantReadError:
                self._drained = True
                break
            except (OSError, ValueError):  # would block, or an error the next read meets again
                break
            if not more:
                break
            chunks.append(more)
            size += len(more)
        return data if len(chunks) == 1 else b"".join(chunks)

    def _more_records(self, data: bytes, max_bytes: int) -> bytes:
        """After a TLS read: the records the peer sent behind the first one.

        A TLS read returns the content of one record at most, so a client that
        wrote four stanzas in four records would otherwise cost four reads (each
        a pass through the session's read loop and a Trio checkpoint) instead of
        one. The kernel's count of unread bytes (``FIONREAD``: no exception, one
        cheap system call, asked once) says how much has arrived; each record
        read takes at least its content and :data:`_RECORD_OVERHEAD` bytes of
        it, so the reads stop once no record header can be left of that count,
        at ``max_bytes``, or at the first that would block (a record still
        arriving)."""
        recv = self._recv
        chunks = [data]
        size = len(data)
        left = _unread(self._sock.fileno())  # at most this much left to read
        while size < max_bytes and left >= _RECORD_HEADER:
            try:
                more = recv(max_bytes - size)
            except (OSError, ValueError):  # would block, or an error the next read meets again
                break
            if not more:
                break
            chunks.append(more)
            size += len(more)
            left -= len(more) + _RECORD_OVERHEAD
        return data if len(chunks) == 1 else b"".join(chunks)

    def send_nowait(self, data: bytes | bytearray | memoryview) -> int:
        """Write what the socket takes now, at most :data:`SEND_CHUNK` bytes:
        the number of bytes written, 0 if it would block."""
        if self._closed:  # _check, inline: once per write
            raise trio.ClosedResourceError("transport closed")
        try:
            return self._send(data[:SEND_CHUNK] if len(data) > SEND_CHUNK else data)
        except (BlockingIOError, InterruptedError, ssl.SSLWantWriteError):
            return 0
        except ssl.SSLWantReadError:
            # TLS must read first (a key update): the reader task will do it.
            self._send_needs_read = True
            self._drained = False  # and OpenSSL may have taken some of it in
            return 0

    async def wait_send(self) -> None:
        """Wait until a write may make progress."""
        self._check()
        if self._send_needs_read:
            # Waiting for writability would spin (the socket is writable);
            # the reader task owns readability. Retry shortly.
            self._send_needs_read = False
            await trio.sleep(0.01)
        else:
            await trio.lowlevel.wait_writable(self._sock)

    def close(self) -> None:
        """Close now: tasks waiting on the socket get
        :class:`trio.ClosedResourceError`. Idempotent.

        Under TLS a ``close_notify`` alert goes first (RFC 8446 §6.1), so the
        peer sees a clean end of the TLS stream, not a truncation. It is written
        only if the socket takes it now (never waiting: a peer that reads nothing
        cannot hold the close up), and the peer's own alert is not awaited.
        """
        if self._closed:
            return
        self._closed = True
        sock = self._sock
        on_close, self._on_close = self._on_close, None
        if on_close is not None:
            on_close()
        with contextlib.suppress(RuntimeError):  # outside Trio
            trio.lowlevel.notify_closing(sock)
        if isinstance(sock, _TLS_SOCKETS):
            # SSL_shutdown: sends close_notify, then finds the peer's missing
            # (SSLWantReadError on a non-blocking socket): done. Fails harmlessly
            # before the handshake, after a fatal alert or a reset.
            with contextlib.suppress(OSError, ValueError):
                sock.unwrap()
        # Input nobody will read makes the kernel answer the close with a reset,
        # which can destroy what was just sent (a stream error, a TLS alert):
        # discard it first (raw bytes: socket.socket.recv bypasses TLS).
        with contextlib.suppress(OSError):
            for _ in range(_DISCARD_READS):
                if not socket.socket.recv(sock, SEND_CHUNK):
                    break
        sock.close()


def _tls_calls(
    tls: socket.socket,
) -> tuple[Callable[[int], bytes], Callable[[bytes | bytearray | memoryview], int]]:
    """The read and write of a TLS socket: for an :class:`ssl.SSLSocket`, its
    C ``SSLObject``'s own ``read`` and ``write``, one C call each instead of
    two or three Python frames of ``ssl.py`` around it (``recv`` -> ``read``
    -> ``_sslobj.read``, with ``_checkClosed`` on the way; about 3,000 of the
    ~22,000 instructions of a small record's write and read, measured with
    callgrind). :class:`SocketTransport` keeps what those frames did: it
    checks ``closed`` itself, never passes ``flags``, and takes
    ``SSLEOFError`` as the end of the stream (``suppress_ragged_eofs``)."""
    sslobj = getattr(tls, "_sslobj", None)
    if isinstance(tls, ssl.SSLSocket) and sslobj is not None:
        return sslobj.read, sslobj.write
    return tls.recv, tls.send


class WebSocketTransport(_Base):
    """XMPP over WebSocket (RFC 7395) on an accepted connection whose HTTP
    upgrade is done: the session's :class:`Transport`, message by message.

    :meth:`receive_some` returns one complete text message per call (the
    session hands it to ``receive_message``; ``b""`` once the peer closed,
    sent a bad frame or binary data); the session writes WebSocket frames
    already (its connection's :class:`~xmpp_sansio.stream.framing.WebSocketFraming`
    wraps every unit in :func:`~xmpp_sansio.http.text_frame`), so
    :meth:`send_nowait` passes them to the socket. Control frames (pongs,
    the close) go between the session's frames only: after a write that took
    all it was given, never in the middle of a frame, and never before the
    retry of a write that would block (the TLS rule above).

    STARTTLS is not offered on it (TLS belongs to the WebSocket, ``wss``) and
    it has no channel binding (a proxy may terminate the TLS): SCRAM-PLUS is
    not offered either.
    """

    message_based = True

    def __init__(self, inner: Transport, stream: WebSocketStream) -> None:
        self._inner = inner
        self._ws = stream
        self.peer = inner.peer
        self._closed = False
        self._control = bytearray()  # control frames waiting for a frame boundary
        self._boundary = True  # the last write ended at the end of a frame

    def _flush_control(self) -> bool:
        """Write queued control frames if at a frame boundary; True once none waits."""
        self._control += self._ws.data_to_send()
        if self._control and self._boundary:
            sent = self._inner.send_nowait(self._control)
            del self._control[:sent]
        return not self._control

    async def receive_some(self, max_bytes: int, *, gather: bool = False) -> bytes:
        """The next complete text message; ``b""`` at the end."""
        await trio.lowlevel.checkpoint_if_cancelled()
        ws = self._ws
        while True:
            self._check()
            message = ws.next_message()
            self._flush_control()
            if message is not None:
                if message:
                    return message
                continue  # an empty message says nothing (not the end of file)
            if ws.closed:
                return b""
            ws.receive_data(await self._inner.receive_some(SEND_CHUNK))

    def send_nowait(self, data: bytes | bytearray | memoryview) -> int:
        self._check()
        if not self._flush_control():
            return 0
        sent = self._inner.send_nowait(data)
        self._boundary = sent == len(data)
        return sent

    async def wait_send(self) -> None:
        await self._inner.wait_send()

    async def start_tls(
        self, context: TLSContext, *, server_side: bool, server_hostname: str | None = None
    ) -> None:
        raise trio.BrokenResourceError("no STARTTLS over WebSocket (RFC 7395 §3.2)")

    async def discard_whitespace(self, limit: int) -> bool:
        return False

    def tls_version(self) -> str | None:
        return self._inner.tls_version()

    def tls_unique(self) -> bytes | None:
        return None

    def tls_exporter(self) -> bytes | None:
        return None

    def close(self) -> None:
        """Send our close frame if the socket takes it now (RFC 6455 §5.5.1),
        then close the connection."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(OSError, trio.BrokenResourceError, trio.ClosedResourceError):
            self._control += self._ws.close()
            self._flush_control()
        self._inner.close()


class BoshTransport(_Base):
    """XMPP over BOSH (XEP-0206): the session's :class:`Transport` for one
    BOSH session, fed by the HTTP requests (``xmpp_trio/bosh.py``).

    :meth:`receive_some` returns one framing message per call (a body's
    child, ``<open/>`` for a creation or restart, ``<close/>``); ``b""`` after
    :meth:`feed_eof` (the client went away). What the session writes (units
    framed by :func:`xmpp_sansio.http.bosh.frame_unit`) goes to ``output``
    whole while ``room()`` says so (else nothing: the session's
    ``max_output_buffer`` then applies, and :meth:`wait_send` waits for
    :meth:`drained`); ``on_close`` is called once. No STARTTLS, no channel
    binding: TLS, if any, belongs to each HTTP connection.
    """

    message_based = True

    def __init__(
        self,
        peer: str,
        output: Callable[[bytes], None],
        on_close: Callable[[], None],
        tls: str | None,
        room: Callable[[], bool] = lambda: True,
    ) -> None:
        self.peer = peer
        self._output = output
        self._room = room
        self._drained = trio.Event()
        self._on_close = on_close
        self._tls = tls
        self._closed = False
        self._eof = False
        self._incoming: collections.deque[bytes] = collections.deque()
        self._arrived = trio.Event()

    def feed(self, message: bytes) -> None:
        self._incoming.append(message)
        self._arrived.set()

    def feed_eof(self) -> None:
        self._eof = True
        self._arrived.set()

    async def receive_some(self, max_bytes: int, *, gather: bool = False) -> bytes:
        await trio.lowlevel.checkpoint_if_cancelled()
        while True:
            self._check()
            if self._incoming:
                return self._incoming.popleft()
            if self._eof:
                return b""
            self._arrived = trio.Event()
            await self._arrived.wait()

    def send_nowait(self, data: bytes | bytearray | memoryview) -> int:
        self._check()
        if not self._room():
            return 0
        self._output(bytes(data))
        return len(data)

    def drained(self) -> None:
        """Output was taken by a response: :meth:`wait_send` returns."""
        self._drained.set()
        self._drained = trio.Event()

    async def wait_send(self) -> None:
        self._check()
        if self._room():
            await trio.lowlevel.checkpoint()
        else:
            await self._drained.wait()

    async def start_tls(
        self, context: TLSContext, *, server_side: bool, server_hostname: str | None = None
    ) -> None:
        raise trio.BrokenResourceError("no STARTTLS over BOSH (XEP-0206 §7)")

    async def discard_whitespace(self, limit: int) -> bool:
        return False

    def tls_version(self) -> str | None:
        return self._tls

    def tls_unique(self) -> bytes | None:
        return None

    def tls_exporter(self) -> bytes | None:
        return None

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._on_close()
