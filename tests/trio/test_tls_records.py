"""The server's TLS transport reads every record that arrived, not one per read
(SocketTransport.receive_some with ``gather``), over real loopback TCP with
trustme certificates: the client's records are made by its own TLS object, so
the test knows their bytes exactly."""

from __future__ import annotations

import socket
import ssl

import pytest
import trio
import trustme

from xmpp_trio._transport import SocketTransport, _unread

WAIT = 10.0


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
    ca: trustme.CA, version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_3
) -> tuple[SocketTransport, Peer]:
    """A SocketTransport (server side, TLS ``version``) and the peer talking to it."""
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
