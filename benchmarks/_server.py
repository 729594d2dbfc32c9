"""A throw-away server on loopback for the authentication benchmarks.

The server runs in this process (Trio), with a self-signed certificate it
generates itself, direct TLS (XEP-0368) on a free port, two accounts and
limits raised so that the benchmark is never backed off.
"""

from __future__ import annotations

import dataclasses
import logging
import ssl
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import trio

from xmpp_trio.config import LimitsConfig, ListenerConfig, ServerConfig
from xmpp_trio.server import run_server
from xmpp_trio.storage import AccountStore

_LIMITS = {f.name for f in dataclasses.fields(LimitsConfig)}
PASSWORDS = {"juliet": "r0m30myr0m30", "romeo": "s3cr3t-M0ntague"}


@dataclass
class Running:
    port: int
    config: ServerConfig

    def client_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # loopback, a certificate made for this run
        return context


@asynccontextmanager
async def running_server(
    iterations: int, *, sasl2: bool = False, fast_token_lifetime: int = 0, **limits: int
) -> AsyncIterator[Running]:
    logging.getLogger("xmpp_trio").setLevel(logging.ERROR)  # failed logins are the point
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        data.mkdir()
        config = ServerConfig(
            domains=("localhost",),
            data_dir=data,
            listeners=(ListenerConfig("c2s-directtls", "127.0.0.1", 0),),
            scram_iterations=iterations,
            sasl2=sasl2,
            fast_token_lifetime=fast_token_lifetime,
            fast_rotate_within=0,
            log_level="error",
            limits=LimitsConfig(
                auth_failures_before_backoff=1_000_000,
                max_auth_attempts=6,
                max_connections_per_ip=10_000,
                # a limit this version does not have is left out (to compare versions)
                **{k: v for k, v in limits.items() if k in _LIMITS},
            ),
        )
        with AccountStore.open(config.database_path) as store:
            for local, password in PASSWORDS.items():
                store.create(local, "localhost", password, iterations=iterations)
        async with trio.open_nursery() as nursery:
            bound = await nursery.start(run_server, config)
            yield Running(bound[0].port, config)
            nursery.cancel_scope.cancel()
