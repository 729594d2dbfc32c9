"""``tls-exporter`` channel binding (RFC 9266) with the pyOpenSSL TLS backend,
on the real server over loopback with real TLS (trustme): ``[tls] backend =
"openssl"`` on the server, :func:`openssl_client_context` on our client.

Our client binds SCRAM-PLUS and FAST ``HT-SHA-256-EXPR`` with tls-exporter on
TLS 1.3 and 1.2, falls back to the other bindings against the stdlib server;
a binding computed on another connection is refused; stock slixmpp still logs
in; bad input gets what the stdlib backend gives it. Waits are bounded."""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import logging
import re
import ssl
import sys
from pathlib import Path
from typing import Any

import pytest
import test_reload
import trio
import trustme
from conftest import PASSWORDS, RunningServer, start_running
from OpenSSL import SSL
from test_reload import Running, config_text, reload, still_served
from test_sasl_interop import auth, element_text, run_login, scram, scram_login
from test_security import HEADER, STARTTLS, WAIT, Wire, connect, internal_errors, stream_error

from xmpp_sansio.sasl import ChannelBinding
from xmpp_trio import _tls
from xmpp_trio._openssl_stream import OpenSSLContext, OpenSSLStream
from xmpp_trio.client import CertificateError, open_client, openssl_client_context
from xmpp_trio.config import ServerConfig, TLSConfig
from xmpp_trio.login_state import LoginState

VERSIONS = ["TLSv1.2", "TLSv1.3"]

running = test_reload.running  # fixtures shared with test_reload.py
root_level = test_reload.root_level


def with_backend(config: ServerConfig, backend: str, **changes: Any) -> ServerConfig:
    return dataclasses.replace(
        config, tls=dataclasses.replace(config.tls, backend=backend), **changes
    )


async def openssl_server(
    server_config: ServerConfig,
    ca: trustme.CA,
    tmp_path: Path,
    nursery: trio.Nursery,
    **changes: Any,
) -> RunningServer:
    config = with_backend(server_config, "openssl", **changes)
    return await start_running(config, ca, tmp_path, nursery)


def client_context(server: RunningServer, version: str = "TLSv1.3") -> OpenSSLContext:
    """Our pyOpenSSL client context trusting the test CA; TLS 1.2 forced on
    the CLIENT side (the server offers 1.3 too)."""
    ctx = openssl_client_context(server.ca_file)
    if version == "TLSv1.2":
        ctx.ctx.set_max_proto_version(SSL.TLS1_2_VERSION)
    return ctx


def options(server: RunningServer, ctx: OpenSSLContext, *, direct: bool = False) -> dict[str, Any]:
    port = server.directtls_port if direct else server.starttls_port
    return {"host": "127.0.0.1", "port": port, "direct_tls": direct, "ssl_context": ctx}


def test_the_tls_backend_key_is_loaded_and_checked(tmp_path: Path) -> None:
    from xmpp_trio.config import ConfigError, load_config

    path = tmp_path / "server.toml"
    path.write_text('[tls]\nbackend = "openssl"\n')
    assert load_config(path).tls.backend == "openssl"
    path.write_text("")
    assert load_config(path).tls.backend == "stdlib" == TLSConfig().backend
    path.write_text('[tls]\nbackend = "gnutls"\n')
    with pytest.raises(ConfigError, match=r"tls\.backend"):
        load_config(path)


# ---------------------------------------------------------------------------
# our client against our server with tls_backend = "openssl"


@pytest.mark.parametrize("direct", [False, True], ids=["starttls", "directtls"])
@pytest.mark.parametrize("sasl2", [True, False])
@pytest.mark.parametrize("tls_version", VERSIONS)
async def test_our_client_binds_scram_with_tls_exporter_on_tls_1_3_and_1_2(
    server_config: ServerConfig,
    ca: trustme.CA,
    tmp_path: Path,
    nursery: trio.Nursery,
    tls_version: str,
    sasl2: bool,
    direct: bool,
) -> None:
    server = await openssl_server(server_config, ca, tmp_path, nursery, sasl2=sasl2)
    ctx = client_context(server, tls_version)
    with trio.fail_after(WAIT):
        async with open_client(
            "juliet@localhost", PASSWORDS["juliet"], **options(server, ctx, direct=direct)
        ) as client:
            assert isinstance(client._stream, OpenSSLStream)
            assert client._stream.version() == tls_version
            assert client.sasl2 is sasl2
            assert client.mechanism == "SCRAM-SHA-256-PLUS"
            assert client.channel_binding == "tls-exporter"


