"""XEP-0480 on the real server over direct TLS with ``sasl2 = true``: an
account with SCRAM-SHA-1 credentials only (as imported from Prosody) logs in
with SCRAM-SHA-1, asks for UPGR-SCRAM-SHA-256 and UPGR-SCRAM-SHA-512, runs
both tasks, and from then on logs in with SCRAM-SHA-256 and -512: no
password reset, and the server never saw the password."""

from __future__ import annotations

import base64
import dataclasses
import re

import trio
import trustme
from conftest import start_running
from test_fast_wire import connect
from test_security import Wire

from xmpp_sansio.sasl import create_client_mechanism
from xmpp_sansio.sasl.credentials import derive_scram_credentials, salted_password
from xmpp_trio.config import ServerConfig
from xmpp_trio.storage import AccountStore

SASL2 = "urn:xmpp:sasl:2"
UPGRADE = "urn:xmpp:sasl:upgrade:0"
PASSWORD = "queen-mab"


async def scram_login(wire: Wire, mechanism: str, extra: str = "") -> bytes:
    """A SCRAM login through SASL2; what follows the client-final-message."""
    client = create_client_mechanism(
        mechanism, username="mercutio", password=PASSWORD, nonce=b"q" * 18
    )
    first = base64.b64encode(client.initial_response() or b"").decode()
    await wire.send(
        f"<authenticate xmlns='{SASL2}' mechanism='{mechanism}'><initial-response>{first}"
        f"</initial-response>{extra}</authenticate>".encode()
    )
    challenge = await wire.read_until(b"</challenge>")
    data = base64.b64decode(re.sub(rb"<[^>]+>", b"", challenge))
    final = base64.b64encode(client.challenge(data)).decode()
    await wire.send(f"<response xmlns='{SASL2}'>{final}</response>".encode())
    return await wire.read_until(b"</", timeout=10) + await wire.read_until(b">")


async def test_a_sha1_only_account_gains_sha256_and_sha512_by_upgrade_tasks(
    server_config: ServerConfig, ca: trustme.CA, tmp_path: trio.Path, nursery: trio.Nursery
) -> None:
    config = dataclasses.replace(server_config, sasl2=True)
    with AccountStore.open(config.database_path) as store:
        imported = derive_scram_credentials(PASSWORD, "sha1", salt=b"p" * 16, iterations=10000)
        store.create_with_credentials("mercutio", "localhost", [imported])
    server = await start_running(config, ca, tmp_path, nursery)  # type: ignore[arg-type]
    wire, features = await connect(server)
    assert f'<upgrade xmlns="{UPGRADE}">UPGR-SCRAM-SHA-256</upgrade>'.encode() in features
    asked = "".join(f"<upgrade xmlns='{UPGRADE}'>UPGR-SCRAM-SHA-{n}</upgrade>" for n in (256, 512))
    answer = await scram_login(wire, "SCRAM-SHA-1", asked)
    for task, hash_name in (("UPGR-SCRAM-SHA-256", "sha256"), ("UPGR-SCRAM-SHA-512", "sha512")):
        answer += await wire.read_until(b"</continue>") if b"</continue>" not in answer else b""
        assert f"<task>{task}</task>".encode() in answer, answer
        await wire.send(f"<next xmlns='{SASL2}' task='{task}'/>".encode())
        data = await wire.read_until(b"</task-data>")
        found = re.search(rb"iterations=\"(\d+)\">([^<]+)</salt>", data)
        assert found, data
        salt, iterations = base64.b64decode(found.group(2)), int(found.group(1))
        hashed = base64.b64encode(salted_password(PASSWORD, hash_name, salt, iterations))
        await wire.send(
            f"<task-data xmlns='{SASL2}'><hash xmlns='urn:xmpp:scram-upgrade:0'>"
            f"{hashed.decode()}</hash></task-data>".encode()
        )
        answer = b""
    assert b"mercutio@localhost" in await wire.read_until(b"</success>")
    await wire.aclose()
    assert server.server.accounts.derivations == 0  # the client derived, not the server
    for mechanism in ("SCRAM-SHA-256", "SCRAM-SHA-512"):
        wire, _ = await connect(server)
        answer = await scram_login(wire, mechanism)
        assert b"<success" in answer, answer
        await wire.aclose()
