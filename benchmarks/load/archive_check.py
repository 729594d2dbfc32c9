"""Issue 24: that a target which claims to archive does (``ejabberd-full``).

One chat message from u0 to u1, then u0 asks its archive (XEP-0313 §4, a query
without a filter) and must find the message's body among the results: proof on
the wire that the server archives what the benchmark sends, with the archive
settings it runs under (``default: always``), before any figure of it is taken.
"""

from __future__ import annotations

import os
import ssl
import xml.etree.ElementTree as ET

import trio

from xmpp_trio.client import open_client

MAM = "urn:xmpp:mam:2"
FORWARD = "urn:xmpp:forward:0"
WAIT = 30.0


async def _roundtrip(port: int, cafile: str, domain: str, password: str) -> int:
    """The number of archived results that carry the probe's body (raises if none).
    SCRAM-SHA-1 without channel binding: what the generator logs in with (ejabberd
    23.01 refuses this client's -PLUS binding on TLS 1.3)."""
    context = ssl.create_default_context(cafile=cafile)
    marker = f"archive check {os.getpid()} {trio.current_time()}"
    found = 0
    async with open_client(f"u0@{domain}/archive-check", password, host="127.0.0.1",
                           port=port, ssl_context=context, stream_management=False,
                           mechanisms=("SCRAM-SHA-1",)) as u0:  # fmt: skip
        message = ET.Element("{jabber:client}message", {"to": f"u1@{domain}", "type": "chat"})
        ET.SubElement(message, "{jabber:client}body").text = marker
        await u0.send(message)
        iq = ET.Element("{jabber:client}iq", {"type": "set", "id": "archive-check"})
        ET.SubElement(iq, f"{{{MAM}}}query", {"queryid": "archive-check"})
        await u0.send(iq)
        with trio.fail_after(WAIT):
            async for stanza in u0:
                if stanza.tag == "{jabber:client}iq" and stanza.get("id") == "archive-check":
                    if stanza.get("type") != "result":
                        raise RuntimeError(f"archive query refused: {ET.tostring(stanza)!r}")
                    break
                result = stanza.find(f"{{{MAM}}}result")
                if result is None:
                    continue
                bodies = result.iterfind(
                    f"{{{FORWARD}}}forwarded/{{jabber:client}}message/{{jabber:client}}body"
                )
                found += sum(body.text == marker for body in bodies)
    if not found:
        raise RuntimeError("the archive query did not return the message just sent")
    return found


def check(port: int, cafile: str, domain: str, password: str) -> str:
    """Send, query, find (see the module docstring); a line for the target's notes."""
    found = trio.run(_roundtrip, port, cafile, domain, password)
    return f"archiving checked: a message sent was in the archive query's {found} result(s)"
