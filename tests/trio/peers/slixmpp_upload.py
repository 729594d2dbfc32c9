"""slixmpp (PyPI) uploads a file through XEP-0363 with its default settings.

Usage: slixmpp_upload.py JID PASSWORD HOST PORT CAFILE FILE
Prints ``URL <get url>`` once the upload succeeded, ``ERROR <reason>`` if it
failed. The HTTPS PUT (aiohttp) trusts the CA through ``SSL_CERT_FILE``.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import slixmpp
from peer_common import connect_and_wait


async def main() -> None:
    jid, password, host, port, cafile, path = sys.argv[1:7]
    client = slixmpp.ClientXMPP(jid, password)
    client.register_plugin("xep_0030")
    client.register_plugin("xep_0363")
    done: asyncio.Future[None] = asyncio.get_event_loop().create_future()

    async def on_start(_event: object) -> None:
        try:
            url = await client["xep_0363"].upload_file(Path(path), timeout=10)
            print("URL", url, flush=True)
        except Exception as exc:  # report any failure to the test
            print("ERROR", type(exc).__name__, exc, flush=True)
        done.set_result(None)

    client.add_event_handler("session_start", on_start)
    if not await connect_and_wait(client, host, port, cafile, 30, done):
        print("TIMEOUT", flush=True)
    client.disconnect()
    await asyncio.sleep(0.2)


if __name__ == "__main__":
    asyncio.run(main())
