"""Reload (``xmpp-trio reload`` and SIGHUP): the configuration file is read
again and applied without dropping sessions, and what needs a restart is
reported (docs/operations.md)."""

from __future__ import annotations

import json
import logging
import os
import signal
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from xml.etree.ElementTree import Element, SubElement

import pytest
import trio
import trustme
from conftest import PASSWORDS

from xmpp_sansio.server.admin import AdminRequestError
from xmpp_trio.admin import request, socket_path
from xmpp_trio.cli import main
from xmpp_trio.client import Client, ConnectionFailed, open_client
from xmpp_trio.config import load_config
from xmpp_trio.server import BoundListener, XMPPServer, run_server
from xmpp_trio.storage import AccountStore

WAIT = 15.0


@dataclass
class Running:
    path: Path  # the configuration file
    server: XMPPServer
    port: int
    ca_file: Path

    def write(self, extra: str = "", *, domains: str = '["localhost"]', cert: str = "cert") -> None:
        self.path.write_text(config_text(self.path.parent, extra, domains=domains, cert=cert))

    def options(self, ca_file: Path | None = None) -> dict[str, object]:
        ctx = ssl.create_default_context(cafile=str(ca_file or self.ca_file))
        return {"host": "127.0.0.1", "port": self.port, "ssl_context": ctx}


def config_text(base: Path, extra: str, *, domains: str, cert: str) -> str:
    return f"""domains = {domains}
data_dir = "{base / "data"}"
scram_iterations = 4096
{extra}
[tls]
cert = "{base / f"{cert}.pem"}"
key = "{base / f"{cert}-key.pem"}"

[[listeners]]
kind = "c2s-starttls"
address = "127.0.0.1"
port = 0
"""


def issue(ca: trustme.CA, base: Path, name: str) -> None:
    cert = ca.issue_cert("localhost", "127.0.0.1")
    cert.cert_chain_pems[0].write_to_path(str(base / f"{name}.pem"))
    cert.private_key_pem.write_to_path(str(base / f"{name}-key.pem"))


@pytest.fixture
def root_level() -> Iterator[None]:
    """A reload sets the root logger's level: put it back afterwards."""
    level = logging.getLogger().level
    yield
    logging.getLogger().setLevel(level)


@pytest.fixture
async def running(
    tmp_path: Path, ca: trustme.CA, nursery: trio.Nursery, root_level: None
) -> Running:
    issue(ca, tmp_path, "cert")
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    path = tmp_path / "xmpp.toml"
    path.write_text(config_text(tmp_path, "", domains='["localhost"]', cert="cert"))
    config = load_config(path)
    config.data_dir.mkdir()
    with AccountStore.open(config.database_path) as store:
        for local, password in PASSWORDS.items():
            store.create(local, "localhost", password, iterations=4096)
    bound: list[BoundListener] = await nursery.start(run_server, config)
    assert bound[0].server is not None
    return Running(path, bound[0].server, bound[0].port, ca_file)


