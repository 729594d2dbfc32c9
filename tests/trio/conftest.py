"""Fixtures for integration tests: a real server on loopback with trustme certificates."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import trio
import trustme

from xmpp_sansio.server import Router
from xmpp_trio.config import ListenerConfig, ServerConfig, TLSConfig
from xmpp_trio.server import BoundListener, XMPPServer, run_server
from xmpp_trio.storage import AccountStore

PASSWORDS = {"juliet": "r0m30myr0m30", "romeo": "s3cr3t-M0ntague"}


@dataclass
class RunningServer:
    config: ServerConfig
    ca_file: Path
    starttls_port: int
    directtls_port: int
    router: Router
    server: XMPPServer
    https_port: int | None = None
    http_port: int | None = None
    #: how ``client_options`` connects: "tcp" (STARTTLS) or "websocket" (wss)
    transport: str = "tcp"

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))

    @property
    def websocket_url(self) -> str:
        return f"wss://localhost:{self.https_port}/xmpp-websocket"

    def client_options(self) -> dict[str, Any]:
        """``open_client`` keywords for this server over ``transport``."""
        if self.transport == "websocket":
            return {
                "transport": "websocket",
                "url": self.websocket_url,
                "ssl_context": self.client_context(),
            }
        return {
            "host": "127.0.0.1",
            "port": self.starttls_port,
            "ssl_context": self.client_context(),
        }


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def server_config(tmp_path: Path, ca: trustme.CA) -> ServerConfig:
    cert = ca.issue_cert("localhost", "127.0.0.1")
    cert_path = tmp_path / "cert.pem"
    key_path = tmp_path / "key.pem"
    cert.cert_chain_pems[0].write_to_path(str(cert_path))
    cert.private_key_pem.write_to_path(str(key_path))
    config = ServerConfig(
        domains=("localhost",),
        data_dir=tmp_path / "data",
        listeners=(
            ListenerConfig("c2s-starttls", "127.0.0.1", 0),
            ListenerConfig("c2s-directtls", "127.0.0.1", 0),
            ListenerConfig("https", "127.0.0.1", 0),  # XMPP over WebSocket (wss)
        ),
        tls=TLSConfig(cert=cert_path, key=key_path),
        scram_iterations=4096,
        log_level="debug",
    )
    config.data_dir.mkdir(parents=True)
    with AccountStore.open(config.database_path) as store:
        for local, password in PASSWORDS.items():
            store.create(local, "localhost", password, iterations=4096)
    return config


async def start_running(
    config: ServerConfig, ca: trustme.CA, tmp_path: Path, nursery: trio.Nursery
) -> RunningServer:
    """Run the real server for ``config`` in ``nursery``; the CA is written
    next to it for clients to trust."""
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    bound: list[BoundListener] = await nursery.start(run_server, config)
    ports = {b.kind: b.port for b in bound}
    assert bound[0].server is not None
    return RunningServer(
        config,
        ca_file,
        ports["c2s-starttls"],
        ports["c2s-directtls"],
        bound[0].router,
        bound[0].server,
        ports.get("https"),
        ports.get("http"),
    )


@pytest.fixture
async def server(
    server_config: ServerConfig, ca: trustme.CA, tmp_path: Path, nursery: trio.Nursery
) -> AsyncIterator[RunningServer]:
    yield await start_running(server_config, ca, tmp_path, nursery)
