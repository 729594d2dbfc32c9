"""The bundled server on real loopback sockets with real TLS (trustme) and real peers:
our own client and slixmpp (RFC 6120 end to end)."""

from __future__ import annotations

import os
import signal
import ssl
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import memory
import pytest
import trio
import trio.testing
from conftest import PASSWORDS, RunningServer

from xmpp_sansio.errors import StreamErrorCondition
from xmpp_sansio.testing import seeded_rng
from xmpp_trio.client import AuthenticationError, StreamError, open_client
from xmpp_trio.config import ServerConfig
from xmpp_trio.server import run_server

PEER_SCRIPT = Path(__file__).parent / "peers" / "slixmpp_peer.py"
REPO = Path(__file__).resolve().parents[2]


def chat(to: str, body: str) -> ET.Element:
    msg = ET.Element("{jabber:client}message", {"to": to, "type": "chat"})
    ET.SubElement(msg, "{jabber:client}body").text = body
    return msg


async def next_message(client: object) -> ET.Element:
    with trio.fail_after(10):
        async for stanza in client:  # type: ignore[attr-defined]
            if stanza.tag == "{jabber:client}message":
                return stanza  # type: ignore[no-any-return]
    raise AssertionError("stream ended without a message")


@pytest.mark.parametrize("direct_tls", [False, True], ids=["starttls", "direct-tls"])
async def test_own_clients_exchange_messages_with_scram_sha_256(
    server: RunningServer, direct_tls: bool
) -> None:
    port = server.directtls_port if direct_tls else server.starttls_port
    common = {
        "host": "127.0.0.1",
        "port": port,
        "direct_tls": direct_tls,
        "ssl_context": server.client_context(),
        "mechanisms": ("SCRAM-SHA-256",),
    }
    async with (
        open_client("juliet@localhost/balcony", PASSWORDS["juliet"], **common) as juliet,  # type: ignore[arg-type]
        open_client("romeo@localhost/orchard", PASSWORDS["romeo"], **common) as romeo,  # type: ignore[arg-type]
    ):
        assert str(juliet.jid) == "juliet@localhost/balcony"
        await romeo.send(ET.Element("{jabber:client}presence"))  # available: bare-JID delivery
        await romeo.send(chat("juliet@localhost/balcony", "Wherefore art thou?"))
        got = await next_message(juliet)
        assert got.findtext("{jabber:client}body") == "Wherefore art thou?"
        assert got.get("from") == "romeo@localhost/orchard"  # stamped by the server
        await juliet.send(chat("romeo@localhost", "By a name I know not how to tell thee who I am"))
        got = await next_message(romeo)
        assert got.get("from") == "juliet@localhost/balcony"


async def test_channel_binding_mechanism_is_chosen_by_default(server: RunningServer) -> None:
    async with open_client(
        "juliet@localhost",
        PASSWORDS["juliet"],
        host="127.0.0.1",
        port=server.starttls_port,
        ssl_context=server.client_context(),
    ) as juliet:
        assert juliet.jid.resource
        assert juliet._conn._mechanism is None or juliet._conn._mechanism.name.endswith("-PLUS")


async def test_wrong_password_is_not_authorized(server: RunningServer) -> None:
    with pytest.raises(AuthenticationError) as info:
        async with open_client(
            "juliet@localhost",
            "not her password",
            host="127.0.0.1",
            port=server.starttls_port,
            ssl_context=server.client_context(),
        ):
            pass
    assert info.value.condition == "not-authorized"


async def test_client_verifies_the_server_certificate(server: RunningServer) -> None:
    import ssl

    with pytest.raises(Exception) as info:
        async with open_client(
            "juliet@localhost",
            PASSWORDS["juliet"],
            host="127.0.0.1",
            port=server.starttls_port,
            ssl_context=ssl.create_default_context(),  # does not trust the test CA
        ):
            pass
    assert "CERTIFICATE_VERIFY_FAILED" in repr(info.value) or "could not connect" in str(info.value)


async def raw_exchange(port: int, data: bytes, until: bytes) -> bytes:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    await stream.send_all(data)
    received = b""
    with trio.fail_after(10):
        while until not in received:
            chunk = await stream.receive_some(65536)
            if not chunk:
                break
            received += chunk
    await stream.aclose()
    return received