async def reload(running: Running, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    capsys.readouterr()
    argv = ["reload", "--json", "--config", str(running.path)]
    status = await trio.to_thread.run_sync(main, argv)
    out, err = capsys.readouterr()
    return status, out, err


async def still_served(client: Client) -> None:
    """The session is alive: an IQ to its own account is answered."""
    iq = Element("{jabber:client}iq", {"type": "get"})
    SubElement(iq, "{jabber:iq:roster}query")
    answer = await client.request(iq, timeout=WAIT)
    assert answer.get("type") == "result"
    assert not client.closed.is_set()


async def test_a_live_session_stays_across_a_reload_and_a_new_limit_applies(
    running: Running, capsys: pytest.CaptureFixture[str]
) -> None:
    password = PASSWORDS["juliet"]
    async with (
        open_client("juliet@localhost/one", password, **running.options()) as one,
        open_client("juliet@localhost/two", password, **running.options()) as two,
    ):
        running.write("[limits]\nmax_sessions_per_account = 2\n")
        status, out, err = await reload(running, capsys)
        assert status == 0, err
        report = json.loads(out)
        assert report["applied"] == ["tls certificate", "limits.max_sessions_per_account"]
        assert report["restart_needed"] == []
        assert running.server.config.limits.max_sessions_per_account == 2
        # Both sessions go on; a third one of the account is now refused.
        await still_served(one)
        await still_served(two)
        with pytest.raises(ConnectionFailed, match="resource-constraint"):
            async with open_client("juliet@localhost/three", password, **running.options()):
                pass
        await still_served(one)
        async with open_client("romeo@localhost/x", PASSWORDS["romeo"], **running.options()) as r:
            assert str(r.jid) == "romeo@localhost/x"


async def test_sighup_reloads_the_log_level(
    running: Running, capsys: pytest.CaptureFixture[str]
) -> None:
    async with open_client("juliet@localhost/one", PASSWORDS["juliet"], **running.options()) as c:
        running.write('log_level = "error"\n')
        os.kill(os.getpid(), signal.SIGHUP)
        with trio.fail_after(WAIT):
            while running.server.config.log_level != "error":
                await trio.sleep(0.01)
        assert logging.getLogger().level == logging.ERROR
        await still_served(c)


async def test_a_reloaded_certificate_is_used_by_the_next_handshake(
    running: Running, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = trustme.CA()
    issue(other, tmp_path, "other")
    other_ca = tmp_path / "other-ca.pem"
    other.cert_pem.write_to_path(str(other_ca))
    password = PASSWORDS["juliet"]
    async with open_client("juliet@localhost/one", password, **running.options()) as one:
        running.write(cert="other")
        status, _, err = await reload(running, capsys)
        assert status == 0, err
        async with open_client("juliet@localhost/two", password, **running.options(other_ca)):
            pass
        with pytest.raises(ConnectionFailed):
            async with open_client("juliet@localhost/three", password, **running.options()):
                pass
        await still_served(one)


async def test_what_needs_a_restart_is_reported_and_kept(
    running: Running, capsys: pytest.CaptureFixture[str]
) -> None:
    running.write(
        "[limits]\nmax_roster_items = 5\nidle_timeout = 100\n",
        domains='["localhost", "example.org"]',
    )
    status, out, err = await reload(running, capsys)
    assert status == 0, err
    report = json.loads(out)
    assert report["restart_needed"] == ["domains", "limits.max_roster_items"]
    assert "limits.idle_timeout" in report["applied"]
    config = running.server.config
    assert config.domains == ("localhost",)
    assert config.limits.max_roster_items == 1000
    assert config.limits.idle_timeout == 100
    assert running.server.manager.idle_timeout == 100
    assert not running.server.router.is_local("example.org")


async def test_an_invalid_config_changes_nothing(
    running: Running, capsys: pytest.CaptureFixture[str]
) -> None:
    running.write("[limits]\nmax_sessions_per_account = 0\n")
    status, _, err = await reload(running, capsys)  # the command line reads it first
    assert status == 1
    assert err.startswith("xmpp-trio: error: invalid configuration:")
    assert err.count("\n") == 1
    # The server refuses it too (a SIGHUP, or a client of the socket).
    path = socket_path(running.server.config)
    with pytest.raises(AdminRequestError, match=r"invalid configuration, nothing reloaded: .*max_"):
        await trio.to_thread.run_sync(request, path, "reload")
    assert running.server.config.limits.max_sessions_per_account == 10


async def test_an_unusable_certificate_changes_nothing(
    running: Running, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "broken.pem").write_text("not a certificate")
    (tmp_path / "broken-key.pem").write_text("not a key")
    running.write("[limits]\nmax_sessions_per_account = 1\n", cert="broken")
    status, _, err = await reload(running, capsys)
    assert status == 1
    assert "tls:" in err and "nothing reloaded" in err
    assert running.server.config.limits.max_sessions_per_account == 10
    async with open_client("juliet@localhost/one", PASSWORDS["juliet"], **running.options()):
        pass
