"""Our Trio client's login over real loopback TLS (trustme): SASL2 (XEP-0388)
by default where the server offers it, RFC 6120 SASL where it does not (our
server without ``sasl2``, Prosody 0.12); SCRAM ``-PLUS`` bound with
``tls-unique`` on TLS 1.2 and ``tls-server-end-point`` on TLS 1.3 (RFC 5929,
XEP-0440); the persistent client keeps its user-agent id in a 0600 file and
resumes a dropped session after a SASL2 login."""

from __future__ import annotations

import dataclasses
import json
import os
import ssl
from pathlib import Path

import pytest
import trio
import trustme
from conftest import PASSWORDS, RunningServer, start_running
from prosody_peer import free_port, prosody, require_prosody

from xmpp_sansio.stream.login_options import LoginOptions
from xmpp_trio.client import open_client
from xmpp_trio.config import ServerConfig
from xmpp_trio.login_state import LoginState
from xmpp_trio.persistent import open_persistent_client

WAIT = 20


def limit_tls(server: RunningServer, version: str) -> None:
    if version == "TLSv1.2":  # forced on the SERVER side: the client offers 1.3 too
        server.server.ssl_context.maximum_version = ssl.TLSVersion.TLSv1_2


async def sasl2_server(
    server_config: ServerConfig, ca: trustme.CA, tmp_path: Path, nursery: trio.Nursery
) -> RunningServer:
    config = dataclasses.replace(server_config, sasl2=True)
    return await start_running(config, ca, tmp_path, nursery)


@pytest.mark.parametrize("tls_version", ["TLSv1.2", "TLSv1.3"])
@pytest.mark.parametrize("sasl2", [True, False])
async def test_our_client_binds_scram_to_the_best_channel_binding_of_the_tls_version(
    server_config: ServerConfig,
    ca: trustme.CA,
    tmp_path: Path,
    nursery: trio.Nursery,
    tls_version: str,
    sasl2: bool,
) -> None:
    config = dataclasses.replace(server_config, sasl2=sasl2)
    server = await start_running(config, ca, tmp_path, nursery)
    limit_tls(server, tls_version)
    with trio.fail_after(WAIT):
        async with open_client(
            "juliet@localhost", PASSWORDS["juliet"], **server.client_options()
        ) as client:
            assert client._stream.version() == tls_version  # type: ignore[attr-defined]
            assert client.sasl2 is sasl2
            assert client.mechanism == "SCRAM-SHA-256-PLUS"
            expected = "tls-unique" if tls_version == "TLSv1.2" else "tls-server-end-point"
            assert client.channel_binding == expected
            assert client.jid.bare == client.jid.parse("juliet@localhost")


async def test_against_our_server_with_sasl2_the_client_binds_with_bind2_and_enables_sm_inline(
    server_config: ServerConfig, ca: trustme.CA, tmp_path: Path, nursery: trio.Nursery
) -> None:
    server = await sasl2_server(server_config, ca, tmp_path, nursery)
    with trio.fail_after(WAIT):
        async with open_client(
            "juliet@localhost",
            PASSWORDS["juliet"],
            login=LoginOptions(software="Balcony"),
            **server.client_options(),
        ) as client:
            assert client.sasl2
            assert client.jid.resource is not None and client.jid.resource.startswith("Balcony")
            assert client.sm_state is not None and client.sm_state.id  # <enabled/> in <bound/>


@pytest.mark.parametrize("sasl2", [True, False])
async def test_our_client_can_bind_to_the_server_certificate_on_tls_1_2_too(
    server_config: ServerConfig,
    ca: trustme.CA,
    tmp_path: Path,
    nursery: trio.Nursery,
    sasl2: bool,
) -> None:
    config = dataclasses.replace(server_config, sasl2=sasl2)
    server = await start_running(config, ca, tmp_path, nursery)
    limit_tls(server, "TLSv1.2")
    with trio.fail_after(WAIT):
        async with open_client(
            "juliet@localhost",
            PASSWORDS["juliet"],
            login=LoginOptions(channel_bindings=("tls-server-end-point",)),
            **server.client_options(),
        ) as client:
            assert client.sasl2 is sasl2 and client.mechanism == "SCRAM-SHA-256-PLUS"
            assert client.channel_binding == "tls-server-end-point"


async def test_sasl2_can_be_turned_off_on_the_client(
    server_config: ServerConfig, ca: trustme.CA, tmp_path: Path, nursery: trio.Nursery
) -> None:
    server = await sasl2_server(server_config, ca, tmp_path, nursery)
    with trio.fail_after(WAIT):
        async with open_client(
            "juliet@localhost",
            PASSWORDS["juliet"],
            login=LoginOptions(sasl2=False),
            **server.client_options(),
        ) as client:
            assert not client.sasl2 and client.mechanism == "SCRAM-SHA-256-PLUS"


