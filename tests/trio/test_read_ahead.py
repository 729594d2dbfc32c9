"""OpenSSL's read-ahead is turned on only for a context whose ``SSL_CTX``
pointer checks out (xmpp_trio/_read_ahead.py); the reads themselves are
tested both ways in test_tls_records.py."""

from __future__ import annotations

import socket
import ssl
from pathlib import Path

import pytest
import trio
import trustme

from xmpp_trio import _read_ahead
from xmpp_trio._transport import SocketTransport, _unread
from xmpp_trio.certs import server_tls_material
from xmpp_trio.config import ConfigError, ServerConfig, load_config


def test_read_ahead_is_left_off_when_the_context_does_not_check_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The SSL_CTX pointer is used only if SSL_CTX_get_options through it
    # agrees with SSLContext.options; here it is made to disagree.
    assert _read_ahead._FUNCTIONS is not None
    ctrl, get_options, *rest = _read_ahead._FUNCTIONS
    monkeypatch.setattr(
        _read_ahead, "_FUNCTIONS", (ctrl, lambda pointer: get_options(pointer) ^ 1, *rest)
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    assert not _read_ahead.enable(context)
    monkeypatch.undo()
    other = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    assert _read_ahead.enable(other) and _read_ahead.enable(other)  # asked once, kept
    assert not _read_ahead.enable(context)  # the first answer is kept too


def _tls_config(tmp_path: Path, extra: str) -> ServerConfig:
    ca = trustme.CA()
    cert = ca.issue_cert("localhost")
    cert.private_key_pem.write_to_path(tmp_path / "key.pem")
    cert.cert_chain_pems[0].write_to_path(tmp_path / "cert.pem")
    path = tmp_path / "server.toml"
    path.write_text(
        f'domains = ["localhost"]\ndata_dir = "{tmp_path}"\n'
        f'[tls]\ncert = "{tmp_path / "cert.pem"}"\nkey = "{tmp_path / "key.pem"}"\n{extra}'
    )
    return load_config(path)


@pytest.mark.parametrize(("extra", "on"), [("", True), ("read_ahead = false\n", False)])
async def test_tls_read_ahead_key_decides_whether_records_are_read_at_once(
    tmp_path: Path, extra: str, on: bool
) -> None:
    config = _tls_config(tmp_path, extra)
    assert config.tls.read_ahead is on
    context, _der = server_tls_material(config)
    assert isinstance(context, ssl.SSLContext)
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = trio.socket.socket()
        await client.connect(listener.getsockname())
        accepted, _ = listener.accept()
    transport = SocketTransport(accepted)
    client_ctx = ssl.create_default_context()
    client_ctx.check_hostname = False
    client_ctx.verify_mode = ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = client_ctx.wrap_bio(incoming, outgoing)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(lambda: transport.start_tls(context, server_side=True))
        while True:
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                await client.send(outgoing.read())
                incoming.write(await client.recv(65536))
        await client.send(outgoing.read())
    # The records sent together: with read-ahead one read() takes them all
    # from the kernel; without, the kernel keeps the two behind the first.
    wire = b""
    for data in (b"<a/>", b"<b/>", b"<c/>"):
        tls.write(data)
        wire += outgoing.read()
    await client.send(wire)
    with trio.fail_after(10):
        while _unread(transport._sock.fileno()) < len(wire):
            await trio.sleep(0)
    assert await transport.receive_some(4) == b"<a/>"
    assert (_unread(transport._sock.fileno()) == 0) is on
    assert await transport.receive_some(65536, gather=True) == b"<b/><c/>"
    transport.close()
    client.close()


def test_tls_read_ahead_key_must_be_a_boolean(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"tls\.read_ahead"):
        _tls_config(tmp_path, 'read_ahead = "no"\n')
