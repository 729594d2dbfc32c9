"""Backup while the server runs and restore while it is stopped (issue 23),
with the real server process and the real CLI."""

from __future__ import annotations

import sqlite3
import ssl
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import trio
from test_durability import BODY, WAIT, _adduser, _config, _env, _serve, chat

from xmpp_trio.client import AuthenticationError, open_client


def cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "xmpp_trio", *args, "--config", str(config)],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )


async def send_offline(port: int, ctx: ssl.SSLContext, body: str) -> None:
    async with open_client(
        "romeo@localhost/out", "pw-romeo-1", host="127.0.0.1", port=port, ssl_context=ctx
    ) as romeo:
        await romeo.send(chat("juliet@localhost", body))
        ping = ET.Element("{jabber:client}iq", {"type": "get", "to": "localhost"})
        ET.SubElement(ping, "{urn:xmpp:ping}ping")
        await romeo.request(ping)  # the message was routed (and stored) before this


async def test_a_backup_taken_while_serving_restores_that_moment(tmp_path: Path) -> None:
    config = _config(tmp_path)
    _adduser(config, "juliet@localhost", "pw-juliet-1")
    _adduser(config, "romeo@localhost", "pw-romeo-1")
    cert = tmp_path / "data" / "tls" / "cert.pem"
    copy = tmp_path / "backups" / "monday.sqlite3"

    with _serve(config) as (_proc, port):
        ctx = ssl.create_default_context(cafile=str(cert))
        await send_offline(port, ctx, "before the backup")
        done = cli(config, "backup", str(copy))
        assert done.returncode == 0, done.stderr
        assert f"to {copy}" in done.stdout
        again = cli(config, "backup", str(copy))
        assert again.returncode == 1 and "exists already" in again.stderr
        # After the backup: another account and another message.
        assert cli(config, "adduser", "nurse@localhost", "--password", "pw-nurse-1").returncode == 0
        await send_offline(port, ctx, "after the backup")
        refused = cli(config, "restore", str(copy))
        assert refused.returncode == 1
        assert "stop it before restoring" in refused.stderr

    restored = cli(config, "restore", str(copy))
    assert restored.returncode == 0, restored.stderr
    with sqlite3.connect(tmp_path / "data" / "xmpp.sqlite3") as db:
        stored = [bytes(s) for (s,) in db.execute("SELECT stanza FROM offline_messages")]
    assert len(stored) == 1 and b"before the backup" in stored[0]

    with _serve(config) as (_proc, port):
        ctx = ssl.create_default_context(cafile=str(cert))
        with pytest.raises(AuthenticationError):
            async with open_client(
                "nurse@localhost", "pw-nurse-1", host="127.0.0.1", port=port, ssl_context=ctx
            ):
                pass
        async with open_client(
            "juliet@localhost/in", "pw-juliet-1", host="127.0.0.1", port=port, ssl_context=ctx
        ) as juliet:
            await juliet.send(ET.Element("{jabber:client}presence"))
            with trio.fail_after(WAIT):
                async for stanza in juliet:
                    if stanza.tag == "{jabber:client}message" and stanza.findtext(BODY):
                        break
            assert stanza.findtext(BODY) == "before the backup"


def test_restoring_a_corrupt_backup_is_refused(tmp_path: Path) -> None:
    config = _config(tmp_path)
    _adduser(config, "juliet@localhost", "pw-juliet-1")
    bad = tmp_path / "bad.sqlite3"
    bad.write_bytes(b"SQLite format 3\x00" + b"\x00" * 100)
    done = cli(config, "restore", str(bad))
    assert done.returncode == 1
    assert done.stderr.startswith("xmpp-trio: error: ") and len(done.stderr.splitlines()) == 1
