"""Debian's command-line XMPP clients log in to our server and deliver a message.

go-sendxmpp (Go, built on go-xmpp) and sendxmpp (Perl, Net::XMPP) are
run as they ship, with only the options that turn TLS on and trust the test
CA, plus the host and port to reach the loopback listener (the certificate is
for ``localhost`` and 127.0.0.1). Each sends one chat message to romeo, who is
connected with our own client; the test passes when it arrives from juliet.

Both clients end elements with a newline (``<starttls/>\\n``, ``</auth>\\n``),
which RFC 6120 §5.3.3 and §6.3.5 tell them not to send: see
test_negotiation_whitespace.py for the same bytes from a raw socket.

A missing client is skipped locally and fails when the ``CI`` environment
variable is set (.ci/run installs them with apt-get).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from xml.etree.ElementTree import Element

import pytest
import trio
from conftest import PASSWORDS, RunningServer

from xmpp_trio.client import Client, open_client

CLIENT_TIMEOUT = 30.0
"""Upper bound of one client run (a bound, never a synchronisation)."""


def require(binary: str) -> str:
    path = shutil.which(binary)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{binary} is not installed (apt-get install {binary})")
        pytest.skip(f"{binary} is not installed")
    return path


async def run_client(
    argv: list[str], home: Path, body: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    """Run a client with ``body`` on stdin and an empty home directory (no
    user configuration), killed after :data:`CLIENT_TIMEOUT`."""
    environment = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        **(env or {}),
    }
    with trio.fail_after(CLIENT_TIMEOUT):
        return await trio.run_process(
            argv,
            stdin=body.encode(),
            capture_stdout=True,
            capture_stderr=True,
            check=False,
            env=environment,
        )


async def next_message(client: Client) -> Element:
    with trio.fail_after(CLIENT_TIMEOUT):
        async for stanza in client:
            if stanza.tag == "{jabber:client}message":
                return stanza
    raise AssertionError("romeo's stream ended without a message")


async def assert_delivered(
    server: RunningServer, argv: list[str], home: Path, env: dict[str, str] | None = None
) -> None:
    """romeo is online; the client run as juliet sends him a message that arrives."""
    body = f"hello from {Path(argv[0]).name}"
    async with open_client(
        "romeo@localhost/desk",
        PASSWORDS["romeo"],
        host="127.0.0.1",
        port=server.starttls_port,
        ssl_context=server.client_context(),
    ) as romeo:
        await romeo.send(Element("{jabber:client}presence"))
        result = await run_client(argv, home, body, env)
        output = (result.stdout + result.stderr).decode(errors="replace")
        assert result.returncode == 0, output
        message = await next_message(romeo)
    assert (message.get("from") or "").startswith("juliet@localhost/"), message.attrib
    assert (message.findtext("{jabber:client}body") or "").strip() == body


@pytest.mark.parametrize("direct_tls", [False, True], ids=["starttls", "direct-tls"])
async def test_go_sendxmpp_logs_in_and_delivers_a_message(
    server: RunningServer, tmp_path: Path, direct_tls: bool
) -> None:
    """go-sendxmpp trusts the CA through SSL_CERT_FILE (Go's crypto/x509);
    ``-t`` is direct TLS, without it STARTTLS."""
    binary = require("go-sendxmpp")
    port = server.directtls_port if direct_tls else server.starttls_port
    argv = [binary, "-u", "juliet@localhost", "-p", PASSWORDS["juliet"]]
    argv += ["-j", f"127.0.0.1:{port}", *(["-t"] if direct_tls else []), "romeo@localhost"]
    await assert_delivered(server, argv, tmp_path, {"SSL_CERT_FILE": str(server.ca_file)})


@pytest.mark.parametrize("direct_tls", [False, True], ids=["starttls", "direct-tls"])
async def test_sendxmpp_logs_in_and_delivers_a_message(
    server: RunningServer, tmp_path: Path, direct_tls: bool
) -> None:
    """sendxmpp: ``-t`` is STARTTLS, ``-e`` direct TLS, ``-a`` the CA file. The
    server given with ``-j`` is also the stream's ``to``, so it is ``localhost``."""
    binary = require("sendxmpp")
    port = server.directtls_port if direct_tls else server.starttls_port
    argv = [binary, "-e" if direct_tls else "-t", "-a", str(server.ca_file)]
    argv += ["-u", "juliet", "-p", PASSWORDS["juliet"], "-j", f"localhost:{port}"]
    await assert_delivered(server, [*argv, "romeo@localhost"], tmp_path)
