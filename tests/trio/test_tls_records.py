"""The server's TLS transport reads every record that arrived, not one per read
(SocketTransport.receive_some with ``gather``), over real loopback TCP with
trustme certificates: the client's records are made by its own TLS object, so
the test knows their bytes exactly. Every test runs twice: with OpenSSL's
read-ahead (xmpp_trio/_read_ahead.py, the default where it can be turned on)
and without it (records read one by one, gathered by the kernel's count)."""

from __future__ import annotations

import socket
import ssl

import pytest
import trio
import trio.testing
import trustme

from xmpp_trio import _read_ahead
from xmpp_trio._transport import SocketTransport, _unread

WAIT = 10.0


@pytest.fixture(autouse=True, params=["read-ahead", "record-by-record"])
def mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run the test with OpenSSL's read-ahead, then as if it could not be
    turned on (another interpreter, a libssl without the symbols)."""
    if request.param == "record-by-record":
        monkeypatch.setattr(_read_ahead, "_FUNCTIONS", None)
    return str(request.param)


class Peer:
    """The client end: a TLS object over memory BIOs and a raw socket."""

    def __init__(
        self, sock: trio.socket.SocketType, tls: ssl.SSLObject, out: ssl.MemoryBIO
    ) -> None:
        self.sock = sock
        self.tls = tls
        self.outgoing = out

    def record(self, data: bytes) -> bytes:
        """``data`` sealed in one TLS record, not yet sent."""
        self.tls.write(data)
        return self.outgoing.read()


async def connect(
    ca: trustme.CA,
    version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_3,
    server_ctx: ssl.SSLContext | None = None,
) -> tuple[SocketTransport, Peer]:
    """A SocketTransport (server side, TLS ``version``, or ``server_ctx`` with a
    certificate for localhost from ``ca``) and the peer talking to it."""
    if server_ctx is None:
        server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        server_ctx.maximum_version = version
        ca.issue_cert("localhost").configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = trio.socket.socket()
        await client.connect(listener.getsockname())
        accepted, _ = listener.accept()
    transport = SocketTransport(accepted)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = client_ctx.wrap_bio(incoming, outgoing, server_hostname="localhost")
    peer = Peer(client, tls, outgoing)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(lambda: transport.start_tls(server_ctx, server_side=True))
        while True:
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                await client.send(outgoing.read())
                incoming.write(await client.recv(65536))
        await client.send(outgoing.read())
    return transport, peer


async def arrived(transport: SocketTransport, size: int) -> None:
    """Wait until the kernel holds ``size`` unread bytes for the server."""
    with trio.fail_after(WAIT):
        while _unread(transport._sock.fileno()) < size:
            await trio.sleep(0)


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
async def test_a_read_takes_every_record_that_arrived(version: ssl.TLSVersion) -> None:
    transport, peer = await connect(trustme.CA(), version)
    assert transport.tls_version() == version.name.replace("_", ".")
    wire = b"".join(peer.record(x) for x in (b"<a/>", b"<b/>", b"<c/>"))
    await peer.sock.send(wire)
    await arrived(transport, len(wire))
    assert await transport.receive_some(65536, gather=True) == b"<a/><b/><c/>"
    transport.close()


async def test_without_gather_a_read_is_one_record() -> None:
    transport, peer = await connect(trustme.CA())
    wire = b"".join(peer.record(x) for x in (b"<a/>", b"<b/>"))
    await peer.sock.send(wire)
    await arrived(transport, len(wire))
    assert await transport.receive_some(65536) == b"<a/>"
    assert await transport.receive_some(65536) == b"<b/>"
    transport.close()


async def test_a_gathering_read_stops_at_max_bytes() -> None:
    transport, peer = await connect(trustme.CA())
    wire = b"".join(peer.record(x) for x in (b"<a/>", b"<b/>", b"<c/>"))
    await peer.sock.send(wire)
    await arrived(transport, len(wire))
    assert await transport.receive_some(8, gather=True) == b"<a/><b/>"
    assert await transport.receive_some(8, gather=True) == b"<c/>"
    transport.close()


async def test_a_record_still_arriving_is_left_for_the_next_read() -> None:
    transport, peer = await connect(trustme.CA())
    whole = peer.record(b"<a/>") + peer.record(b"<b/>")
    last = peer.record(b"<c/>")
    await peer.sock.send(whole + last[:7])
    await arrived(transport, len(whole) + 7)
    with trio.fail_after(WAIT):  # does not wait for the rest of the third record
        assert await transport.receive_some(65536, gather=True) == b"<a/><b/>"
    await peer.sock.send(last[7:])
    with trio.fail_after(WAIT):
        assert await transport.receive_some(65536, gather=True) == b"<c/>"
    transport.close()


async def test_the_end_of_the_stream_after_gathered_records_is_seen_next() -> None:
    transport, peer = await connect(trustme.CA())
    wire = peer.record(b"<a/>") + peer.record(b"<b/>")
    await peer.sock.send(wire)
    peer.sock.shutdown(socket.SHUT_WR)
    await arrived(transport, len(wire))
    with trio.fail_after(WAIT):
        assert await transport.receive_some(65536, gather=True) == b"<a/><b/>"
        assert await transport.receive_some(65536, gather=True) == b""
    transport.close()


async def test_read_ahead_takes_the_records_in_one_read_from_the_kernel(mode: str) -> None:
    transport, peer = await connect(trustme.CA())
    assert (transport._pending is not None) == (mode == "read-ahead")
    wire = b"".join(peer.record(x) for x in (b"<a/>", b"<b/>", b"<c/>"))
    await peer.sock.send(wire)
    await arrived(transport, len(wire))
    assert await transport.receive_some(4) == b"<a/>"  # one record, not gathering
    # With read-ahead the kernel gave OpenSSL every record at once.
    assert _unread(transport._sock.fileno()) == (0 if mode == "read-ahead" else len(wire) * 2 // 3)
    assert await transport.receive_some(65536, gather=True) == b"<b/><c/>"
    transport.close()


async def test_more_than_a_read_ahead_buffer_is_all_read() -> None:
    # OpenSSL's buffer takes about one full record; the rest stays in the
    # kernel, and the next read (tried before any wait) takes it.
    transport, peer = await connect(trustme.CA())
    records = [bytes([65 + i % 26]) * 1000 for i in range(100)]
    wire = memoryview(b"".join(peer.record(x) for x in records))

    async def send() -> None:
        sent = 0
        while sent < len(wire):
            sent += await peer.sock.send(wire[sent:])

    got = bytearray()
    with trio.fail_after(WAIT):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(send)
            await arrived(transport, 65536)
            while len(got) < 100_000:
                got += await transport.receive_some(65536, gather=True)
    assert got == b"".join(records)
    transport.close()


async def test_records_openssl_still_holds_are_read_without_waiting() -> None:
    # Several records in one TCP segment: with read-ahead OpenSSL takes them
    # all from the kernel at the first read, so the socket is not readable
    # while it holds the rest. A read that stopped at max_bytes, or that did
    # not gather, must not wait for the socket next (it would wait forever).
    transport, peer = await connect(trustme.CA())
    wire = b"".join(peer.record(x) for x in (b"<a/>", b"<bb/>", b"<c/>", b"<d/>"))
    await peer.sock.send(wire)
    await arrived(transport, len(wire))
    with trio.fail_after(WAIT):
        assert await transport.receive_some(6, gather=True) == b"<a/><b"  # in mid-record
        assert await transport.receive_some(3, gather=True) == b"b/>"
        assert await transport.receive_some(65536) == b"<c/>"  # one record, not gathering
        assert await transport.receive_some(65536, gather=True) == b"<d/>"
    transport.close()


async def test_after_a_read_that_took_all_openssl_held_the_next_waits_first(mode: str) -> None:
    # With read-ahead, a gathering read that left OpenSSL holding nothing
    # makes the next read wait for the socket before reading: no read that
    # fails (SSLWantReadError) first. Without read-ahead it tries one first.
    transport, peer = await connect(trustme.CA())
    wire = peer.record(b"<a/>") + peer.record(b"<b/>")
    await peer.sock.send(wire)
    await arrived(transport, len(wire))
    assert await transport.receive_some(65536, gather=True) == b"<a/><b/>"
    recv, failed = transport._recv, []

    def counting(size: int) -> bytes:
        try:
            return recv(size)
        except ssl.SSLWantReadError:
            failed.append(size)
            raise

    transport._recv = counting
    got = []
    with trio.fail_after(WAIT):
        async with trio.open_nursery() as nursery:

            async def read() -> None:
                got.append(await transport.receive_some(65536, gather=True))

            nursery.start_soon(read)
            await trio.testing.wait_all_tasks_blocked()
            await peer.sock.send(peer.record(b"<c/>"))
    assert got == [b"<c/>"]
    assert len(failed) == (0 if mode == "read-ahead" else 1)
    transport.close()