@pytest.mark.parametrize("tls_version", VERSIONS)
async def test_the_openssl_server_announces_tls_exporter_beside_the_other_bindings(
    server_config: ServerConfig,
    ca: trustme.CA,
    tmp_path: Path,
    nursery: trio.Nursery,
    tls_version: str,
) -> None:
    """XEP-0440: tls-server-end-point, tls-exporter, and tls-unique on 1.2."""
    server = await openssl_server(server_config, ca, tmp_path, nursery)
    wire = await openssl_starttls_wire(server, tls_version)
    await wire.send(HEADER)
    features = await wire.read_until(b"</stream:features>")
    expected = [b"tls-server-end-point", b"tls-exporter"]
    if tls_version == "TLSv1.2":
        expected.append(b"tls-unique")
    assert re.findall(rb'<channel-binding type="([^"]+)"', features) == expected
    assert b"HT-SHA-256-EXPR" in features


@pytest.mark.parametrize("tls_version", VERSIONS)
async def test_the_stdlib_client_binds_to_the_openssl_server_without_tls_exporter(
    server_config: ServerConfig,
    ca: trustme.CA,
    tmp_path: Path,
    nursery: trio.Nursery,
    tls_version: str,
) -> None:
    """The ssl module's client has no exporter: tls-unique on 1.2 (the openssl
    server's Finished message agrees with the stdlib's), the certificate on 1.3."""
    server = await openssl_server(server_config, ca, tmp_path, nursery)
    ctx = server.client_context()
    if tls_version == "TLSv1.2":
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    with trio.fail_after(WAIT):
        async with open_client(
            "juliet@localhost",
            PASSWORDS["juliet"],
            host="127.0.0.1",
            port=server.starttls_port,
            ssl_context=ctx,
        ) as client:
            assert client.mechanism == "SCRAM-SHA-256-PLUS"
            expected = "tls-unique" if tls_version == "TLSv1.2" else "tls-server-end-point"
            assert client.channel_binding == expected


@pytest.mark.parametrize("tls_version", VERSIONS)
async def test_our_openssl_client_falls_back_to_the_stdlib_servers_bindings(
    server: RunningServer, tls_version: str
) -> None:
    """Against the stdlib server (no tls-exporter announced): tls-unique on 1.2,
    tls-server-end-point on 1.3, with no failed attempt."""
    with trio.fail_after(WAIT):
        async with open_client(
            "juliet@localhost",
            PASSWORDS["juliet"],
            **options(server, client_context(server, tls_version)),
        ) as client:
            assert client.mechanism == "SCRAM-SHA-256-PLUS"
            expected = "tls-unique" if tls_version == "TLSv1.2" else "tls-server-end-point"
            assert client.channel_binding == expected


@pytest.mark.parametrize("tls_version", VERSIONS)
async def test_a_fast_token_bound_to_tls_exporter_logs_in_without_pbkdf2(
    server_config: ServerConfig,
    ca: trustme.CA,
    tmp_path: Path,
    nursery: trio.Nursery,
    tls_version: str,
) -> None:
    server = await openssl_server(
        server_config, ca, tmp_path, nursery, sasl2=True, fast_token_lifetime=3600
    )
    accounts = server.server.accounts
    state = LoginState()
    jid, password = "juliet@localhost", PASSWORDS["juliet"]
    with trio.fail_after(WAIT):
        async with open_client(
            jid, password, login=state.options(), **options(server, client_context(server))
        ) as client:
            assert client.channel_binding == "tls-exporter"
            state.update(client.fast_token)
        assert state.fast_token is not None
        assert state.fast_token.mechanism == "HT-SHA-256-EXPR"
        derivations = accounts.derivations
        async with open_client(
            jid,
            "not the password",
            login=state.options(),
            **options(server, client_context(server, tls_version)),
        ) as client:
            assert client.mechanism == "HT-SHA-256-EXPR" and client.sasl2
        assert accounts.derivations == derivations  # no PBKDF2 on the server


# ---------------------------------------------------------------------------
# a binding from another connection (a relaying man in the middle) is refused


async def openssl_starttls_wire(server: RunningServer, version: str = "TLSv1.3") -> Wire:
    wire = await connect(server.starttls_port)
    await wire.send(HEADER)
    await wire.read_until(b"</stream:features>")
    await wire.send(STARTTLS)
    await wire.read_until(b'<proceed xmlns="urn:ietf:params:xml:ns:xmpp-tls"/>')
    tls = OpenSSLStream(wire.stream, client_context(server, version), server_hostname="localhost")
    with trio.fail_after(WAIT):
        await tls.do_handshake()
    wire.stream = tls
    return wire


def exporter_of(wire: Wire) -> ChannelBinding:
    assert isinstance(wire.stream, OpenSSLStream)
    info = _tls.client_tls_info(wire.stream)
    (binding,) = [b for b in info.channel_bindings if b.type == "tls-exporter"]
    return binding


