"""SASL and TLS interoperability on the real server over loopback, with real TLS
(trustme) and real peers: SCRAM ``-PLUS`` channel binding types (RFC 5802 §6,
RFC 5929, XEP-0440) with slixmpp from PyPI and from Debian, empty challenges
(RFC 6120 §6.4.3), the client's minimum SCRAM iteration count (RFC 5802 §5.1)
and TLS ``close_notify`` on close (RFC 8446 §6.1). Asserted on the wire; waits
are bounded, never sleeps."""

from __future__ import annotations

import base64
import dataclasses
import logging
import os
import re
import shutil
import ssl
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path

import pytest
import trio
import trustme
from conftest import PASSWORDS, RunningServer, start_running
from test_security import FOOTER, HEADER, WAIT, Wire, starttls_wire, stream_error

from xmpp_sansio.jid import JID
from xmpp_sansio.sasl import (
    ChannelBinding,
    ScramClient,
    create_client_mechanism,
)
from xmpp_trio import _tls
from xmpp_trio.client import AuthenticationError, open_client
from xmpp_trio.config import ServerConfig

PEERS = Path(__file__).parent / "peers"
LOGIN_SCRIPT = PEERS / "slixmpp_login.py"
DEBIAN_PYTHON = "/usr/bin/python3"
SASL_NS = "urn:ietf:params:xml:ns:xmpp-sasl"
SUCCESS_END = b"</success>"


def debian_slixmpp_available() -> bool:
    if not os.path.exists(DEBIAN_PYTHON):
        return False
    probe = [DEBIAN_PYTHON, "-c", "import slixmpp"]
    return subprocess.run(probe, capture_output=True, check=False).returncode == 0


def require_debian_slixmpp() -> None:
    """Skip without Debian's python3-slixmpp; in CI (which installs it) fail instead."""
    if not debian_slixmpp_available():
        if os.environ.get("CI"):
            pytest.fail(f"{DEBIAN_PYTHON} lacks slixmpp (python3-slixmpp) in CI")
        pytest.skip(f"{DEBIAN_PYTHON} lacks slixmpp (apt install python3-slixmpp)")


def limit_tls(server: RunningServer, version: str) -> None:
    """Let the server speak at most ``version`` (TLS 1.2 makes tls-unique defined)."""
    if version == "TLSv1.2":
        server.server.ssl_context.maximum_version = ssl.TLSVersion.TLSv1_2


async def run_login(server: RunningServer, python: str, jid: str, password: str) -> str:
    result = await trio.run_process(
        [
            python,
            str(LOGIN_SCRIPT),
            jid,
            password,
            "127.0.0.1",
            str(server.starttls_port),
            str(server.ca_file),
        ],
        capture_stdout=True,
        capture_stderr=True,
        check=False,
        env={**os.environ, "PYTHONPATH": ""},
    )
    return result.stdout.decode() + result.stderr.decode()


# ---------------------------------------------------------------------------
# item 1: SCRAM -PLUS with the binding types real clients use


@pytest.mark.parametrize("tls_version", ["TLSv1.2", "TLSv1.3"])
@pytest.mark.parametrize("peer", ["pypi-slixmpp", "debian-slixmpp"])
async def test_slixmpp_with_default_settings_logs_in_over_tls(
    server: RunningServer, peer: str, tls_version: str
) -> None:
    """slixmpp 1.17 (PyPI) and 1.8.3 (Debian, poezio's) with defaults: on TLS 1.2
    they bind with tls-unique (now supported); on TLS 1.3 1.17 falls back to
    SCRAM without binding itself, 1.8.3 insists on tls-unique three times, is
    refused without losing the stream, then logs in with SCRAM flag "y"."""
    if peer == "debian-slixmpp":
        require_debian_slixmpp()
        python = DEBIAN_PYTHON
    else:
        python = sys.executable
    limit_tls(server, tls_version)
    text = await run_login(server, python, "romeo@localhost/slix", PASSWORDS["romeo"])
    assert f"TLS {tls_version}" in text, text
    session = re.search(r"SESSION romeo@localhost/slix MECH (\S+)", text)
    assert session is not None, text
    assert "policy-violation" not in text and "FAILED_ALL" not in text, text
    if tls_version == "TLSv1.2":
        assert session.group(1).endswith("-PLUS"), text  # tls-unique bound the exchange
        assert "FAILED" not in text, text


