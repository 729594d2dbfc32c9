"""An in-memory connection for tests: the server side is a :class:`Transport`
(:class:`MemoryTransport`, real TLS over :class:`ssl.MemoryBIO`), the client
side a plain Trio stream (:class:`MemoryStream`), so the real server runs
under :class:`trio.testing.MockClock` (``tests/trio/memory.py``)."""

from __future__ import annotations

import contextlib
import ssl

import trio

from ._openssl_stream import OpenSSLContext, TLSContext
from ._transport import SEND_CHUNK, _Base

__all__ = ["MemoryStream", "MemoryTransport", "memory_transport_pair"]


class _Pipe:
    """One direction of an in-memory connection: a byte buffer, bounded like a
    socket's when given a ``capacity`` (what the writer may queue unread)."""

    __slots__ = ("buffer", "capacity", "closed", "lot", "space")

    def __init__(self, capacity: int | None = None) -> None:
        self.buffer = bytearray()
        self.capacity = capacity
        self.closed = False
        self.lot = trio.lowlevel.ParkingLot()  # readers waiting for data
        self.space = trio.lowlevel.ParkingLot()  # writers waiting for room

    def room(self) -> int:
        """Bytes the writer may add now (a closed pipe lets the write fail)."""
        if self.capacity is None or self.closed:
            return SEND_CHUNK
        return min(SEND_CHUNK, self.capacity - len(self.buffer))

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self.closed:
            raise trio.BrokenResourceError("the other side closed")
        self.buffer += data
        self.lot.unpark_all()

    def close(self) -> None:
        self.closed = True
        self.lot.unpark_all()
        self.space.unpark_all()

    async def wait(self) -> None:
        """Wait until there is data or the writer closed."""
        while not self.buffer and not self.closed:
            await self.lot.park()

    def take(self, max_bytes: int) -> bytes:
        data = bytes(self.buffer[:max_bytes])
        del self.buffer[:max_bytes]
        self.space.unpark_all()
        return data


class MemoryTransport(_Base):
    """The server side of an in-memory connection (see
    :func:`memory_transport_pair`): a :class:`Transport` for tests that run the
    real server under :class:`trio.testing.MockClock`. Writes block only past
    the pipe's capacity (as a socket's buffer fills when the peer stops
    reading); TLS runs on :class:`ssl.SSLObject` over memory BIOs."""

    def __init__(self, incoming: _Pipe, outgoing: _Pipe, peer: str) -> None:
        self._in = incoming
        self._out = outgoing
        self.peer = peer
        self._closed = False
        self._tls: ssl.SSLObject | None = None
        self._bio_in = ssl.MemoryBIO()
        self._bio_out = ssl.MemoryBIO()

    def _flush_tls(self) -> None:
        data = self._bio_out.read()
        if data:
            self._out.write(data)

    async def _feed_tls(self) -> None:
        """Move the peer's next bytes into OpenSSL (EOF at the end)."""
        await self._in.wait()
        self._check()
        data = self._in.take(SEND_CHUNK)
        if data:
            self._bio_in.write(data)
        else:
            self._bio_in.write_eof()

    async def receive_some(self, max_bytes: int, *, gather: bool = False) -> bytes:
        await trio.lowlevel.checkpoint()
        while True:
            self._check()
            tls = self._tls
            if tls is None:
                await self._in.wait()
                self._check()
                return self._in.take(max_bytes)
            try:
                return tls.read(max_bytes)
            except ssl.SSLWantReadError:
                self._flush_tls()
                await self._feed_tls()
            except ssl.SSLZeroReturnError:
                return b""
            except ssl.SSLEOFError:
                return b""

    def send_nowait(self, data: bytes | bytearray | memoryview) -> int:
        self._check()
        room = self._out.room()
        if room <= 0:
            return 0
        chunk = data[:room] if len(data) > room else data
        if self._tls is None:
            self._out.write(chunk)
            return len(chunk)
        sent = self._tls.write(chunk)  # TLS records add a little to the bound
        self._flush_tls()
        return sent

    async def wait_send(self) -> None:
        self._check()
        if self._out.room() > 0:
            await trio.lowlevel.checkpoint()
            return
        while self._out.room() <= 0:
            await self._out.space.park()
            self._check()

    async def start_tls(
        self, context: TLSContext, *, server_side: bool, server_hostname: str | None = None
    ) -> None:
        self._check()
        if isinstance(context, OpenSSLContext):
            raise trio.BrokenResourceError("the in-memory transport runs the stdlib's TLS only")
        tls = context.wrap_bio(
            self._bio_in, self._bio_out, server_side=server_side, server_hostname=server_hostname
        )
        self._tls = tls
        while True:
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                self._flush_tls()
                await self._feed_tls()
        self._flush_tls()
        await trio.lowlevel.checkpoint_if_cancelled()

    async def discard_whitespace(self, limit: int) -> bool:
        dropped = 0
        while dropped <= limit:
            await self._in.wait()
            self._check()
            buffer = self._in.buffer
            space = len(buffer) - len(buffer.lstrip(b" \t\r\n"))
            dropped += space
            del buffer[:space]
            if buffer or self._in.closed:
                return True
        return False

    def tls_version(self) -> str | None:
        return None if self._tls is None else self._tls.version()

    def tls_unique(self) -> bytes | None:
        return None if self._tls is None else self._tls.get_channel_binding("tls-unique")

    def tls_exporter(self) -> bytes | None:
        return None  # ssl.SSLObject: no keying-material export

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._tls is not None:
            with contextlib.suppress(ssl.SSLError, ValueError):
                self._tls.unwrap()
            with contextlib.suppress(trio.BrokenResourceError):
                self._flush_tls()
        self._out.close()
        self._in.close()  # a reader parked on the input wakes to the close


class MemoryStream(trio.abc.Stream):
    """The client side of an in-memory connection: a plain Trio stream (wrap it
    in :class:`trio.SSLStream` for TLS)."""

    def __init__(self, incoming: _Pipe, outgoing: _Pipe) -> None:
        self._in = incoming
        self._out = outgoing
        self._closed = False

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await trio.lowlevel.checkpoint()
        if self._closed:
            raise trio.ClosedResourceError
        self._out.write(data)

    async def wait_send_all_might_not_block(self) -> None:
        await trio.lowlevel.checkpoint()

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        await trio.lowlevel.checkpoint()
        if self._closed:
            raise trio.ClosedResourceError
        await self._in.wait()
        if self._closed:
            raise trio.ClosedResourceError
        return self._in.take(max_bytes or SEND_CHUNK)

    async def aclose(self) -> None:
        self._closed = True
        self._out.close()
        self._in.close()
        await trio.lowlevel.checkpoint()


def memory_transport_pair(
    peer: str = "memory:1", *, capacity: int | None = None
) -> tuple[MemoryTransport, MemoryStream]:
    """A connected (server transport, client stream) pair, in memory; the
    server may queue at most ``capacity`` bytes the client has not read
    (None: no bound)."""
    to_server, to_client = _Pipe(), _Pipe(capacity)
    return MemoryTransport(to_server, to_client, peer), MemoryStream(to_client, to_server)
