"""The pyOpenSSL stream itself (xmpp_trio/_openssl_stream.py) over in-memory
Trio streams with trustme certificates: the server name check of RFC 6125
§6.4, both ends agreeing on every binding (RFC 9266 §2, RFC 5929 §3), and a
peer that goes away mid-handshake (an error, never a hang)."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
import trio
import trio.testing
import trustme
from OpenSSL import SSL

from xmpp_trio._openssl_stream import (
    OpenSSLStream,
    openssl_client_context,
    openssl_server_context,
)

WAIT = 10


def server_pem(tmp_path: Path, ca: trustme.CA, *names: str) -> Path:
    pem = tmp_path / "server.pem"
    ca.issue_cert(*names).private_key_and_cert_chain_pem.write_to_path(str(pem))
    return pem


def ca_file(tmp_path: Path, ca: trustme.CA) -> Path:
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return path


async def handshake(
    tmp_path: Path, ca: trustme.CA, names: tuple[str, ...], hostname: str, version: int = 0
) -> tuple[OpenSSLStream, OpenSSLStream]:
    pem = server_pem(tmp_path, ca, *names)
    client_ctx = openssl_client_context(ca_file(tmp_path, ca))
    if version:
        client_ctx.ctx.set_max_proto_version(version)
    left, right = trio.testing.memory_stream_pair()
    client = OpenSSLStream(left, client_ctx, server_hostname=hostname)
    server = OpenSSLStream(right, openssl_server_context(pem, pem), server_side=True)
    with trio.fail_after(WAIT):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(server.do_handshake)
            await client.do_handshake()
    return client, server


@pytest.mark.parametrize(
    ("names", "hostname", "accepted"),
    [
        (("example.org",), "example.org", True),
        (("example.org",), "EXAMPLE.org.", True),
        (("*.example.org",), "chat.example.org", True),
        (("*.example.org",), "a.chat.example.org", False),  # one label only
        (("*.example.org",), "example.org", False),
        (("*.org",), "example.org", False),  # never a wildcard of a two-label name
        (("other.example",), "example.org", False),
        (("127.0.0.1",), "127.0.0.1", True),
        (("127.0.0.1",), "127.0.0.2", False),
        (("bücher.example",), "bücher.example", True),  # the A-label is compared
    ],
)
async def test_the_client_checks_the_servers_name_as_rfc_6125_says(
    tmp_path: Path, names: tuple[str, ...], hostname: str, accepted: bool
) -> None:
    ca = trustme.CA()
    if accepted:
        client, _server = await handshake(tmp_path, ca, names, hostname)
        assert client.version() in ("TLSv1.2", "TLSv1.3")
        return
    with pytest.raises(BaseExceptionGroup) as caught:  # from the handshake's nursery
        await handshake(tmp_path, ca, names, hostname)
    (failure,) = caught.value.exceptions  # the client's only: the server finished
    assert isinstance(failure, trio.BrokenResourceError)
    assert isinstance(failure.__cause__, ssl.SSLCertVerificationError), failure
    assert "mismatch" in str(failure.__cause__)


@pytest.mark.parametrize(("version", "name"), [(0, "TLSv1.3"), (SSL.TLS1_2_VERSION, "TLSv1.2")])
async def test_both_ends_compute_the_same_bindings(tmp_path: Path, version: int, name: str) -> None:
    client, server = await handshake(
        tmp_path, trustme.CA(), ("example.org",), "example.org", version
    )
    assert client.version() == server.version() == name
    exporter = client.get_channel_binding("tls-exporter")
    assert exporter is not None and len(exporter) == 32
    assert exporter == server.get_channel_binding("tls-exporter")
    unique = client.get_channel_binding("tls-unique")
    assert unique == server.get_channel_binding("tls-unique")
    assert (unique is not None) is (name == "TLSv1.2")  # undefined on TLS 1.3
    assert client.getpeercert() is not None and server.getpeercert() is None
    await client.send_all(b"<presence/>")
    assert await server.receive_some(100) == b"<presence/>"
    await server.aclose()
    assert await client.receive_some(100) == b""  # close_notify: a clean end


async def test_a_peer_that_goes_away_mid_handshake_is_an_error_not_a_hang(
    tmp_path: Path,
) -> None:
    ca = trustme.CA()
    left, right = trio.testing.memory_stream_pair()
    client = OpenSSLStream(
        left, openssl_client_context(ca_file(tmp_path, ca)), server_hostname="example.org"
    )
    with trio.fail_after(WAIT):
        async with trio.open_nursery() as nursery:

            async def hang_up() -> None:
                assert await right.receive_some(65536)  # the ClientHello
                await right.aclose()

            nursery.start_soon(hang_up)
            with pytest.raises(trio.BrokenResourceError):
                await client.do_handshake()
        await client.aclose()
        with pytest.raises(trio.ClosedResourceError):
            await client.send_all(b"x")