async def test_features_announce_the_channel_binding_types_of_the_tls_version(
    server: RunningServer,
) -> None:
    """XEP-0440: tls-server-end-point always, tls-unique on TLS 1.2 only."""
    wire = await starttls_wire(server)
    await wire.send(HEADER)
    features = await wire.read_until(b"</stream:features>")
    assert re.findall(rb'<channel-binding type="([^"]+)"', features) == [b"tls-server-end-point"]
    assert b'<sasl-channel-binding xmlns="urn:xmpp:sasl-cb:0">' in features
    limit_tls(server, "TLSv1.2")
    wire = await starttls_wire(server)
    await wire.send(HEADER)
    features = await wire.read_until(b"</stream:features>")
    assert re.findall(rb'<channel-binding type="([^"]+)"', features) == [
        b"tls-server-end-point",
        b"tls-unique",
    ]


def auth(mechanism: str, initial: bytes) -> bytes:
    text = base64.b64encode(initial).decode() if initial else "="
    return f"<auth xmlns='{SASL_NS}' mechanism='{mechanism}'>{text}</auth>".encode()


def element_text(data: bytes, name: bytes) -> bytes:
    found = re.search(rb"<" + name + rb"\b[^>]*?(?:/>|>([^<]*)</" + name + rb">)", data)
    assert found is not None, data
    return base64.b64decode(found.group(1) or b"")


async def scram_login(wire: Wire, mech: ScramClient) -> bytes:
    """Run a whole SCRAM exchange on ``wire``; the server's final answer."""
    initial = mech.initial_response()
    assert initial is not None
    await wire.send(auth(mech.name, initial))
    challenge = element_text(await wire.read_until(b"</challenge>"), b"challenge")
    response = base64.b64encode(mech.challenge(challenge)).decode()
    await wire.send(f"<response xmlns='{SASL_NS}'>{response}</response>".encode())
    answer = await wire.read_until(b"</")
    answer += await wire.read_until(b">")
    assert answer.endswith(SUCCESS_END), answer
    mech.success(element_text(answer, b"success"))
    assert mech.complete
    return answer


def scram(
    name: str, binding: ChannelBinding | None = None, *, plus_seen: bool = True
) -> ScramClient:
    mech = create_client_mechanism(
        name,
        username="juliet",
        password=PASSWORDS["juliet"],
        nonce=os.urandom(18),
        channel_binding=binding,
        server_supports_plus=plus_seen,
    )
    assert isinstance(mech, ScramClient)
    return mech


@pytest.mark.parametrize("cb_type", ["tls-unique", "tls-foo", "tls-exporter"])
async def test_unsupported_binding_type_fails_the_attempt_and_keeps_the_stream(
    server: RunningServer, cb_type: str
) -> None:
    """On TLS 1.3 a -PLUS attempt with a type the server lacks gets <failure/>,
    seven times over without policy-violation (max_auth_attempts is 3) or login
    back-off (auth_failures_before_backoff is 5): these are not guesses. Then
    SCRAM-SHA-256-PLUS with tls-server-end-point works on the same stream."""
    wire = await starttls_wire(server)
    assert isinstance(wire.stream, trio.SSLStream)
    await wire.send(HEADER)
    await wire.read_until(b"</stream:features>")
    first = f"p={cb_type},,n=juliet,r=abcdefgh".encode()
    for _ in range(7):
        await wire.send(auth("SCRAM-SHA-256-PLUS", first))
        answer = await wire.read_until(b"</failure>")
        assert b"<not-authorized/>" in answer, answer
        assert b"unsupported-channel-binding-type" in answer
        assert stream_error(answer) is None
    end_point = _tls.client_tls_info(wire.stream).channel_binding
    assert end_point is not None and end_point.type == "tls-server-end-point"
    answer = await scram_login(wire, scram("SCRAM-SHA-256-PLUS", end_point))
    assert stream_error(answer) is None


