"""Prosody 0.12 (Debian) as a federation peer for tests: a temp config with
one virtual host, its certificate from the test CA, the CA as its cafile, and
luaunbound forwarding DNS to the tests' local DNS server (SRV records)."""

from __future__ import annotations

import os
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import pytest
import trio
import trustme

from xmpp_trio.client import Client, open_client

PROSODY = shutil.which("prosody")
PROSODYCTL = shutil.which("prosodyctl")


def require_prosody() -> None:
    """Skip cleanly without Prosody, unless CI is set (then fail)."""
    unbound = list(Path("/usr/lib").glob("*/lua/5.*/lunbound.so"))
    if PROSODY is None or PROSODYCTL is None or not unbound:
        if os.environ.get("CI"):
            pytest.fail("prosody and lua-unbound are required in CI (.ci/run installs them)")
        pytest.skip("prosody or lua-unbound (its DNS resolver) is not installed")


def prosody_client(
    jid: str, port: int, context: ssl.SSLContext
) -> AbstractAsyncContextManager[Client]:
    """Our Trio client for a user of the Prosody peer (c2s on ``port``)."""
    from test_federation_wire import PASSWORD

    return open_client(jid, PASSWORD, host="127.0.0.1", port=port, ssl_context=context)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@asynccontextmanager
async def prosody(
    domain: str,
    ca: trustme.CA,
    home: Path,
    dns: tuple[str, int],
    users: dict[str, str],
    *,
    secure: bool = True,
    log_level: str = "debug",
    direct_tls_port: int | None = None,
    bidi: bool = False,
) -> AsyncIterator[tuple[int, int]]:
    """Run Prosody for ``domain``; yields its (c2s port, s2s port)
    (``log_level``: "warn" for benchmarks/s2s_bench.py; ``direct_tls_port``:
    its ``s2s_direct_tls_ports``, XEP-0368; ``bidi``: load mod_s2s_bidi,
    XEP-0288, which 0.12 ships but does not load by default)."""
    home.mkdir(parents=True)
    cert = ca.issue_cert(domain)
    cert.cert_chain_pems[0].write_to_path(str(home / "cert.pem"))
    cert.private_key_pem.write_to_path(str(home / "key.pem"))
    ca.cert_pem.write_to_path(str(home / "ca.pem"))
    c2s, s2s = free_port(), free_port()
    config = home / "prosody.cfg.lua"
    config.write_text(
        f"""
run_as_root = true
daemonize = false
pidfile = "{home}/prosody.pid"
data_path = "{home}/data"
log = {{ {{ levels = {{ min = "{log_level}" }}, to = "file", filename = "{home}/prosody.log" }} }}
interfaces = {{ "127.0.0.1" }}
c2s_ports = {{ {c2s} }}
s2s_ports = {{ {s2s} }}
http_ports = {{}}
https_ports = {{}}
c2s_direct_tls_ports = {{}}
s2s_direct_tls_ports = {{ {direct_tls_port or ""} }}
s2s_direct_tls_ssl = {{ certificate = "{home}/cert.pem", key = "{home}/key.pem" }}
s2s_secure_auth = {"true" if secure else "false"}
s2s_require_encryption = true
authentication = "internal_hashed"
storage = "internal"
unbound = {{ forward = "{dns[0]}@{dns[1]}", hoststxt = false, resolvconf = false }}
ssl = {{ cafile = "{home}/ca.pem" }}
modules_enabled = {{ "roster", "saslauth", "tls", "dialback", "disco", "ping", "presence", "vcard"{', "s2s_bidi"' if bidi else ""} }}
modules_disabled = {{ {"" if bidi else '"s2s_bidi"'} }}
VirtualHost "{domain}"
  ssl = {{ certificate = "{home}/cert.pem", key = "{home}/key.pem" }}
"""
    )
    (home / "data").mkdir()
    for user, password in users.items():
        subprocess.run(
            [PROSODYCTL, "--config", str(config), "register", user, domain, password],
            check=True,
            capture_output=True,
            timeout=30,
        )
    assert PROSODY is not None
    process = await trio.lowlevel.open_process(
        [PROSODY, "-F", "--config", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        with trio.fail_after(20):
            while True:
                try:
                    stream = await trio.open_tcp_stream("127.0.0.1", c2s)
                except OSError:
                    await trio.sleep(0.05)  # polling for the port, not timing a behaviour
                    continue
                await stream.aclose()
                break
        yield c2s, s2s
    finally:
        process.terminate()
        with trio.move_on_after(5):
            await process.wait()
        if process.returncode is None:
            process.kill()
