"""FAST (XEP-0484) on the real server over direct TLS with ``sasl2 = true``:
a password login with ``<request-token/>`` gets ``<token/>``; the token logs
in (HT-SHA-256-NONE and, bound to the certificate, -ENDP) with Bind 2 in one
round trip and no PBKDF2 on the server; a replayed count, a revoked client
and a superseded token fail; the token is stored sealed, under a 0600 key."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import re
import stat
from contextlib import AbstractAsyncContextManager
from xml.etree.ElementTree import Element

import pytest
import trio
import trustme
from conftest import PASSWORDS, RunningServer, start_running
from test_admin import cli, write_config
from test_bind2_wire import connect
from test_security import WAIT, Wire

from xmpp_sansio.client.adhoc import CommandResponse
from xmpp_sansio.forms import Field, Form, FormType
from xmpp_sansio.sasl import create_client_mechanism
from xmpp_sansio.sasl.ht import ht_initiator_message, ht_responder
from xmpp_sansio.sasl.scram import ssdp_hash, ssdp_of
from xmpp_sansio.server.adhoc.clients import CLIENTS_NODE
from xmpp_sansio.stanza import IqType, make_iq
from xmpp_trio.adhoc import list_commands, run_command
from xmpp_trio.client import Client, IqErrorResponse, open_client
from xmpp_trio.config import ServerConfig
from xmpp_trio.stores.fast import KEY_FILE

SASL2 = "urn:xmpp:sasl:2"
PING = "urn:xmpp:ping"
AGENT = "d4565fa7-4d72-4749-b3d3-740edbf87770"
USER_AGENT = f"<user-agent id='{AGENT}'><software>AwesomeXMPP</software></user-agent>"


def endpoint_binding(wire: Wire) -> bytes:
    """tls-server-end-point of the server's certificate (RFC 5929 §4.1, SHA-256)."""
    stream = wire.stream
    assert isinstance(stream, trio.SSLStream)
    der = stream.getpeercert(binary_form=True)
    assert der is not None
    return hashlib.sha256(der).digest()


async def authenticate(wire: Wire, mechanism: str, message: bytes, extra: str) -> bytes:
    await wire.send(
        (
            f"<authenticate xmlns='{SASL2}' mechanism='{mechanism}'><initial-response>"
            f"{base64.b64encode(message).decode()}</initial-response>{USER_AGENT}{extra}"
            "</authenticate>"
        ).encode()
    )
    start = len(wire.data)
    with trio.fail_after(WAIT):
        while b"</success>" not in wire.data[start:] and b"</failure>" not in wire.data[start:]:
            assert await wire._fill(), bytes(wire.data[start:])
    return bytes(wire.data[start:])


async def password_login(server: RunningServer, mechanism: str) -> bytes:
    wire, features = await connect(server)
    assert b'<fast xmlns="urn:xmpp:fast:0">' in features
    assert f"<mechanism>{mechanism}</mechanism>".encode() in features
    message = f"\x00juliet\x00{PASSWORDS['juliet']}".encode()
    extra = f"<request-token xmlns='urn:xmpp:fast:0' mechanism='{mechanism}'/>"
    success = await authenticate(wire, "PLAIN", message, extra)
    token = re.search(
        rb"<token xmlns=\"urn:xmpp:fast:0\" expiry=\"[^\"]+\" token=\"([^\"]+)\"", success
    )
    assert token, success
    await wire.aclose()
    return token.group(1)


async def token_login(
    server: RunningServer, token: bytes, count: int, mechanism: str = "HT-SHA-256-NONE"
) -> tuple[bytes, bytes]:
    """A FAST login with Bind 2; the server's answer and the binding used."""
    wire, _ = await connect(server)
    cb = endpoint_binding(wire) if mechanism.endswith("ENDP") else b""
    message = ht_initiator_message("juliet", token, cb)
    extra = f"<fast xmlns='urn:xmpp:fast:0' count='{count}'/><bind xmlns='urn:xmpp:bind:0'/>"
    answer = await authenticate(wire, mechanism, message, extra)
    await wire.aclose()
    return answer, cb


def desk_client(server: RunningServer) -> AbstractAsyncContextManager[Client]:
    """juliet's session from our own client (a SASL2 client id of its own)."""
    return open_client(
        "juliet@localhost/desk",
        PASSWORDS["juliet"],
        host="127.0.0.1",
        port=server.starttls_port,
        ssl_context=server.client_context(),
    )


async def fast_server(
    server_config: ServerConfig,
    ca: trustme.CA,
    tmp_path: trio.Path,
    nursery: trio.Nursery,
    **kw: int,
) -> RunningServer:
    config = dataclasses.replace(server_config, sasl2=True, **kw)
    return await start_running(config, ca, tmp_path, nursery)  # type: ignore[arg-type]


