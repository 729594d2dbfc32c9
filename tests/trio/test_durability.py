"""Nothing acknowledged is lost: the real server process (``python -m xmpp_trio
serve``) stores messages for an offline user, acknowledges them with XEP-0198
``<a h/>``, is killed with SIGKILL, and after a restart delivers every
acknowledged message.

The messages are sent in one write, so the server stores them in few
batches: the offline service returns ``Persist`` effects and the server
commits those of one read in one SQLite transaction (``synchronous=FULL``)
before it writes any of that read's output, so an ``<a h/>`` can only reach
the client after what it counts was committed. The server's metrics say how
many commits that took (far fewer than messages).
"""

from __future__ import annotations

import os
import signal
import ssl
import subprocess
import sys
import threading
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import trio

from xmpp_trio.client import open_client

REPO = Path(__file__).resolve().parents[2]
WAIT = 20.0
BODY = "{jabber:client}body"
COUNT = 30


def _config(tmp_path: Path) -> Path:
    config = tmp_path / "xmpp.toml"
    config.write_text(
        'domains = ["localhost"]\n'
        f'data_dir = "{tmp_path / "data"}"\n'
        "scram_iterations = 4096\n"
        "[[listeners]]\n"
        'kind = "c2s-starttls"\n'
        'address = "127.0.0.1"\n'
        "port = 0\n"
        "[metrics]\n"
        "enabled = true\n"
        "port = 0\n"
    )
    return config


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO)}


def _adduser(config: Path, jid: str, password: str) -> None:
    command = [sys.executable, "-m", "xmpp_trio", "adduser", jid]
    subprocess.run(
        [*command, "--password", password, "--config", str(config)],
        check=True,
        env=_env(),
        timeout=60,
    )


@contextmanager
def _serve(config: Path) -> Iterator[tuple[subprocess.Popen[str], int]]:
    """Start the server; yield the process and its port; kill it on the way out."""
    with _serve_metrics(config) as (proc, port, _):
        yield proc, port


@contextmanager
def _serve_metrics(config: Path) -> Iterator[tuple[subprocess.Popen[str], int, int]]:
    """:func:`_serve`, with the port of the server's metrics endpoint too."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "xmpp_trio", "serve", "--config", str(config)],
        env=_env(),
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        port = metrics = None
        assert proc.stderr is not None
        for line in proc.stderr:  # ends if the process dies
            if "listening for c2s-starttls" in line:
                port = int(line.rsplit("port", 1)[1])
            elif "serving metrics on" in line:
                metrics = int(line.rsplit(":", 1)[1].split("/")[0])
            if port is not None and metrics is not None:
                break
        assert port is not None and metrics is not None, "the server did not start"
        # Keep reading its log, so a full pipe never blocks the server.
        threading.Thread(target=proc.stderr.read, daemon=True).start()
        yield proc, port, metrics
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)


async def _commits(port: int) -> float:
    """The server's ``xmpp_storage_commits`` counter, from its metrics endpoint."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    await stream.send_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    data = b""
    with trio.fail_after(WAIT):
        while chunk := await stream.receive_some(65536):
            data += chunk
    await stream.aclose()
    for line in data.decode().splitlines():
        if line.startswith("xmpp_storage_commits_total "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError("xmpp_storage_commits_total not in the metrics")


def chat(to: str, body: str) -> ET.Element:
    msg = ET.Element("{jabber:client}message", {"to": to, "type": "chat"})
    ET.SubElement(msg, BODY).text = body
    return msg


async def test_acknowledged_messages_survive_kill_9(tmp_path: Path) -> None:
    config = _config(tmp_path)
    _adduser(config, "juliet@localhost", "pw-juliet-1")
    _adduser(config, "romeo@localhost", "pw-romeo-1")
    cert = tmp_path / "data" / "tls" / "cert.pem"
    options = {"host": "127.0.0.1"}

    with _serve_metrics(config) as (proc, port, metrics):
        ctx = ssl.create_default_context(cafile=str(cert))
        async with open_client(
            "romeo@localhost/out", "pw-romeo-1", port=port, ssl_context=ctx, **options
        ) as romeo:
            state = romeo.sm_state
            assert state is not None, "stream management was not enabled"
            for i in range(COUNT):  # juliet is offline: the server stores them
                romeo._conn.send(chat("juliet@localhost", f"message {i}"))
            await romeo.request_ack()  # one write: the messages and <r/>
            with trio.fail_after(WAIT):
                while state.acked < COUNT:
                    await trio.sleep(0.01)
            acknowledged = state.acked
            assert acknowledged == COUNT and not state.unacked
            commits = await _commits(metrics)
            assert 1 <= commits < COUNT // 3, "the writes were not batched"
            # SIGKILL with the client still connected: no clean shutdown at all.
            proc.send_signal(signal.SIGKILL)
            assert proc.wait(timeout=10) == -signal.SIGKILL
            with trio.fail_after(WAIT):
                await romeo.closed.wait()

    with _serve(config) as (proc, port):
        ctx = ssl.create_default_context(cafile=str(cert))
        async with open_client(
            "juliet@localhost/in", "pw-juliet-1", port=port, ssl_context=ctx, **options
        ) as juliet:
            await juliet.send(ET.Element("{jabber:client}presence"))  # XEP-0160: deliver now
            bodies: list[str] = []
            with trio.fail_after(WAIT):
                async for stanza in juliet:
                    if stanza.tag == "{jabber:client}message" and stanza.findtext(BODY):
                        bodies.append(stanza.findtext(BODY, ""))
                        if len(bodies) == acknowledged:
                            break
        assert bodies == [f"message {i}" for i in range(acknowledged)]