HEADER = (
    b"<?xml version='1.0'?><stream:stream to='localhost' version='1.0' "
    b"xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>"
)


async def test_plain_before_tls_is_refused(server: RunningServer) -> None:
    received = await raw_exchange(
        server.starttls_port,
        HEADER
        + b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>"
        + b"AGp1bGlldAByMG0zMG15cjBtMzA=</auth>",
        until=b"</failure>",
    )
    assert b"<starttls" in received and b"<required/>" in received
    assert b"<encryption-required/>" in received
    assert b"<success" not in received


async def test_garbage_gets_not_well_formed_and_a_closed_stream(server: RunningServer) -> None:
    received = await raw_exchange(
        server.starttls_port, HEADER + b"<a></b>", until=b"</stream:stream>"
    )
    assert b"<not-well-formed" in received
    assert received.endswith(b"</stream:stream>")


async def test_new_session_with_same_full_jid_replaces_the_old_one(server: RunningServer) -> None:
    kw = {"host": "127.0.0.1", "port": server.starttls_port, "ssl_context": server.client_context()}
    async with open_client("romeo@localhost/orchard", PASSWORDS["romeo"], **kw) as first:  # type: ignore[arg-type]  # noqa: SIM117
        async with open_client("romeo@localhost/orchard", PASSWORDS["romeo"], **kw) as second:  # type: ignore[arg-type]
            with trio.fail_after(10):
                await first.closed.wait()
            assert isinstance(first.error, StreamError)
            assert first.error.condition is StreamErrorCondition.CONFLICT
            assert str(second.jid) == "romeo@localhost/orchard"


async def run_slixmpp(server: RunningServer, *args: str) -> str:
    result = await trio.run_process(
        [
            sys.executable,
            str(PEER_SCRIPT),
            *args[:2],
            "127.0.0.1",
            str(server.starttls_port),
            str(server.ca_file),
            *args[2:],
        ],
        capture_stdout=True,
        capture_stderr=True,
        check=False,
    )
    return result.stdout.decode() + result.stderr.decode()


async def test_slixmpp_and_own_client_exchange_messages(server: RunningServer) -> None:
    async with (
        open_client(
            "juliet@localhost/balcony",
            PASSWORDS["juliet"],
            host="127.0.0.1",
            port=server.starttls_port,
            ssl_context=server.client_context(),
        ) as juliet,
        trio.open_nursery() as nursery,
    ):
        await juliet.send(ET.Element("{jabber:client}presence"))
        output: list[str] = []

        async def slixmpp_romeo() -> None:
            output.append(
                await run_slixmpp(
                    server,
                    "romeo@localhost/slix",
                    PASSWORDS["romeo"],
                    "juliet@localhost",
                    "send",
                    "SCRAM-SHA-256",
                )
            )

        nursery.start_soon(slixmpp_romeo)
        got = await next_message(juliet)
        assert got.findtext("{jabber:client}body") == "hello from slixmpp"
        assert got.get("from") == "romeo@localhost/slix"
        await juliet.send(chat("romeo@localhost/slix", "You sent: hello from slixmpp"))
    text = output[0]
    assert "SESSION romeo@localhost/slix" in text
    assert "GOT You sent: hello from slixmpp FROM juliet@localhost/balcony" in text


async def test_slixmpp_with_wrong_password_fails_authentication(server: RunningServer) -> None:
    text = await run_slixmpp(server, "romeo@localhost", "wrong", "juliet@localhost", "send")
    assert "FAILED auth" in text
    assert "SESSION" not in text


async def test_serve_command_closes_streams_on_sigterm(tmp_path: Path, ca: object) -> None:
    """`xmpp-trio serve` as a real process: a client connects, SIGTERM arrives, the client
    gets a system-shutdown stream error and the process exits 0."""
    config = tmp_path / "xmpp.toml"
    config.write_text(
        'domains = ["localhost"]\n'
        f'data_dir = "{tmp_path / "data"}"\n'
        "[[listeners]]\n"
        'kind = "c2s-starttls"\n'
        'address = "127.0.0.1"\n'
        "port = 0\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    subprocess.run(
        [
            sys.executable,
            "-m",
            "xmpp_trio",
            "adduser",
            "juliet@localhost",
            "--password",
            "pw-juliet-1",
            "--config",
            str(config),
        ],
        check=True,
        env=env,
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "xmpp_trio", "serve", "--config", str(config)],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        port = None
        assert proc.stderr is not None
        for line in proc.stderr:
            if "listening for c2s-starttls" in line:
                port = int(line.rsplit("port", 1)[1])
                break
        assert port is not None
        cert = tmp_path / "data" / "tls" / "cert.pem"
        import ssl

        ctx = ssl.create_default_context(cafile=str(cert))
        async with open_client(
            "juliet@localhost", "pw-juliet-1", host="127.0.0.1", port=port, ssl_context=ctx
        ) as juliet:
            proc.send_signal(signal.SIGTERM)
            with trio.fail_after(10):
                await juliet.closed.wait()
            assert isinstance(juliet.error, StreamError)
            assert juliet.error.condition is StreamErrorCondition.SYSTEM_SHUTDOWN
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()