@pytest.mark.parametrize("tls_version", VERSIONS)
async def test_scram_plus_with_the_exporter_of_another_connection_fails(
    server_config: ServerConfig,
    ca: trustme.CA,
    tmp_path: Path,
    nursery: trio.Nursery,
    tls_version: str,
) -> None:
    """The client's proof covers its binding data (RFC 5802 §6): data from
    another TLS connection (what a relay that terminates TLS would see) fails
    the login; the connection's own data logs in on the same stream."""
    server = await openssl_server(server_config, ca, tmp_path, nursery)
    victim = await openssl_starttls_wire(server, tls_version)
    relay = await openssl_starttls_wire(server, tls_version)
    own, other = exporter_of(victim), exporter_of(relay)
    assert own.data != other.data and len(own.data) == 32
    await victim.send(HEADER)
    await victim.read_until(b"</stream:features>")
    mech = scram("SCRAM-SHA-256-PLUS", other)
    initial = mech.initial_response()
    assert initial is not None and initial.startswith(b"p=tls-exporter,,")
    await victim.send(auth(mech.name, initial))
    challenge = element_text(await victim.read_until(b"</challenge>"), b"challenge")
    response = mech.challenge(challenge)
    encoded = base64.b64encode(response).decode()
    await victim.send(
        f"<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>{encoded}</response>".encode()
    )
    answer = await victim.read_until(b"</failure>")
    assert b"<not-authorized/>" in answer and stream_error(answer) is None
    answer = await scram_login(victim, scram("SCRAM-SHA-256-PLUS", own))
    assert stream_error(answer) is None
    await relay.aclose()
    await victim.aclose()


# ---------------------------------------------------------------------------
# stock slixmpp against the openssl backend


@pytest.mark.parametrize("tls_version", VERSIONS)
async def test_slixmpp_with_default_settings_logs_in_against_the_openssl_backend(
    server_config: ServerConfig,
    ca: trustme.CA,
    tmp_path: Path,
    nursery: trio.Nursery,
    tls_version: str,
) -> None:
    """slixmpp 1.17 (PyPI): tls-unique on TLS 1.2 (the server forced to it),
    SCRAM without binding on TLS 1.3 (it has no binding there)."""
    server = await openssl_server(server_config, ca, tmp_path, nursery)
    if tls_version == "TLSv1.2":
        context = server.server.ssl_context
        assert isinstance(context, OpenSSLContext)
        context.ctx.set_max_proto_version(SSL.TLS1_2_VERSION)
    with trio.fail_after(60):
        text = await run_login(server, sys.executable, "romeo@localhost/slix", PASSWORDS["romeo"])
    assert f"TLS {tls_version}" in text, text
    session = re.search(r"SESSION romeo@localhost/slix MECH (\S+)", text)
    assert session is not None, text
    assert "FAILED" not in text, text
    if tls_version == "TLSv1.2":
        assert session.group(1).endswith("-PLUS"), text


# ---------------------------------------------------------------------------
# bad input: the same behaviour as the stdlib backend