async def test_token_login_binds_in_one_round_trip_without_pbkdf2(
    server_config: ServerConfig, ca: trustme.CA, tmp_path: trio.Path, nursery: trio.Nursery
) -> None:
    server = await fast_server(server_config, ca, tmp_path, nursery)
    accounts = server.server.accounts
    token = await password_login(server, "HT-SHA-256-NONE")
    derived = accounts.derivations
    assert derived == 1  # PLAIN's check
    answer, _ = await token_login(server, token, 1)
    assert b"<success" in answer and b'<bound xmlns="urn:xmpp:bind:0"' in answer, answer
    data = re.search(rb"<additional-data>([^<]+)</additional-data>", answer)
    assert data and base64.b64decode(data.group(1)) == ht_responder(token)
    assert accounts.derivations == derived and accounts.fast_lookups == 1  # no PBKDF2
    # The count only goes up (XEP-0484 §3.3): a replay fails.
    answer, _ = await token_login(server, token, 1)
    assert b"<failure" in answer and b"not-authorized" in answer, answer
    answer, _ = await token_login(server, token, 2)
    assert b"<success" in answer, answer


async def test_a_channel_bound_token_logs_in_and_the_token_is_sealed_at_rest(
    server_config: ServerConfig, ca: trustme.CA, tmp_path: trio.Path, nursery: trio.Nursery
) -> None:
    server = await fast_server(server_config, ca, tmp_path, nursery)
    token = await password_login(server, "HT-SHA-256-ENDP")
    answer, cb = await token_login(server, token, 1, "HT-SHA-256-ENDP")
    data = re.search(rb"<additional-data>([^<]+)</additional-data>", answer)
    assert data and base64.b64decode(data.group(1)) == ht_responder(token, cb), answer
    # Bound to its mechanism: the same token without the binding fails.
    answer, _ = await token_login(server, token, 2, "HT-SHA-256-NONE")
    assert b"<failure" in answer, answer
    key = server.config.data_dir / KEY_FILE
    assert stat.S_IMODE(key.stat().st_mode) == 0o600 and len(key.read_bytes()) == 32
    stored = b"".join(p.read_bytes() for p in server.config.data_dir.glob("*.db*"))
    assert token not in stored and base64.b64decode(token) not in stored


async def test_clients_lists_and_revoke_invalidates_a_client_on_the_command_line(
    server_config: ServerConfig,
    ca: trustme.CA,
    tmp_path: trio.Path,
    nursery: trio.Nursery,
    capsys: pytest.CaptureFixture[str],
) -> None:
    server = await fast_server(server_config, ca, tmp_path, nursery)
    token = await password_login(server, "HT-SHA-256-NONE")
    config = str(write_config(server.config, tmp_path))
    status, out, _ = await cli(capsys, "clients", "juliet@localhost", "--config", config)
    assert status == 0 and f"{AGENT}  AwesomeXMPP  -  last login " in out, out
    assert "FAST token" in out and "1 clients of juliet@localhost" in out
    # A live session of that client (Bind 2), and one of another client.
    live, _ = await connect(server)
    message = f"\x00juliet\x00{PASSWORDS['juliet']}".encode()
    assert b"<bound" in await authenticate(
        live, "PLAIN", message, "<bind xmlns='urn:xmpp:bind:0'/>"
    )
    status, out, _ = await cli(
        capsys, "revoke", "juliet@localhost", AGENT, "--json", "--config", config
    )
    assert status == 0 and json.loads(out) == {"revoked": True, "ended": 1}, out
    ended = await live.read_until(b"</stream:stream>")
    assert b"<not-authorized" in ended and b"this client was revoked" in ended, ended
    answer, _ = await token_login(server, token, 1)
    assert b"<failure" in answer and b"not-authorized" in answer, answer
    status, out, _ = await cli(capsys, "clients", "juliet@localhost", "--json", "--config", config)
    assert status == 0 and json.loads(out) == []
    status, _, err = await cli(capsys, "revoke", "juliet@localhost", AGENT, "--config", config)
    assert status == 1 and "has no client" in err


async def test_a_user_lists_and_revokes_their_own_clients_by_ad_hoc_command(
    server_config: ServerConfig, ca: trustme.CA, tmp_path: trio.Path, nursery: trio.Nursery
) -> None:
    server = await fast_server(server_config, ca, tmp_path, nursery)
    token = await password_login(server, "HT-SHA-256-NONE")
    async with desk_client(server) as juliet:
        nodes = [item.node for item in await list_commands(juliet, "localhost")]
        assert CLIENTS_NODE in nodes

        async def choose(stage: CommandResponse) -> Form:
            assert stage.form is not None
            field = stage.form.field("revoke")
            assert field is not None and [o.value for o in field.options] == [AGENT]
            assert field.options[0].label and "AwesomeXMPP" in field.options[0].label
            return Form(FormType.SUBMIT, fields=(Field("revoke", values=(AGENT,)),))

        done = await run_command(juliet, "localhost", CLIENTS_NODE, choose)
        assert done.status == "completed" and done.notes == (("info", "revoked 1 clients"),)
        # Nothing left to manage: no longer listed, nor to be run.
        assert CLIENTS_NODE not in [i.node for i in await list_commands(juliet, "localhost")]
        with pytest.raises(IqErrorResponse):
            await run_command(juliet, "localhost", CLIENTS_NODE)
    answer, _ = await token_login(server, token, 1)
    assert b"<failure" in answer and b"not-authorized" in answer, answer


