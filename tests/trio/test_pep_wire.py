"""PEP on the wire with a real client (issue 16's Done-when): slixmpp 1.17
with default settings publishes avatar, nick and bookmarks; a contact and the
owner's other resource with +notify receive them; XEP-0048 bookmarks in
private storage stay in step (slixmpp's xep_0048, XEP-0402 #compat); OMEMO's publish-options
succeed on a fresh node and give precondition-not-met elsewhere."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import trio
from conftest import PASSWORDS, RunningServer

PEER = Path(__file__).parent / "peers" / "slixmpp_pep.py"


async def test_slixmpp_pep_avatar_nick_bookmarks_and_omemo_options(server: RunningServer) -> None:
    with trio.fail_after(60):
        result = await trio.run_process(
            [
                sys.executable,
                str(PEER),
                "127.0.0.1",
                str(server.starttls_port),
                str(server.ca_file),
                PASSWORDS["romeo"],
                PASSWORDS["juliet"],
            ],
            capture_stdout=True,
            capture_stderr=True,
            check=False,
            env={**os.environ, "PYTHONPATH": ""},
        )
    text = result.stdout.decode() + result.stderr.decode()
    lines = result.stdout.decode().splitlines()
    assert "NICK Romeo Montague" in lines, text
    assert any(line.startswith("AVATAR ") for line in lines), text
    assert "BOOKMARK verona@conference.localhost" in lines, text
    # XEP-0402 #compat: XEP-0048 (private XML) reads the PEP bookmark, and a
    # XEP-0048 set publishes the new room to PEP (the unchanged one is not).
    assert "LEGACY verona@conference.localhost Verona" in lines, text
    assert "BOOKMARK capulet@conference.localhost" in lines, text
    assert "OMEMO ok" in lines, text
    assert any(
        line.startswith("PRECONDITION conflict") and "precondition-not-met" in line
        for line in lines
    ), text
    assert "DONE" in lines, text