async def test_silent_client_gets_connection_timeout(
    server_config: ServerConfig, autojump_clock: trio.testing.MockClock
) -> None:
    """A peer that connects and says nothing (slowloris) is closed with
    connection-timeout once the negotiation timeout passes (RFC 6120 §4.9.3.4)."""
    import dataclasses

    from xmpp_trio.config import LimitsConfig

    config = dataclasses.replace(server_config, limits=LimitsConfig(negotiation_timeout=0.5))
    async with memory.serving(config) as server:
        stream = memory.connect(server)
        received = b""
        with trio.fail_after(10):
            while chunk := await stream.receive_some(65536):
                received += chunk
    assert b"<connection-timeout" in received
    assert received.endswith(b"</stream:stream>")


async def test_tls_garbage_on_direct_tls_port_does_not_hurt_the_server(
    server: RunningServer,
) -> None:
    stream = await trio.open_tcp_stream("127.0.0.1", server.directtls_port)
    await stream.send_all(b"\x16\x03\x01\x00\x05hello" + HEADER)
    with trio.fail_after(10):
        while await stream.receive_some(65536):
            pass
    # The server still serves others.
    async with open_client(
        "juliet@localhost",
        PASSWORDS["juliet"],
        host="127.0.0.1",
        port=server.directtls_port,
        direct_tls=True,
        ssl_context=server.client_context(),
    ) as juliet:
        assert juliet.jid.local == "juliet"


async def test_iq_requests_get_results_and_typed_errors(server: RunningServer) -> None:
    from xmpp_sansio.errors import StanzaErrorCondition
    from xmpp_trio.client import IqErrorResponse

    async with open_client(
        "juliet@localhost",
        PASSWORDS["juliet"],
        host="127.0.0.1",
        port=server.starttls_port,
        ssl_context=server.client_context(),
    ) as juliet:
        ping = ET.Element("{jabber:client}iq", {"type": "get", "to": "localhost"})
        ET.SubElement(ping, "{urn:xmpp:ping}ping")
        result = await juliet.request(ping, timeout=10)
        assert result.get("type") == "result" and result.get("from") == "localhost"
        unknown = ET.Element("{jabber:client}iq", {"type": "get", "to": "localhost"})
        ET.SubElement(unknown, "{urn:example:nothing}query")
        with pytest.raises(IqErrorResponse) as info:
            await juliet.request(unknown, timeout=10)
        assert info.value.error.condition is StanzaErrorCondition.SERVICE_UNAVAILABLE


