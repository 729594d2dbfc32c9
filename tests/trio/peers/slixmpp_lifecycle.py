"""The IM lifecycle of RFC 6121 walked by real slixmpp clients against the bundled server.

Usage: slixmpp_lifecycle.py HOST PORT CAFILE JULIET_PW ROMEO_PW

Prints ``OK <step>`` for each step that holds and ``FAIL <step>: <why>`` (exit 1)
for the first that does not. Every wait is bounded; "never arrives" is
checked deterministically: both sides ping the server after the stanza in
question, so anything routed before the ping result would already be in the
receiver's queue.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import slixmpp

HOST, PORT, CAFILE, JULIET_PW, ROMEO_PW = sys.argv[1:6]
JULIET, ROMEO = "juliet@localhost", "romeo@localhost"
TIMEOUT = 10


class Failed(Exception):
    pass


def ok(step: str) -> None:
    print("OK", step, flush=True)


class Peer:
    def __init__(self, jid: str, password: str) -> None:
        self.xmpp = slixmpp.ClientXMPP(jid, password, sasl_mech="SCRAM-SHA-256")
        for plugin in ("xep_0030", "xep_0054", "xep_0191", "xep_0199", "xep_0203"):
            self.xmpp.register_plugin(plugin)
        self.xmpp.ca_certs = Path(CAFILE)
        self.xmpp.auto_authorize = None
        self.xmpp.auto_subscribe = False
        self.messages: asyncio.Queue[Any] = asyncio.Queue()
        self.presences: asyncio.Queue[Any] = asyncio.Queue()
        self.started = asyncio.Event()
        self.xmpp.add_event_handler("session_start", lambda _e: self.started.set())
        self.xmpp.add_event_handler("message", self.messages.put_nowait)
        self.xmpp.add_event_handler("presence", self.presences.put_nowait)

    async def start(self) -> Peer:
        self.xmpp.connect(host=HOST, port=int(PORT))
        await asyncio.wait_for(self.started.wait(), TIMEOUT)
        await self.xmpp.get_roster()
        self.xmpp.send_presence()
        return self

    async def presence(self, ptype: str, sender: str) -> Any:
        """Wait for a presence of ``ptype`` whose from (bare or full) is ``sender``."""
        while True:
            pres = await asyncio.wait_for(self.presences.get(), TIMEOUT)
            frm = pres["from"]
            if pres["type"] == ptype and sender in (frm.bare, frm.full):
                return pres

    async def message(self, body: str) -> Any:
        while True:
            msg = await asyncio.wait_for(self.messages.get(), TIMEOUT)
            if msg["body"] == body:
                return msg

    async def sync(self) -> None:
        """A round trip to the server: everything routed to us before it has arrived."""
        await self.xmpp.plugin["xep_0199"].ping(jid="localhost", timeout=TIMEOUT)

    def drain_bodies(self) -> list[str]:
        bodies = []
        while not self.messages.empty():
            bodies.append(self.messages.get_nowait()["body"])
        return bodies

    async def stop(self) -> None:
        self.xmpp.disconnect()
        await asyncio.wait_for(self.xmpp.disconnected, TIMEOUT)


async def scenario() -> None:
    juliet = await Peer(f"{JULIET}/balcony", JULIET_PW).start()
    romeo = await Peer(f"{ROMEO}/orchard", ROMEO_PW).start()
    ok("connected-authenticated-bound-roster")

    juliet.xmpp.send_presence_subscription(pto=ROMEO, ptype="subscribe")
    await romeo.presence("subscribe", JULIET)
    ok("romeo-got-subscribe")
    romeo.xmpp.send_presence(pto=JULIET, ptype="subscribed")
    await juliet.presence("subscribed", ROMEO)
    await juliet.presence("available", f"{ROMEO}/orchard")
    ok("juliet-sees-romeo-available")
    romeo.xmpp.send_presence_subscription(pto=JULIET, ptype="subscribe")
    await juliet.presence("subscribe", ROMEO)
    juliet.xmpp.send_presence(pto=ROMEO, ptype="subscribed")
    await romeo.presence("available", f"{JULIET}/balcony")
    ok("romeo-sees-juliet-available")

    await juliet.xmpp.get_roster()
    await romeo.xmpp.get_roster()
    j_sub = juliet.xmpp.client_roster[ROMEO]["subscription"]
    r_sub = romeo.xmpp.client_roster[JULIET]["subscription"]
    if (j_sub, r_sub) != ("both", "both"):
        raise Failed(f"roster subscriptions are {j_sub!r}/{r_sub!r}")
    ok("rosters-both")

    romeo.xmpp.send_message(mto=JULIET, mbody="to your bare JID", mtype="chat")
    await juliet.message("to your bare JID")
    romeo.xmpp.send_message(mto=f"{JULIET}/balcony", mbody="to your full JID", mtype="chat")
    await juliet.message("to your full JID")
    ok("messages-bare-and-full")

    await juliet.stop()
    await romeo.presence("unavailable", f"{JULIET}/balcony")
    ok("disconnect-seen-as-unavailable")

    romeo.xmpp.send_message(mto=JULIET, mbody="while you were away", mtype="chat")
    await romeo.sync()
    juliet = await Peer(f"{JULIET}/balcony", JULIET_PW).start()
    msg = await juliet.message("while you were away")
    if not msg["delay"]["stamp"]:
        raise Failed("offline message without a delay stamp")
    ok("offline-message-delivered-with-delay")

    await juliet.xmpp.plugin["xep_0191"].block([ROMEO], timeout=TIMEOUT)
    juliet.drain_bodies()
    romeo.xmpp.send_message(mto=JULIET, mbody="are you blocking me?", mtype="chat")
    await romeo.sync()
    await juliet.sync()
    if "are you blocking me?" in juliet.drain_bodies():
        raise Failed("a blocked contact's message arrived")
    ok("blocked-contact-message-never-arrives")

    await juliet.xmpp.plugin["xep_0191"].unblock([ROMEO], timeout=TIMEOUT)
    romeo.xmpp.send_message(mto=JULIET, mbody="unblocked at last", mtype="chat")
    await juliet.message("unblocked at last")
    ok("unblocked-contact-message-arrives")

    vcard = romeo.xmpp.plugin["xep_0054"].make_vcard()
    vcard["FN"] = "Romeo Montague"
    await romeo.xmpp.plugin["xep_0054"].publish_vcard(vcard, timeout=TIMEOUT)
    result = await juliet.xmpp.plugin["xep_0054"].get_vcard(ROMEO, cached=False, timeout=TIMEOUT)
    if result["vcard_temp"]["FN"] != "Romeo Montague":
        raise Failed("vCard not returned")
    ok("vcard-of-contact")

    info = await juliet.xmpp.plugin["xep_0030"].get_info(jid="localhost", timeout=TIMEOUT)
    print("FEATURES", " ".join(sorted(info["disco_info"]["features"])), flush=True)
    ok("disco-info")

    await juliet.stop()
    await romeo.stop()


async def main() -> int:
    try:
        await scenario()
    except (Failed, TimeoutError, slixmpp.exceptions.IqError, slixmpp.exceptions.IqTimeout) as exc:
        print("FAIL", type(exc).__name__, exc, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