async def test_scram_y_flag_is_accepted_only_after_the_clients_binding_type_was_refused(
    server: RunningServer,
) -> None:
    """RFC 5802 §6: "y" while -PLUS is offered is a downgrade and fails. After a
    refused tls-unique attempt on TLS 1.3 (slixmpp 1.8.3), "y" is the truth and
    the login succeeds."""
    wire = await starttls_wire(server)
    await wire.send(HEADER)
    await wire.read_until(b"</stream:features>")
    fake = ChannelBinding("tls-unique", b"\x00" * 12)
    mech = scram("SCRAM-SHA-256", fake, plus_seen=False)  # gs2 flag "y"
    initial = mech.initial_response()
    assert initial is not None and initial.startswith(b"y,,")
    await wire.send(auth("SCRAM-SHA-256", initial))
    answer = await wire.read_until(b"</failure>")
    assert b"downgrade" in answer and stream_error(answer) is None

    await wire.send(auth("SCRAM-SHA-256-PLUS", b"p=tls-unique,,n=juliet,r=abcdefgh"))
    await wire.read_until(b"</failure>")
    answer = await scram_login(wire, scram("SCRAM-SHA-256", fake, plus_seen=False))
    assert stream_error(answer) is None


# ---------------------------------------------------------------------------
# item 2: an empty challenge has no text (RFC 6120 §6.4.3)


@pytest.fixture
async def anonymous_server(
    server_config: ServerConfig, ca: trustme.CA, tmp_path: Path, nursery: trio.Nursery
) -> AsyncIterator[RunningServer]:
    config = dataclasses.replace(server_config, allow_anonymous=True)
    yield await start_running(config, ca, tmp_path, nursery)


async def test_anonymous_without_initial_response_gets_an_empty_challenge(
    anonymous_server: RunningServer,
) -> None:
    """xmpp.js sends ANONYMOUS without an initial response; the challenge that
    asks for it is empty (no "=", which RFC 6120 §6.4.2 defines only for initial
    responses and §6.3.10 for success data), and an empty response completes it."""
    wire = await starttls_wire(anonymous_server)
    await wire.send(HEADER)
    await wire.read_until(b"</stream:features>")
    await wire.send(f"<auth xmlns='{SASL_NS}' mechanism='ANONYMOUS'/>".encode())
    challenge = await wire.read_until(b"/>")
    assert challenge == f'<challenge xmlns="{SASL_NS}"/>'.encode(), challenge
    await wire.send(f"<response xmlns='{SASL_NS}'/>".encode())
    assert f'<success xmlns="{SASL_NS}"/>'.encode() in await wire.read_until(b"/>")


async def test_scram_without_initial_response_gets_an_empty_challenge(
    server: RunningServer,
) -> None:
    wire = await starttls_wire(server)
    await wire.send(HEADER)
    await wire.read_until(b"</stream:features>")
    await wire.send(f"<auth xmlns='{SASL_NS}' mechanism='SCRAM-SHA-256'/>".encode())
    challenge = await wire.read_until(b"/>")
    assert challenge == f'<challenge xmlns="{SASL_NS}"/>'.encode(), challenge


# ---------------------------------------------------------------------------
# item 7: close_notify before closing a TLS connection (RFC 8446 §6.1)


async def read_to_tls_end(stream: trio.SSLStream[trio.abc.Stream]) -> tuple[bytes, str]:
    """Read until the TLS stream ends: ``"clean"`` after a close_notify, ``"ragged"``
    when the TCP connection ended without one (trio reports that as
    BrokenResourceError unless https_compatible)."""
    data = bytearray()
    with trio.fail_after(WAIT):
        while True:
            try:
                chunk = await stream.receive_some(65536)
            except trio.BrokenResourceError:
                return bytes(data), "ragged"
            if not chunk:
                return bytes(data), "clean"
            data += chunk


async def test_server_sends_close_notify_after_closing_the_stream(server: RunningServer) -> None:
    wire = await starttls_wire(server)
    assert isinstance(wire.stream, trio.SSLStream)
    await wire.send(HEADER)
    await wire.read_until(b"</stream:features>")
    await wire.send(FOOTER)
    data, end = await read_to_tls_end(wire.stream)
    assert data.endswith(FOOTER), data
    assert end == "clean"


