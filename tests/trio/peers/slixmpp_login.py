"""Log in with slixmpp's default settings and report how it went.

Usage: slixmpp_login.py JID PASSWORD HOST PORT CAFILE

Runs under any Python that has slixmpp (the PyPI release, or Debian's
python3-slixmpp under /usr/bin/python3), so it uses only API both have. Prints
``VERSION <slixmpp version>``; ``FAILED <condition>`` for each SASL failure
(slixmpp then tries its next mechanism, as poezio does); ``SESSION <full jid>
MECH <mechanism>`` when the session starts; ``FAILED_ALL`` when slixmpp gives
up; and ``TLS <version>`` before the first failure or the session. Exits after
at most 20 s.
"""

from __future__ import annotations

import asyncio
import sys

import slixmpp
from peer_common import connect_and_wait, settle


async def main() -> None:
    jid, password, host, port, cafile = sys.argv[1:6]
    client = slixmpp.ClientXMPP(jid, password)
    done = asyncio.get_running_loop().create_future()
    print("VERSION", slixmpp.__version__, flush=True)

    tls_shown = []

    def show_tls() -> None:
        if not tls_shown:
            tls_shown.append(True)
            ssl_object = client.transport.get_extra_info("ssl_object")
            print("TLS", ssl_object.version() if ssl_object else None, flush=True)

    def on_failed(stanza: object) -> None:
        show_tls()
        print("FAILED", stanza["condition"], flush=True)  # type: ignore[index]

    def on_failed_all(_event: object) -> None:
        print("FAILED_ALL", flush=True)
        settle(done)

    def on_session(_event: object) -> None:
        show_tls()
        mech = client["feature_mechanisms"].mech.name
        print("SESSION", client.boundjid.full, "MECH", mech, flush=True)
        settle(done)

    def on_disconnected(_event: object) -> None:
        print("DISCONNECTED", flush=True)
        settle(done)

    client.add_event_handler("ssl_invalid_cert", lambda _e: print("INVALID_CERT", flush=True))
    client.add_event_handler("failed_auth", on_failed)
    client.add_event_handler("failed_all_auth", on_failed_all)
    client.add_event_handler("session_start", on_session)
    client.add_event_handler("disconnected", on_disconnected)
    if not await connect_and_wait(client, host, port, cafile, 20, done):
        print("TIMEOUT", flush=True)
    client.disconnect()
    await asyncio.sleep(0.2)


if __name__ == "__main__":
    asyncio.run(main())
