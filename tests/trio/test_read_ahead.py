"""OpenSSL's read-ahead is turned on only for a context whose ``SSL_CTX``
pointer checks out (xmpp_trio/_read_ahead.py); the reads themselves are
tested both ways in test_tls_records.py."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
import trustme
from test_tls_records import arrived, connect

from xmpp_trio import _read_ahead
from xmpp_trio._transport import _unread
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


def _tls_config(tmp_path: Path, extra: str, ca: trustme.CA | None = None) -> ServerConfig:
    cert = (ca or trustme.CA()).issue_cert("localhost")
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
    ca = trustme.CA()
    config = _tls_config(tmp_path, extra, ca)
    assert config.tls.read_ahead is on
    context, _der = server_tls_material(config)
    assert isinstance(context, ssl.SSLContext)
    transport, peer = await connect(ca, server_ctx=context)
    # The records sent together: with read-ahead one read() takes them all
    # from the kernel; without, the kernel keeps the two behind the first.
    wire = b"".join(peer.record(x) for x in (b"<a/>", b"<b/>", b"<c/>"))
    await peer.sock.send(wire)
    await arrived(transport, len(wire))
    assert await transport.receive_some(4) == b"<a/>"
    assert (_unread(transport._sock.fileno()) == 0) is on
    assert await transport.receive_some(65536, gather=True) == b"<b/><c/>"
    transport.close()


def test_tls_read_ahead_key_must_be_a_boolean(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"tls\.read_ahead"):
        _tls_config(tmp_path, 'read_ahead = "no"\n')