async def test_server_sends_close_notify_after_a_stream_error(server: RunningServer) -> None:
    wire = await starttls_wire(server)
    assert isinstance(wire.stream, trio.SSLStream)
    await wire.send(HEADER)
    await wire.read_until(b"</stream:features>")
    await wire.send(b"<message><body>before auth</body></message>")
    data, end = await read_to_tls_end(wire.stream)
    assert stream_error(data) == "not-authorized" and data.endswith(FOOTER), data
    assert end == "clean"


def fake_tls_server(tmp_path: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A server context with a certificate for "localhost" and a client context trusting it."""
    ca = trustme.CA()
    ca_file = tmp_path / "fake-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(server_context)
    return server_context, ssl.create_default_context(cafile=str(ca_file))


async def test_client_sends_close_notify_when_it_closes(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    """The client's side of the same rule, seen by a fake server over TLS (PLAIN
    keeps it simple: its success needs no server signature)."""
    server_context, client_context = fake_tls_server(tmp_path)
    ends: list[str] = []
    done = trio.Event()

    async def handler(stream: trio.SSLStream[trio.SocketStream]) -> None:
        wire = Wire(stream)
        try:
            await stream.do_handshake()
            await stream.send_all(FAKE_HEADER + PLAIN_FEATURES)
            await wire.read_until(b"</auth>")
            await stream.send_all(f"<success xmlns='{SASL_NS}'/>".encode())
            await wire.read_until(b"<stream:stream")
            await wire.read_until(b">")
            await stream.send_all(FAKE_HEADER + BIND_FEATURES)
            await wire.read_until(b"</iq>")
            await stream.send_all(
                b"<iq type='result' id='" + last_id(wire.data) + b"'>"
                b"<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
                b"<jid>juliet@localhost/x</jid></bind></iq>"
            )
            await wire.read_until(FOOTER)
            await stream.send_all(FOOTER)
            _, end = await read_to_tls_end(stream)
            ends.append(end)
        finally:
            done.set()

    listeners = await nursery.start(trio.serve_ssl_over_tcp, handler, 0, server_context)
    port = listeners[0].transport_listener.socket.getsockname()[1]
    with trio.fail_after(WAIT):
        async with open_client(
            "juliet@localhost/x",
            PASSWORDS["juliet"],
            host="127.0.0.1",
            port=port,
            direct_tls=True,
            ssl_context=client_context,
            mechanisms=("PLAIN",),
            stream_management=False,
        ):
            pass
        await done.wait()
    assert ends == ["clean"]


FAKE_HEADER = (
    b"<?xml version='1.0'?><stream:stream from='localhost' id='fake' version='1.0' "
    b"xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>"
)
PLAIN_FEATURES = (
    b"<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"
    b"<mechanism>PLAIN</mechanism></mechanisms></stream:features>"
)
SCRAM_FEATURES = (
    b"<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"
    b"<mechanism>SCRAM-SHA-256</mechanism></mechanisms></stream:features>"
)
BIND_FEATURES = (
    b"<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>"
)


def last_id(data: bytearray) -> bytes:
    found = re.findall(rb"id=['\"]([^'\"]+)['\"]", bytes(data))
    return found[-1]


# ---------------------------------------------------------------------------
# item 17: the client refuses SCRAM iteration counts below 4096 (RFC 5802 §5.1)


@pytest.mark.parametrize("iterations", [1, 4095])
async def test_client_refuses_a_server_asking_for_too_few_scram_iterations(
    nursery: trio.Nursery, tmp_path: Path, iterations: int
) -> None:
    """A fake server over real TLS answers with i=1 (cheap to brute-force what the
    client proves): the client fails, sends no proof, closes its stream and its
    TLS connection cleanly (close_notify)."""
    server_context, client_context = fake_tls_server(tmp_path)
    received = bytearray()
    ends: list[str] = []
    done = trio.Event()

    async def handler(stream: trio.SSLStream[trio.SocketStream]) -> None:
        wire = Wire(stream)
        try:
            await stream.do_handshake()
            await stream.send_all(FAKE_HEADER + SCRAM_FEATURES)
            first = element_text(await wire.read_until(b"</auth>"), b"auth")
            nonce = first.decode().rsplit("r=", 1)[1] + "server"
            salt = base64.b64encode(b"salt-salt-salt").decode()
            server_first = f"r={nonce},s={salt},i={iterations}".encode()
            await stream.send_all(
                f"<challenge xmlns='{SASL_NS}'>{base64.b64encode(server_first).decode()}"
                "</challenge>".encode()
            )
            rest, end = await read_to_tls_end(stream)
            wire.data += rest
            ends.append(end)
        finally:
            received.extend(wire.data)
            done.set()

    listeners = await nursery.start(trio.serve_ssl_over_tcp, handler, 0, server_context)
    port = listeners[0].transport_listener.socket.getsockname()[1]
    with trio.fail_after(WAIT), pytest.raises(AuthenticationError, match="iteration count"):
        async with open_client(
            "juliet@localhost",
            PASSWORDS["juliet"],
            host="127.0.0.1",
            port=port,
            direct_tls=True,
            ssl_context=client_context,
            mechanisms=("SCRAM-SHA-256",),
        ):
            pass
    with trio.fail_after(WAIT):
        await done.wait()
    assert b"<auth" in received
    assert b"<response" not in received and b"p=" not in received.split(b"</auth>")[1]
    assert received.endswith(FOOTER) and ends == ["clean"]


# ---------------------------------------------------------------------------
# poezio (Debian, curses, slixmpp 1.8.3) run headless in a pseudo-terminal

POEZIO = "/usr/bin/poezio"


def poezio_command(config_file: Path) -> list[str]:
    """poezio in a pseudo-terminal (``script``) with a fixed size; as ``nobody``
    when run as root (poezio refuses root)."""
    inner = f"stty rows 40 cols 160; exec {POEZIO} -f {config_file}"
    command = ["script", "-qfec", inner, "/dev/null"]
    if os.geteuid() == 0:
        command = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", *command]
    return command


def server_log(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "xmpp_trio.server"]


async def test_poezio_logs_in_and_binds_a_session(
    server: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    """poezio configured only with the server address, the account and the test
    CA (TLS stays required, certificate checked): its session gets bound. On TLS
    1.3 its slixmpp 1.8.3 is refused tls-unique three times, then logs in with
    SCRAM on the same stream."""
    caplog.set_level(logging.INFO, logger="xmpp_trio.server")
    if not os.path.exists(POEZIO) or shutil.which("script") is None:
        if os.environ.get("CI"):
            pytest.fail("poezio is not installed in CI")
        pytest.skip("poezio is not installed (apt install poezio)")
    home = Path(tempfile.mkdtemp(prefix="poezio-"))
    try:
        shutil.copy(server.ca_file, home / "ca.pem")
        config_file = home / "poezio.cfg"
        config_file.write_text(
            "[Poezio]\n"
            "jid = romeo@localhost/poezio\n"
            f"password = {PASSWORDS['romeo']}\n"
            "custom_host = 127.0.0.1\n"
            f"custom_port = {server.starttls_port}\n"
            f"ca_cert_path = {home / 'ca.pem'}\n"
        )
        if os.geteuid() == 0:  # poezio runs as nobody (see poezio_command)
            for path in [home, *home.iterdir()]:
                os.chown(path, 65534, 65534)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home / "config"),
            "XDG_DATA_HOME": str(home / "data"),
            "XDG_CACHE_HOME": str(home / "cache"),
            "TERM": "xterm",
            "LANG": "C.UTF-8",
        }
        romeo = JID.parse("romeo@localhost")
        async with trio.open_nursery() as nursery:
            process = await nursery.start(
                partial(
                    trio.run_process,
                    poezio_command(config_file),
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    check=False,
                )
            )
            try:
                with trio.fail_after(30):
                    while not server.router.resources(romeo):
                        await trio.sleep(0.05)  # polling the server's state, not timing
                (bound,) = [str(jid) for jid, _ in server.router.resources(romeo)]
                assert bound.startswith("romeo@localhost/poezio")  # poezio adds a suffix
                # On its first connection, with SCRAM (before, poezio was locked out
                # twice with policy-violation and came back a third time with PLAIN).
                logins = [m for m in server_log(caplog) if "authenticated romeo" in m]
                assert len(logins) == 1 and re.match(r"session 1: .* with SCRAM-", logins[0])
                assert not [m for m in server_log(caplog) if "policy-violation" in m]
            finally:
                process.kill()
    finally:
        shutil.rmtree(home, ignore_errors=True)