async def test_the_persistent_client_keeps_its_user_agent_id_in_a_private_file_and_resumes(
    server_config: ServerConfig, ca: trustme.CA, tmp_path: Path, nursery: trio.Nursery
) -> None:
    server = await sasl2_server(server_config, ca, tmp_path, nursery)
    state_file = tmp_path / "juliet.login"
    with trio.fail_after(WAIT):
        async with open_persistent_client(
            "juliet@localhost",
            PASSWORDS["juliet"],
            login_state=state_file,
            backoff_base=0.01,
            backoff_cap=0.01,
            **server.client_options(),
        ) as pc:
            await pc.wait_connected()
            assert pc.client.sasl2
            assert os.stat(state_file).st_mode & 0o777 == 0o600
            saved = json.loads(state_file.read_text())
            assert saved["user_agent_id"] == pc.login_state.user_agent_id
            old = pc.client
            await old.abort()  # a network failure: the session stays resumable
            await pc.wait_disconnected()
            await pc.wait_connected()
            assert pc.client is not old
            assert pc.resumed and pc.client.sasl2 and pc.reconnects == 1
    assert LoginState.load(state_file).user_agent_id == saved["user_agent_id"]


async def test_the_persistent_client_reconnects_with_fast_bind2_and_resume_without_pbkdf2(
    server_config: ServerConfig, ca: trustme.CA, tmp_path: Path, nursery: trio.Nursery
) -> None:
    config = dataclasses.replace(
        server_config, sasl2=True, fast_token_lifetime=3600, fast_rotate_within=60
    )
    server = await start_running(config, ca, tmp_path, nursery)
    accounts = server.server.accounts
    state_file = tmp_path / "juliet.login"
    with trio.fail_after(WAIT):
        async with open_persistent_client(
            "juliet@localhost",
            PASSWORDS["juliet"],
            login_state=state_file,
            backoff_base=0.01,
            backoff_cap=0.01,
            **server.client_options(),
        ) as pc:
            await pc.wait_connected()
            assert pc.client.mechanism == "SCRAM-SHA-256-PLUS"
            token = json.loads(state_file.read_text())["fast_token"]
            assert token["mechanism"] == "HT-SHA-256-ENDP" and token["token"]
            derivations, lookups = accounts.derivations, accounts.fast_lookups
            old = pc.client
            await old.abort()
            await pc.wait_disconnected()
            await pc.wait_connected()
            # one <authenticate/>: the token, Bind2 (unused) and <resume/> inline
            assert pc.resumed and pc.client.mechanism == "HT-SHA-256-ENDP"
            assert accounts.derivations == derivations  # no PBKDF2 on the server
            assert accounts.fast_lookups == lookups + 1
            assert json.loads(state_file.read_text())["fast_token"]["count"] == 1
        # the next run of the application starts from the file: FAST at once
        async with open_client(
            "juliet@localhost",
            "not the password",
            login=LoginState.load(state_file).options(),
            **server.client_options(),
        ) as client:
            assert client.mechanism == "HT-SHA-256-ENDP" and client.sasl2


async def test_rotation_fallback_and_log_out_of_fast_tokens(
    server_config: ServerConfig, ca: trustme.CA, tmp_path: Path, nursery: trio.Nursery
) -> None:
    # a token used with less than fast_rotate_within left is replaced (XEP-0484 §3.4)
    config = dataclasses.replace(
        server_config, sasl2=True, fast_token_lifetime=3600, fast_rotate_within=7200
    )
    server = await start_running(config, ca, tmp_path, nursery)
    state = LoginState()
    jid, password = "juliet@localhost", PASSWORDS["juliet"]
    with trio.fail_after(WAIT):
        async with open_client(
            jid, password, login=state.options(), **server.client_options()
        ) as c:
            state.update(c.fast_token)
        first = state.fast_token
        assert first is not None
        async with open_client(
            jid, password, login=state.options(), **server.client_options()
        ) as c:
            assert c.mechanism == first.mechanism
            state.update(c.fast_token)
        assert state.fast_token is not None and state.fast_token.token != first.token
        # the superseded token is refused: the client drops it and uses the password
        stale = LoginState(user_agent_id=state.user_agent_id, fast_token=first)
        async with open_client(
            jid, password, login=stale.options(), **server.client_options()
        ) as c:
            assert c.mechanism == "SCRAM-SHA-256-PLUS"
            assert c.fast_token is not None and c.fast_token.token != first.token


async def test_against_prosody_0_12_without_sasl2_the_client_logs_in_the_classic_way(
    ca: trustme.CA, tmp_path: Path
) -> None:
    require_prosody()
    with trio.fail_after(60):
        async with prosody(
            "prosody.example",
            ca,
            tmp_path / "prosody",
            ("127.0.0.1", free_port()),
            {"juliet": "s3cret"},
        ) as (c2s, _s2s):
            context = ssl.create_default_context(cafile=str(tmp_path / "prosody" / "ca.pem"))
            async with open_client(
                "juliet@prosody.example",
                "s3cret",
                host="127.0.0.1",
                port=c2s,
                ssl_context=context,
                login=LoginOptions(user_agent_id="d4565fa7-4d72-4749-b3d3-740edbf87770"),
            ) as client:
                assert not client.sasl2 and client.fast_token is None
                assert client.mechanism is not None and client.mechanism.startswith("SCRAM-")
                assert client.jid.bare == client.jid.parse("juliet@prosody.example")
