"""``log_format = "json"``: ``serve`` logs one JSON object per line, and the
lines about a client connection carry its session id."""

from __future__ import annotations

import json
import os
import signal
import ssl
import subprocess
import sys
from pathlib import Path

import pytest
import trio
import trustme

from xmpp_trio.client import CertificateError, open_client
from xmpp_trio.config import ConfigError, load_config

REPO = Path(__file__).resolve().parents[2]
WAIT = 30.0


def test_log_format_is_text_or_json(tmp_path: Path) -> None:
    path = tmp_path / "x.toml"
    path.write_text('log_format = "JSON"\n')
    assert load_config(path).log_format == "json"
    path.write_text("")
    assert load_config(path).log_format == "text"
    path.write_text('log_format = "xml"\n')
    with pytest.raises(ConfigError, match="log_format: unknown format 'xml'; valid: text, json"):
        load_config(path)


async def next_line(stream: trio.abc.ReceiveStream, buffer: bytearray) -> bytes:
    while b"\n" not in buffer:
        chunk = await stream.receive_some(65536)
        assert chunk, buffer.decode()
        buffer += chunk
    line, _, rest = bytes(buffer).partition(b"\n")
    buffer[:] = rest
    return line


async def test_json_logs_carry_the_session_id_of_a_connection(tmp_path: Path) -> None:
    config = tmp_path / "xmpp.toml"
    config.write_text(
        'domains = ["localhost"]\n'
        f'data_dir = "{tmp_path / "data"}"\n'
        'log_format = "json"\n'
        "[[listeners]]\n"
        'kind = "c2s-starttls"\naddress = "127.0.0.1"\nport = 0\n'
    )
    process = await trio.lowlevel.open_process(
        [sys.executable, "-m", "xmpp_trio", "serve", "--config", str(config)],
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    lines: list[dict[str, object]] = []
    buffer = bytearray()
    try:
        assert process.stderr is not None
        with trio.fail_after(WAIT):
            while True:  # every line is one JSON object
                entry = json.loads(await next_line(process.stderr, buffer))
                lines.append(entry)
                message = str(entry["message"])
                if message.startswith("listening for c2s-starttls"):
                    port = int(message.rsplit("port", 1)[1])
                    break
            # A client that does not trust the self-signed certificate.
            other = trustme.CA()
            ctx = ssl.create_default_context(cafile=None, cadata=other.cert_pem.bytes().decode())
            with pytest.raises(CertificateError):
                async with open_client(
                    "juliet@localhost", "pw", host="127.0.0.1", port=port, ssl_context=ctx
                ):
                    pass
            while True:
                entry = json.loads(await next_line(process.stderr, buffer))
                lines.append(entry)
                if "TLS handshake with 127.0.0.1" in str(entry["message"]):
                    break
        process.send_signal(signal.SIGTERM)
        with trio.fail_after(WAIT):
            await process.wait()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    handshake = lines[-1]
    assert handshake["level"] == "info" and handshake["logger"] == "xmpp_trio.server"
    assert isinstance(handshake["session"], int)
    assert str(handshake["message"]).startswith(f"session {handshake['session']}: TLS handshake")
    assert str(handshake["time"]).endswith("Z")
    assert all("session" not in entry for entry in lines[:-1])  # start-up lines
