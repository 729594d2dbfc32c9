"""``@xmpp/client`` (npm, Node) against the real server with ``sasl2 = true``
(issue 22): it logs in with SASL2 + Bind 2 (its ``resource`` as the tag),
enables XEP-0198 inline and asks for a FAST token; after the TCP connection
is dropped, its reconnect logs in with the token (HT-SHA-256-NONE, no PBKDF2
and no credential look-up on the server) and resumes the session inline.

Skipped without node or tests/js/node_modules, unless ``CI`` is set."""

from __future__ import annotations

import dataclasses
import os

import trio
import trustme
from conftest import PASSWORDS, start_running
from test_websocket_js import JS, require_node

from xmpp_trio.config import ServerConfig

BUDGET = 60.0  # seconds, Node start-up and the reconnect delay (1 s) included


async def test_xmpp_js_logs_in_with_sasl2_bind2_and_resumes_with_fast(
    server_config: ServerConfig, ca: trustme.CA, tmp_path: trio.Path, nursery: trio.Nursery
) -> None:
    node = require_node()
    config = dataclasses.replace(server_config, sasl2=True)
    server = await start_running(config, ca, tmp_path, nursery)  # type: ignore[arg-type]
    env = {**os.environ, "NODE_EXTRA_CA_CERTS": str(server.ca_file)}
    with trio.fail_after(BUDGET):
        result = await trio.run_process(
            [
                node,
                str(JS / "xmpp_sasl2.mjs"),
                f"xmpps://localhost:{server.directtls_port}",
                "juliet",
                PASSWORDS["juliet"],
                "xmppjs",
            ],
            cwd=JS,
            env=env,
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
    out = result.stdout.decode()
    assert result.returncode == 0, out + result.stderr.decode()
    lines = out.splitlines()
    auths = [line.split()[1] for line in lines if line.startswith("AUTH ")]
    assert auths[0].startswith("SCRAM-SHA-") and auths[-1] == "HT-SHA-256-NONE", out
    assert "TOKEN HT-SHA-256-NONE" in lines and "RESUME-INLINE" in lines, out
    session = next(line for line in lines if line.startswith("SESSION "))
    assert session.startswith("SESSION juliet@localhost/xmppjs/"), out
    assert any(line.startswith("ENABLED ") for line in lines) and lines[-1] == "RESUMED", out
    accounts = server.server.accounts
    assert accounts.derivations == 0 and accounts.fast_lookups == 1
