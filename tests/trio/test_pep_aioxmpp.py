"""PEP on the wire with aioxmpp (issue 16's Done-when, the second client
stack): aioxmpp 0.13 publishes avatar (its AvatarService), nick and a
XEP-0402 bookmark with publish-options; an aioxmpp contact with +notify
receives avatar and nick, romeo's other aioxmpp resource the bookmark."""

from __future__ import annotations

import os
import subprocess
import sys

import trio
from conftest import PASSWORDS, RunningServer
from peer_support import PEERS, require_aioxmpp

from xmpp_sansio.jid import JID
from xmpp_sansio.server.caps import CapsService

PEER = PEERS / "aioxmpp_pep.py"
WANTED = {
    JID.parse("juliet@localhost/aioxmpp"): "http://jabber.org/protocol/nick+notify",
    JID.parse("romeo@localhost/other"): "urn:xmpp:bookmarks:1+notify",
}


async def caps_known(caps: CapsService) -> None:
    """Wait until the server has verified the +notify caps of both receivers
    (woken by the caps service's own listener, no polling)."""
    woken = [trio.Event()]

    def learned(_ctx: object, _jid: JID) -> list[object]:
        woken[0].set()
        return []

    caps.on_learned(learned)  # type: ignore[arg-type]
    while not all(feature in caps.features_of(jid) for jid, feature in WANTED.items()):
        await woken[0].wait()
        woken[0] = trio.Event()


async def test_aioxmpp_pep_avatar_nick_and_bookmarks(server: RunningServer) -> None:
    require_aioxmpp()
    (caps,) = [s for s in server.router.services if isinstance(s, CapsService)]
    command = [
        sys.executable,
        str(PEER),
        "127.0.0.1",
        str(server.starttls_port),
        str(server.ca_file),
        PASSWORDS["romeo"],
        PASSWORDS["juliet"],
    ]
    out = b""
    with trio.fail_after(60):
        process = await trio.lowlevel.open_process(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONPATH": ""},
        )
        try:
            assert process.stdin is not None and process.stdout is not None
            while b"READY\n" not in out and b"TIMEOUT" not in out:
                chunk = await process.stdout.receive_some()
                if not chunk:
                    break
                out += chunk
            assert b"READY\n" in out, out.decode()
            await caps_known(caps)
            await process.stdin.send_all(b"go\n")
            while chunk := await process.stdout.receive_some():
                out += chunk
        finally:
            with trio.CancelScope(shield=True):
                process.kill()
                await process.wait()
    lines = out.decode().splitlines()
    text = out.decode()
    assert "NICK Romeo Montague" in lines, text
    avatar_id = next(line.split()[1] for line in lines if line.startswith("AVATAR_ID"))
    assert f"AVATAR {avatar_id}" in lines, text
    assert "BOOKMARK verona@conference.localhost" in lines, text
    assert "DONE" in lines, text
