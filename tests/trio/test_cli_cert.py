"""``xmpp-trio cert import DIR``: a certificate from certbot's directory
layout replaces the server's own, and the running server uses it for the next
TLS handshake without dropping sessions (as ``prosodyctl cert import``)."""

from __future__ import annotations

import logging
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio
import trustme
from conftest import PASSWORDS

from xmpp_trio.cli import main
from xmpp_trio.client import CertificateError, open_client
from xmpp_trio.config import load_config
from xmpp_trio.server import BoundListener, run_server
from xmpp_trio.storage import AccountStore

WAIT = 15.0


@pytest.fixture(autouse=True)
def root_level() -> Iterator[None]:
    """A reload sets the root logger's level: put it back afterwards."""
    level = logging.getLogger().level
    yield
    logging.getLogger().setLevel(level)


def certbot_live(tmp_path: Path, ca: trustme.CA, *names: str) -> Path:
    """A certbot-like ``live/`` directory: ``live/<domain>/fullchain.pem``
    and ``privkey.pem``."""
    live = tmp_path / "letsencrypt" / "live"
    (live / "localhost").mkdir(parents=True)
    cert = ca.issue_cert(*names)
    cert.private_key_pem.write_to_path(str(live / "localhost" / "privkey.pem"))
    (live / "localhost" / "fullchain.pem").write_bytes(
        b"".join(blob.bytes() for blob in cert.cert_chain_pems)
    )
    return live


async def test_cert_import_is_used_by_the_next_handshake_of_the_running_server(
    tmp_path: Path, ca: trustme.CA, nursery: trio.Nursery, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "xmpp.toml"
    path.write_text(
        f'domains = ["localhost"]\ndata_dir = "{tmp_path / "data"}"\nscram_iterations = 4096\n'
        '[[listeners]]\nkind = "c2s-starttls"\naddress = "127.0.0.1"\nport = 0\n'
    )
    config = load_config(path)
    with AccountStore.open(config.database_path) as store:
        store.create("juliet", "localhost", PASSWORDS["juliet"], iterations=4096)
    bound: list[BoundListener] = await nursery.start(run_server, config)
    port = bound[0].port
    self_signed = config.generated_tls_dir / "cert.pem"
    trusting_ca = ssl.create_default_context(cadata=ca.cert_pem.bytes().decode())
    trusting_self = ssl.create_default_context(cafile=str(self_signed))
    options = {"host": "127.0.0.1", "port": port}
    with pytest.raises(CertificateError):  # the self-signed certificate, so far
        async with open_client(
            "juliet@localhost", PASSWORDS["juliet"], **options, ssl_context=trusting_ca
        ):
            pass
    async with open_client(
        "juliet@localhost/old", PASSWORDS["juliet"], **options, ssl_context=trusting_self
    ) as old:
        live = certbot_live(tmp_path, ca, "localhost", "*.localhost")
        argv = ["cert", "import", str(live), "--config", str(path)]
        capsys.readouterr()
        assert await trio.to_thread.run_sync(main, argv) == 0
        out = capsys.readouterr().out
        assert f"installed {live / 'localhost' / 'fullchain.pem'} as {self_signed}" in out
        assert "reloaded the running server" in out
        assert (config.generated_tls_dir / "key.pem").stat().st_mode & 0o077 == 0
        async with open_client(
            "juliet@localhost/new", PASSWORDS["juliet"], **options, ssl_context=trusting_ca
        ) as new:
            assert str(new.jid) == "juliet@localhost/new"
        assert not old.closed.is_set()  # the session from before the import goes on


def test_cert_import_refuses_a_certificate_that_does_not_name_the_domains(
    tmp_path: Path, ca: trustme.CA, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "xmpp.toml"
    path.write_text(f'domains = ["localhost"]\ndata_dir = "{tmp_path / "data"}"\n')
    live = certbot_live(tmp_path, ca, "example.org")
    assert main(["cert", "import", str(live), "--config", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("xmpp-trio: error: cert import: ") and "localhost" in err
    assert err.count("\n") == 1
    assert not (tmp_path / "data" / "tls" / "cert.pem").exists()  # nothing written
    assert main(["cert", "import", str(tmp_path), "--config", str(path)]) == 1
    assert "no certificate found" in capsys.readouterr().err