def _client_hello_start() -> bytes:
    """The first bytes of a real ClientHello (cut off: the peer then goes away)."""
    conn = SSL.Connection(SSL.Context(SSL.TLS_CLIENT_METHOD), None)
    conn.set_connect_state()
    with contextlib.suppress(SSL.WantReadError):
        conn.do_handshake()
    hello = conn.bio_read(65536)
    return hello[: len(hello) // 2]


GARBAGE = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n" + bytes(range(256)) * 4
BAD_INPUTS = {"garbage": GARBAGE, "half-a-client-hello": _client_hello_start(), "nothing": b""}


async def outcome_of_bad_input(server: RunningServer, data: bytes, *, direct: bool) -> bytes:
    """What the server sends back to ``data`` in place of a TLS handshake
    before it closes the connection (read to the end: no hang)."""
    if direct:
        wire = await connect(server.directtls_port)
    else:
        wire = await connect(server.starttls_port)
        await wire.send(HEADER)
        await wire.read_until(b"</stream:features>")
        await wire.send(STARTTLS)
        await wire.read_until(b'<proceed xmlns="urn:ietf:params:xml:ns:xmpp-tls"/>')
    if data:
        await wire.stream.send_all(data)
    assert isinstance(wire.stream, trio.SocketStream)
    await wire.stream.send_eof()
    return await wire.read_to_end(timeout=WAIT)


@pytest.mark.parametrize("direct", [False, True], ids=["starttls", "directtls"])
@pytest.mark.parametrize("bad", sorted(BAD_INPUTS))
async def test_bad_input_instead_of_a_handshake_is_handled_as_by_the_stdlib_backend(
    server_config: ServerConfig,
    ca: trustme.CA,
    tmp_path: Path,
    nursery: trio.Nursery,
    caplog: pytest.LogCaptureFixture,
    bad: str,
    direct: bool,
) -> None:
    """Garbage, half a ClientHello, or an end of stream where the handshake
    should be: each backend closes the connection (a TLS alert at most, the
    same kind of answer), logs no error, and goes on serving logins."""
    caplog.set_level(logging.INFO)
    answers: dict[str, bytes] = {}
    for backend in ("stdlib", "openssl"):
        config = with_backend(server_config, backend)
        path = tmp_path / backend
        path.mkdir()
        server = await start_running(config, ca, path, nursery)
        answers[backend] = await outcome_of_bad_input(server, BAD_INPUTS[bad], direct=direct)
        ctx: ssl.SSLContext | OpenSSLContext = (
            client_context(server) if backend == "openssl" else server.client_context()
        )
        with trio.fail_after(WAIT):
            async with open_client(
                "juliet@localhost", PASSWORDS["juliet"], **options(server, ctx)
            ) as client:
                assert client.mechanism == "SCRAM-SHA-256-PLUS"
    # a TLS alert record (content type 21) or nothing, alike for both
    kinds = {name: answer[:1] for name, answer in answers.items()}
    assert kinds["openssl"] == kinds["stdlib"], answers
    assert all(answer[:1] in (b"", b"\x15") for answer in answers.values()), answers
    assert internal_errors(caplog) == []
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"


# ---------------------------------------------------------------------------
# the openssl client verifies as the stdlib's does


@pytest.mark.parametrize("problem", ["other-name", "untrusted-ca"])
async def test_the_openssl_client_refuses_a_certificate_the_stdlib_client_refuses(
    server_config: ServerConfig,
    ca: trustme.CA,
    tmp_path: Path,
    nursery: trio.Nursery,
    problem: str,
) -> None:
    """RFC 6125 §6 name check and chain verification (RFC 7590 §3.2): both
    clients end with :class:`CertificateError` and nothing is sent in clear."""
    issuer = ca if problem == "other-name" else trustme.CA()
    cert = issuer.issue_cert("other.example" if problem == "other-name" else "localhost")
    cert.cert_chain_pems[0].write_to_path(str(tmp_path / "bad-cert.pem"))
    cert.private_key_pem.write_to_path(str(tmp_path / "bad-key.pem"))
    config = dataclasses.replace(
        server_config, tls=TLSConfig(cert=tmp_path / "bad-cert.pem", key=tmp_path / "bad-key.pem")
    )
    server = await start_running(config, ca, tmp_path, nursery)
    for ctx in (server.client_context(), client_context(server)):
        with trio.fail_after(WAIT), pytest.raises(CertificateError) as caught:
            async with open_client("juliet@localhost", PASSWORDS["juliet"], **options(server, ctx)):
                pass
        expected = (
            "not valid for 'localhost'" if problem == "other-name" else "unable to get local issuer"
        )
        assert expected in str(caught.value), caught.value


async def test_the_https_listener_serves_websocket_clients_with_the_openssl_backend(
    server_config: ServerConfig, ca: trustme.CA, tmp_path: Path, nursery: trio.Nursery
) -> None:
    """[tls] backend covers every listener with the server's certificate:
    XMPP over WebSocket (wss, RFC 7395) logs in over pyOpenSSL's TLS."""
    server = await openssl_server(server_config, ca, tmp_path, nursery)
    assert isinstance(server.server.ssl_context, OpenSSLContext)
    server.transport = "websocket"
    with trio.fail_after(WAIT):
        async with open_client(
            "juliet@localhost", PASSWORDS["juliet"], **server.client_options()
        ) as client:
            assert client.jid.bare == client.jid.parse("juliet@localhost")
    with pytest.raises(ValueError, match=r"ssl\.SSLContext"):
        async with open_client(
            "juliet@localhost",
            PASSWORDS["juliet"],
            transport="websocket",
            url=server.websocket_url,
            ssl_context=client_context(server),
        ):
            pass


async def test_a_reload_switches_the_tls_backend_for_the_next_handshakes(
    running: Running, capsys: pytest.CaptureFixture[str]
) -> None:
    """``tls`` is applied live (docs/operations.md): after ``[tls] backend =
    "openssl"`` and a reload, the next login binds with tls-exporter while the
    session opened before goes on."""
    password = PASSWORDS["juliet"]
    ctx = openssl_client_context(running.ca_file)
    target = {"host": "127.0.0.1", "port": running.port, "ssl_context": ctx}
    with trio.fail_after(WAIT):
        async with open_client("juliet@localhost/one", password, **target) as one:
            assert one.channel_binding == "tls-server-end-point"
            text = config_text(running.path.parent, "", domains='["localhost"]', cert="cert")
            running.path.write_text(text.replace("[tls]\n", '[tls]\nbackend = "openssl"\n'))
            status, _, err = await reload(running, capsys)
            assert status == 0, err
            async with open_client("juliet@localhost/two", password, **target) as two:
                assert two.channel_binding == "tls-exporter"
            await still_served(one)