async def test_in_band_registration_creates_an_account_once_per_limit(
    server_config: object, tmp_path: Path, nursery: trio.Nursery, ca: object
) -> None:
    """XEP-0077 before authentication over TLS: the new account can log in; a second
    registration from the same address beyond the hourly limit is refused."""
    import dataclasses
    import ssl

    from xmpp_sansio.jid import JID
    from xmpp_sansio.register import registration_request
    from xmpp_sansio.stream.config import ClientConfig
    from xmpp_sansio.stream.connection import ClientConnection
    from xmpp_sansio.xml.writer import serialize
    from xmpp_trio.config import LimitsConfig
    from xmpp_trio.server import run_server

    config = dataclasses.replace(
        server_config,  # type: ignore[type-var]
        allow_registration=True,
        limits=LimitsConfig(registrations_per_ip_per_hour=1),
    )
    bound = await nursery.start(run_server, config)
    port = next(b.port for b in bound if b.kind == "c2s-directtls")
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))  # type: ignore[attr-defined]
    ctx = ssl.create_default_context(cafile=str(ca_file))

    async def register(username: str) -> bytes:
        raw = await trio.open_tcp_stream("127.0.0.1", port)
        stream = trio.SSLStream(raw, ctx, server_hostname="localhost")
        conn = ClientConnection(
            ClientConfig(rng=seeded_rng(0), jid=JID.parse("x@localhost"), password="x"),
            tls_active=True,
        )
        conn.start()
        await stream.send_all(conn.data_to_send())
        received = b""
        with trio.fail_after(10):
            while b"</stream:features>" not in received:
                received += await stream.receive_some(65536)
            assert b"iq-register" in received
            iq = ET.Element("{jabber:client}iq", {"type": "set", "id": "reg"})
            iq.append(registration_request(username, "fresh-Passw0rd"))
            await stream.send_all(serialize(iq))
            answer = b""
            while b'id="reg"' not in answer:
                answer += await stream.receive_some(65536)
        await trio.aclose_forcefully(stream)
        return answer

    first = await register("benvolio")
    assert b'type="result"' in first
    async with open_client(
        "benvolio@localhost",
        "fresh-Passw0rd",
        host="127.0.0.1",
        port=port,
        direct_tls=True,
        ssl_context=ctx,
    ) as benvolio:
        assert benvolio.jid.local == "benvolio"
    second = await register("mercutio")
    assert b"<not-acceptable" in second


LIFECYCLE_SCRIPT = Path(__file__).parent / "peers" / "slixmpp_lifecycle.py"
LIFECYCLE_STEPS = [
    "connected-authenticated-bound-roster",
    "romeo-got-subscribe",
    "juliet-sees-romeo-available",
    "romeo-sees-juliet-available",
    "rosters-both",
    "messages-bare-and-full",
    "disconnect-seen-as-unavailable",
    "offline-message-delivered-with-delay",
    "blocked-contact-message-never-arrives",
    "unblocked-contact-message-arrives",
    "vcard-of-contact",
    "disco-info",
]


async def test_slixmpp_clients_walk_the_im_lifecycle(server: RunningServer) -> None:
    """RFC 6121 end to end with two slixmpp clients: subscription handshake, presence,
    bare and full JID messages, unavailable on disconnect, offline delivery with
    XEP-0203 delay, blocking (XEP-0191), vCard (XEP-0054), and disco#info listing
    exactly the features the server's services implement."""
    result = await trio.run_process(
        [
            sys.executable,
            str(LIFECYCLE_SCRIPT),
            "127.0.0.1",
            str(server.starttls_port),
            str(server.ca_file),
            PASSWORDS["juliet"],
            PASSWORDS["romeo"],
        ],
        capture_stdout=True,
        capture_stderr=True,
        check=False,
    )
    out = result.stdout.decode()
    passed = [line[3:] for line in out.splitlines() if line.startswith("OK ")]
    assert passed == LIFECYCLE_STEPS, out + result.stderr.decode()[-3000:]
    (features_line,) = [line for line in out.splitlines() if line.startswith("FEATURES ")]
    advertised = set(features_line.split()[1:])
    from xmpp_sansio.server.disco import DiscoService

    disco = next(s for s in server.router.services if isinstance(s, DiscoService))
    assert advertised == set(disco.server_info().features)


async def test_logout_times_written_behind_are_on_disk_once_the_server_stops(
    server_config: ServerConfig, ca: Any
) -> None:
    """Last activity (XEP-0012) is written behind, about once a second; a
    server that stops writes what is still waiting."""
    import sqlite3

    async with trio.open_nursery() as nursery:
        bound = await nursery.start(run_server, server_config)
        port = next(b.port for b in bound if b.kind == "c2s-starttls")
        ctx = ssl.create_default_context()
        ca.configure_trust(ctx)
        async with open_client(
            "juliet@localhost/balcony",
            PASSWORDS["juliet"],
            host="127.0.0.1",
            port=port,
            ssl_context=ctx,
        ) as juliet:
            await juliet.send(ET.Element("{jabber:client}presence"))
        nursery.cancel_scope.cancel()  # stops before the next periodic flush, most likely
    with sqlite3.connect(server_config.database_path) as db:
        rows = db.execute("SELECT user FROM last_activity").fetchall()
    assert rows == [("juliet@localhost",)]
