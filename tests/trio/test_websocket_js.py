"""Real JavaScript clients from npm in Node (issue 18): ``@xmpp/client`` and
``stanza`` log in over XMPP over WebSocket (RFC 7395, ``wss`` with the
trustme CA) and exchange messages with a slixmpp user on TCP.

The clients are pinned in tests/js/package.json and package-lock.json;
``.ci/run`` installs them (``npm ci``). Without tests/js/node_modules or node
the tests are skipped, unless ``CI`` is set: then they fail."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import trio
from conftest import PASSWORDS, RunningServer

JS = Path(__file__).resolve().parents[1] / "js"
PEER_SCRIPT = Path(__file__).parent / "peers" / "slixmpp_peer.py"
BUDGET = 60.0  # seconds for one round trip, Node start-up included


def require_node() -> str:
    node = shutil.which("node")
    if node is None or not (JS / "node_modules").is_dir():
        reason = "node or tests/js/node_modules missing (cd tests/js && npm ci)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return node


@pytest.mark.parametrize(
    ("script", "resource"), [("xmpp_client.mjs", "xmppjs"), ("stanza_client.mjs", "stanza")]
)
async def test_js_client_over_websocket_exchanges_messages_with_slixmpp(
    server: RunningServer, script: str, resource: str
) -> None:
    node = require_node()
    env = {**os.environ, "NODE_EXTRA_CA_CERTS": str(server.ca_file)}
    with trio.fail_after(BUDGET):
        romeo = await trio.lowlevel.open_process(
            [
                sys.executable,
                str(PEER_SCRIPT),
                "romeo@localhost/slix",
                PASSWORDS["romeo"],
                "127.0.0.1",
                str(server.starttls_port),
                str(server.ca_file),
                "nobody@localhost",
                "echo",
            ],
            stdout=subprocess.PIPE,
        )
        try:
            assert romeo.stdout is not None
            seen = b""
            while b"SESSION" not in seen:  # romeo is online before juliet writes
                chunk = await romeo.stdout.receive_some(4096)
                assert chunk, seen
                seen += chunk
            result = await trio.run_process(
                [
                    node,
                    str(JS / script),
                    server.websocket_url,
                    "juliet",
                    PASSWORDS["juliet"],
                    resource,
                    "romeo@localhost/slix",
                ],
                cwd=JS,
                env=env,
                capture_stdout=True,
                capture_stderr=True,
                check=False,
            )
            while chunk := await romeo.stdout.receive_some(4096):
                seen += chunk
        finally:
            if romeo.returncode is None:
                romeo.kill()
            await romeo.wait()
    out = result.stdout.decode() + result.stderr.decode()
    assert result.returncode == 0, out
    assert f"SESSION juliet@localhost/{resource}" in out
    assert f"GOT You sent: hello from {'@xmpp/client' if resource == 'xmppjs' else 'stanza'}" in out
    assert "FROM romeo@localhost/slix" in out
    assert b"GOT hello from" in seen and f"FROM juliet@localhost/{resource}".encode() in seen
