"""``xmpp-trio serve`` in a child process, for tests of what only the
``serve`` command does ([gc], [runtime]): :func:`serving` writes a
configuration with one STARTTLS listener and an account, starts the server
and yields once it has started; :func:`cli` runs another subcommand."""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio

from xmpp_trio.client import open_client

REPO = Path(__file__).resolve().parents[2]
WAIT = 30.0
ACCOUNT, PASSWORD = "juliet@localhost", "pw-juliet"
BODY = "{jabber:client}body"


def cli(config: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "xmpp_trio", *argv, "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=WAIT,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )


@dataclass
class Served:
    process: trio.Process
    config: Path
    port: int
    #: trusts the server's self-signed certificate
    ssl_context: ssl.SSLContext


@asynccontextmanager
async def serving(tmp_path: Path, sections: str) -> AsyncIterator[Served]:
    """``xmpp-trio serve`` with ``sections`` appended to its configuration,
    from the moment it has started (it logs its admin socket) to its end."""
    data = tmp_path / "data"
    config = tmp_path / "xmpp.toml"
    config.write_text(
        'domains = ["localhost"]\n'
        f'data_dir = "{data}"\n'
        "scram_iterations = 4096\n"
        "[[listeners]]\n"
        'kind = "c2s-starttls"\naddress = "127.0.0.1"\nport = 0\n' + sections
    )
    added = cli(config, "adduser", ACCOUNT, "--password", PASSWORD)
    assert added.returncode == 0, added.stderr
    process = await trio.lowlevel.open_process(
        [sys.executable, "-m", "xmpp_trio", "serve", "--config", str(config)],
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        assert process.stderr is not None
        buffer = bytearray()
        with trio.fail_after(WAIT):
            while b"admin socket" not in buffer:  # logged once started
                chunk = await process.stderr.receive_some(65536)
                assert chunk, buffer.decode()
                buffer += chunk
        port = 0
        for line in buffer.decode().splitlines():
            if "listening for c2s-starttls" in line:
                port = int(line.rsplit("port", 1)[1])
        ctx = ssl.create_default_context(cafile=str(data / "tls" / "cert.pem"))
        yield Served(process, config, port, ctx)
    finally:
        process.terminate()
        with trio.fail_after(WAIT):
            await process.wait()


async def message_to_self(served: Served, resource: str, text: str) -> None:
    """Log in over STARTTLS as :data:`ACCOUNT` and get a message to oneself back."""
    with trio.fail_after(WAIT):
        async with open_client(
            f"{ACCOUNT}/{resource}",
            PASSWORD,
            host="127.0.0.1",
            port=served.port,
            ssl_context=served.ssl_context,
        ) as client:
            message = ET.Element("{jabber:client}message", {"to": str(client.jid)})
            ET.SubElement(message, BODY).text = text
            await client.send(message)
            echoed = await client.receive()
            assert echoed.findtext(BODY) == text


async def status(served: Served) -> tuple[dict[str, Any], str]:
    """``xmpp-trio status``: its ``--json`` answer and its human lines."""
    answer = await trio.to_thread.run_sync(cli, served.config, "status", "--json")
    human = await trio.to_thread.run_sync(cli, served.config, "status")
    assert answer.returncode == 0, answer.stderr
    report: dict[str, Any] = json.loads(answer.stdout)
    return report, human.stdout