async def test_an_ad_hoc_revoke_ends_the_revoked_clients_live_sessions_only(
    server_config: ServerConfig, ca: trustme.CA, tmp_path: trio.Path, nursery: trio.Nursery
) -> None:
    server = await fast_server(server_config, ca, tmp_path, nursery)
    await password_login(server, "HT-SHA-256-NONE")
    # A live session of that client (Bind 2), as in the command-line test.
    live, _ = await connect(server)
    message = f"\x00juliet\x00{PASSWORDS['juliet']}".encode()
    assert b"<bound" in await authenticate(
        live, "PLAIN", message, "<bind xmlns='urn:xmpp:bind:0'/>"
    )
    async with desk_client(server) as juliet:

        async def choose(stage: CommandResponse) -> Form:
            return Form(FormType.SUBMIT, fields=(Field("revoke", values=(AGENT,)),))

        done = await run_command(juliet, "localhost", CLIENTS_NODE, choose)
        assert done.status == "completed", done
        # XEP-0484/0388: the revoked client's stream ends as `xmpp-trio revoke` ends it.
        ended = await live.read_until(b"</stream:stream>")
        assert b"<not-authorized" in ended and b"stream:error" in ended, ended
        # The requester's own session (another client) goes on.
        pong = await juliet.request(
            make_iq(IqType.GET, "", Element(f"{{{PING}}}ping"), to="localhost")
        )
        assert pong.get("type") == "result"


async def test_an_expired_token_is_credentials_expired_on_the_wire(
    server_config: ServerConfig, ca: trustme.CA, tmp_path: trio.Path, nursery: trio.Nursery
) -> None:
    server = await fast_server(server_config, ca, tmp_path, nursery)
    token = await password_login(server, "HT-SHA-256-NONE")
    db = server.server.db  # the stored expiry moved into the past
    db.execute("UPDATE fast_tokens SET expiry = 1000")
    answer, _ = await token_login(server, token, 1)
    assert b"<failure" in answer and b"credentials-expired" in answer, answer
    # §4.1: the client falls back to its password and asks for a new token.
    assert await password_login(server, "HT-SHA-256-NONE") != token


async def test_scram_over_sasl2_carries_the_xep0474_hash_of_the_real_features(
    server_config: ServerConfig, ca: trustme.CA, tmp_path: trio.Path, nursery: trio.Nursery
) -> None:
    server = await fast_server(server_config, ca, tmp_path, nursery)
    wire, features = await connect(server)
    client = create_client_mechanism(
        "SCRAM-SHA-256", username="juliet", password=PASSWORDS["juliet"], nonce=b"z" * 18
    )
    first = base64.b64encode(client.initial_response() or b"").decode()
    await wire.send(
        f"<authenticate xmlns='{SASL2}' mechanism='SCRAM-SHA-256'><initial-response>{first}"
        f"</initial-response>{USER_AGENT}</authenticate>".encode()
    )
    challenge = await wire.read_until(b"</challenge>")
    h = ssdp_of(base64.b64decode(re.sub(rb"<[^>]+>", b"", challenge)))
    # The mechanisms of <authentication/> itself (not FAST's, inside <inline/>).
    auth = features[features.index(b"<authentication") : features.index(b"<inline>")]
    mechanisms = [m.decode() for m in re.findall(rb"<mechanism>([^<]+)</mechanism>", auth)]
    bindings = [t.decode() for t in re.findall(rb"channel-binding type=\"([^\"]+)\"", features)]
    assert "tls-server-end-point" in bindings
    assert h == ssdp_hash(mechanisms, bindings, "sha256")
    stripped = [m for m in mechanisms if not m.endswith("-PLUS")]
    assert h != ssdp_hash(stripped, bindings, "sha256")  # -PLUS stripped: detected
    assert h != ssdp_hash(mechanisms, None, "sha256")  # channel binding stripped: detected
    await wire.aclose()


async def test_rotation_keeps_the_old_token_until_the_new_one_is_used(
    server_config: ServerConfig, ca: trustme.CA, tmp_path: trio.Path, nursery: trio.Nursery
) -> None:
    # Every use is "near expiry": each login hands out a new token (§3.4).
    server = await fast_server(
        server_config, ca, tmp_path, nursery, fast_token_lifetime=3600, fast_rotate_within=7200
    )
    first = await password_login(server, "HT-SHA-256-NONE")
    answer, _ = await token_login(server, first, 1)
    rotated = re.search(rb" token=\"([^\"]+)\"", answer)
    assert rotated and rotated.group(1) != first, answer
    answer, _ = await token_login(server, first, 2)  # the new one is not used yet
    assert b"<success" in answer, answer
    latest = re.search(rb" token=\"([^\"]+)\"", answer)
    assert latest
    answer, _ = await token_login(server, latest.group(1), 1)
    assert b"<success" in answer, answer
    answer, _ = await token_login(server, first, 3)  # superseded once the newer was used
    assert b"<failure" in answer, answer
