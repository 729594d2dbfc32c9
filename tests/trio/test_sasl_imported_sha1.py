"""Accounts imported with SCRAM-SHA-1 credentials only (XEP-0227 from
Prosody): stock slixmpp logs in again and again from one address without the
misses at SCRAM-SHA-512/-256 counting toward the back-off or
``max_auth_attempts``, PLAIN logs in, and a PLAIN login upgrades the account
to SHA-256 and SHA-512 (docs/sasl2.md, "Accounts with SHA-1 only")."""

from __future__ import annotations

import base64
import importlib.util
import ssl
import sys
from pathlib import Path

import pytest
import trio
import trustme
from conftest import RunningServer, start_running
from test_sasl_interop import run_login

from xmpp_sansio.sasl.credentials import derive_scram_credentials
from xmpp_trio.client import AuthenticationError, open_client
from xmpp_trio.config import ServerConfig
from xmpp_trio.storage import AccountNotFound, AccountStore
from xmpp_trio.xep0227 import PIE, SCRAM, import_server

PASSWORD = "s3cret-mercutio"


def prosody_export(path: Path) -> Path:
    """A XEP-0227 document as prosody-migrator writes it: SCRAM-SHA-1 only,
    10000 iterations (Prosody 0.12's default)."""
    creds = derive_scram_credentials(PASSWORD, "sha1", salt=b"prosody-salt-16b", iterations=10000)

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    path.write_text(
        f"<?xml version='1.0' encoding='utf-8'?>\n"
        f"<server-data xmlns='{PIE}'><host jid='localhost'><user name='mercutio'>"
        f"<scram-credentials xmlns='{SCRAM}' mechanism='SCRAM-SHA-1'>"
        f"<iter-count>{creds.iterations}</iter-count><salt>{b64(creds.salt)}</salt>"
        f"<server-key>{b64(creds.server_key)}</server-key>"
        f"<stored-key>{b64(creds.stored_key)}</stored-key>"
        f"</scram-credentials></user></host></server-data>\n"
    )
    return path


@pytest.fixture
async def imported(
    server_config: ServerConfig, ca: trustme.CA, tmp_path: Path, nursery: trio.Nursery
) -> RunningServer:
    report = import_server(server_config, prosody_export(tmp_path / "prosody.xml"))
    assert report.accounts == 1, report.skipped
    with AccountStore.open(server_config.database_path) as store:
        assert store.credentials("mercutio", "localhost", "sha1") is not None
        assert store.credentials("mercutio", "localhost", "sha256") is None
    return await start_running(server_config, ca, tmp_path, nursery)


async def slixmpp_login(server: RunningServer, password: str = PASSWORD) -> str:
    return await run_login(server, sys.executable, "mercutio@localhost/slix", password)


def client_options(server: RunningServer) -> dict[str, object]:
    ctx = ssl.create_default_context(cafile=str(server.ca_file))
    return {"host": "127.0.0.1", "port": server.starttls_port, "ssl_context": ctx}


async def test_stock_slixmpp_logs_into_a_sha1_only_account_without_counted_failures(
    imported: RunningServer,
) -> None:
    """slixmpp (defaults) tries SCRAM-SHA-512 and -256 first: each miss is the
    unknown-user ``not-authorized`` on the wire, but uncounted, so three logins
    in a row from one address (six misses, over the five free failures before
    back-off) all succeed, and a wrong password is still counted."""
    pytest.importorskip("slixmpp")
    assert imported.config.limits.auth_failures_before_backoff == 5
    for _ in range(3):
        seen = await slixmpp_login(imported)
        assert "SESSION mercutio@localhost/slix MECH SCRAM-SHA-1" in seen, seen
        assert seen.count("FAILED not-authorized") == 2, seen
        assert "temporary-auth-failure" not in seen, seen
    backoff = imported.server.auth_backoff
    assert not backoff.has_failures("ip:127.0.0.1", trio.current_time())
    seen = await slixmpp_login(imported, "wrong")
    assert "SESSION" not in seen, seen
    assert backoff.has_failures("ip:127.0.0.1", trio.current_time())


async def test_plain_logs_in_and_upgrades_the_account_to_sha256_and_sha512(
    imported: RunningServer,
) -> None:
    """PLAIN checks the password against the SHA-1 credentials (PBKDF2 off the
    loop), then the server adds SHA-256 and SHA-512 credentials: SCRAM-SHA-256
    and -512 log in next, and slixmpp no longer misses."""
    with pytest.raises(AuthenticationError):
        async with open_client(
            "mercutio@localhost",
            PASSWORD,
            mechanisms=("SCRAM-SHA-256",),
            **client_options(imported),
        ):
            pass
    async with open_client(
        "mercutio@localhost", PASSWORD, mechanisms=("PLAIN",), **client_options(imported)
    ) as client:
        assert str(client.jid.bare) == "mercutio@localhost"
    store = imported.server.accounts.store
    for hash_name in ("sha256", "sha512"):
        creds = store.credentials("mercutio", "localhost", hash_name)
        assert creds is not None and creds.iterations == imported.config.scram_iterations
    sha1 = store.credentials("mercutio", "localhost", "sha1")
    assert sha1 is not None and sha1.iterations == 10000  # kept as imported
    for mechanism in ("SCRAM-SHA-256", "SCRAM-SHA-512"):
        async with open_client(
            "mercutio@localhost", PASSWORD, mechanisms=(mechanism,), **client_options(imported)
        ) as client:
            assert str(client.jid.bare) == "mercutio@localhost"
    if importlib.util.find_spec("slixmpp") is not None:
        seen = await slixmpp_login(imported)
        assert "SESSION mercutio@localhost/slix" in seen and "FAILED" not in seen, seen


async def test_plain_with_a_wrong_password_neither_logs_in_nor_upgrades(
    imported: RunningServer,
) -> None:
    with pytest.raises(AuthenticationError):
        async with open_client(
            "mercutio@localhost", "wrong", mechanisms=("PLAIN",), **client_options(imported)
        ):
            pass
    assert imported.server.accounts.store.credentials("mercutio", "localhost", "sha256") is None


def test_add_credentials_keeps_stored_hashes_and_needs_the_account(tmp_path: Path) -> None:
    fresh = derive_scram_credentials("other", "sha1", salt=b"s" * 16, iterations=4096)
    sha256 = derive_scram_credentials(PASSWORD, "sha256", salt=b"t" * 16, iterations=4096)
    with AccountStore.open(tmp_path / "accounts.db") as store:
        imported = derive_scram_credentials(PASSWORD, "sha1", salt=b"p" * 16, iterations=10000)
        store.create_with_credentials("mercutio", "localhost", [imported])
        store.add_credentials("mercutio", "localhost", [fresh, sha256])
        assert store.credentials("mercutio", "localhost", "sha1") == imported
        assert store.credentials("mercutio", "localhost", "sha256") == sha256
        with pytest.raises(AccountNotFound):
            store.add_credentials("nobody", "localhost", [sha256])
