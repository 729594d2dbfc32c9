"""Tests for xmpp_trio.certs: self-signed certificate generation and the server SSLContext."""

from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
import stat
import threading
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from xmpp_trio.certs import (
    certificate_problems,
    ensure_certificate,
    generate_self_signed,
    load_server_ssl_context,
)


def load_cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def dns_sans(cert: x509.Certificate) -> list[str]:
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return san.get_values_for_type(x509.DNSName)


def test_generates_pair(tmp_path: Path) -> None:
    cert_path, key_path = ensure_certificate(tmp_path, ["example.org", "localhost"])
    assert cert_path == tmp_path / "tls" / "cert.pem"
    assert key_path == tmp_path / "tls" / "key.pem"
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600

    cert = load_cert(cert_path)
    assert dns_sans(cert) == ["example.org", "*.example.org", "localhost", "*.localhost"]
    assert cert.subject == cert.issuer
    cert.verify_directly_issued_by(cert)  # self-signed: its own key signed it
    assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)
    lifetime = cert.not_valid_after_utc - datetime.datetime.now(datetime.UTC)
    assert datetime.timedelta(days=3640) < lifetime <= datetime.timedelta(days=3650)
    assert cert.not_valid_before_utc < datetime.datetime.now(datetime.UTC)

    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    assert key.public_key() == cert.public_key()


def test_existing_pair_is_kept_while_it_names_every_domain(tmp_path: Path) -> None:
    cert_path, key_path = ensure_certificate(tmp_path, ["example.org", "other.example"])
    cert_bytes, key_bytes = cert_path.read_bytes(), key_path.read_bytes()
    assert ensure_certificate(tmp_path, ["other.example"]) == (
        cert_path,
        key_path,
    )
    assert cert_path.read_bytes() == cert_bytes
    assert key_path.read_bytes() == key_bytes


def test_half_pair_is_regenerated(tmp_path: Path) -> None:
    cert_path, key_path = ensure_certificate(tmp_path, ["example.org"])
    old_cert = cert_path.read_bytes()
    key_path.unlink()
    ensure_certificate(tmp_path, ["example.org"])
    assert cert_path.read_bytes() != old_cert
    load_server_ssl_context(cert_path, key_path)  # and the new pair matches
    assert sorted(p.name for p in (tmp_path / "tls").iterdir()) == ["cert.pem", "key.pem"]


def test_idn_and_ip_domains() -> None:
    cert_pem, _ = generate_self_signed(["bücher.example", "192.0.2.1", "[2001:db8::1]"])
    cert = x509.load_pem_x509_certificate(cert_pem)
    assert dns_sans(cert) == ["xn--bcher-kva.example", "*.xn--bcher-kva.example"]
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("192.0.2.1"),
        ipaddress.ip_address("2001:db8::1"),
    ]


def test_no_domains() -> None:
    with pytest.raises(ValueError):
        generate_self_signed([])


def test_server_context_settings(tmp_path: Path) -> None:
    context = load_server_ssl_context(*ensure_certificate(tmp_path, ["example.org"]))
    assert isinstance(context, ssl.SSLContext)
    assert context.protocol == ssl.PROTOCOL_TLS_SERVER
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert context.options & ssl.OP_NO_COMPRESSION


def test_mismatched_key_is_rejected(tmp_path: Path) -> None:
    cert_path, _ = ensure_certificate(tmp_path / "a", ["example.org"])
    _, other_key = ensure_certificate(tmp_path / "b", ["example.org"])
    with pytest.raises(ssl.SSLError):
        load_server_ssl_context(cert_path, other_key)


def handshake(server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext, hostname: str) -> str:
    """Run a TLS handshake over a socket pair; return the negotiated version."""
    server_sock, client_sock = socket.socketpair()
    server_sock.settimeout(10)
    client_sock.settimeout(10)
    server_errors: list[BaseException] = []

    def serve() -> None:
        try:
            with server_ctx.wrap_socket(server_sock, server_side=True) as tls:
                tls.sendall(b"ok")
        except (OSError, ssl.SSLError) as exc:
            server_errors.append(exc)

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        with client_ctx.wrap_socket(client_sock, server_hostname=hostname) as tls:
            assert tls.recv(2) == b"ok"
            version = tls.version()
            assert version is not None
            return version
    finally:
        client_sock.close()
        thread.join()
        server_sock.close()


@pytest.mark.parametrize("hostname", ["example.org", "conference.example.org", "localhost"])
def test_client_trusting_the_cert_can_connect(tmp_path: Path, hostname: str) -> None:
    cert_path, key_path = ensure_certificate(tmp_path, ["example.org", "localhost"])
    server_ctx = load_server_ssl_context(cert_path, key_path)
    client_ctx = ssl.create_default_context(cafile=str(cert_path))
    assert handshake(server_ctx, client_ctx, hostname) in ("TLSv1.2", "TLSv1.3")


def test_client_rejects_other_hostname(tmp_path: Path) -> None:
    cert_path, key_path = ensure_certificate(tmp_path, ["example.org"])
    server_ctx = load_server_ssl_context(cert_path, key_path)
    client_ctx = ssl.create_default_context(cafile=str(cert_path))
    with pytest.raises(ssl.SSLCertVerificationError):
        handshake(server_ctx, client_ctx, "example.net")


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion:DeprecationWarning")
def test_tls_1_1_client_is_refused(tmp_path: Path) -> None:
    server_ctx = load_server_ssl_context(*ensure_certificate(tmp_path, ["example.org"]))
    client_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client_ctx.check_hostname = False
    client_ctx.verify_mode = ssl.CERT_NONE
    try:
        client_ctx.minimum_version = ssl.TLSVersion.TLSv1
        client_ctx.maximum_version = ssl.TLSVersion.TLSv1_1
        client_ctx.set_ciphers("ALL:@SECLEVEL=0")
    except (ValueError, ssl.SSLError):
        pytest.skip("this OpenSSL cannot even offer TLS 1.1")
    with pytest.raises(ssl.SSLError):
        handshake(server_ctx, client_ctx, "example.org")


def test_a_generated_certificate_follows_the_configured_domains(tmp_path: Path) -> None:
    """Issue 23: changing ``domains`` used to keep a self-signed certificate for
    the old ones; the server's own certificate is generated anew."""
    cert, _key = ensure_certificate(tmp_path, ["example.org"])
    first = cert.read_bytes()
    assert certificate_problems(cert, ["example.org"]) == []
    assert ensure_certificate(tmp_path, ["example.org"])[0].read_bytes() == first  # kept
    assert certificate_problems(cert, ["example.org", "capulet.example"]) != []
    ensure_certificate(tmp_path, ["example.org", "capulet.example"])
    assert cert.read_bytes() != first
    assert (
        certificate_problems(cert, ["example.org", "capulet.example", "conference.capulet.example"])
        == []
    )


def test_certificate_problems_name_expiry_and_missing_domains(tmp_path: Path) -> None:
    cert, _key = ensure_certificate(tmp_path, ["example.org"])
    assert certificate_problems(cert, ["example.org"], now=4_102_444_800.0 * 2) != []  # far future
    (problem,) = certificate_problems(cert, ["montague.example"])
    assert "does not name montague.example" in problem and "example.org" in problem
    assert "cannot read" in certificate_problems(tmp_path / "missing.pem", ["x"])[0]
