"""PEP over the wire, ours beside Prosody 0.12 (mod_pep) in one run: one
publish to the owner's own PEP node fanning out to N contacts online with
``+notify`` caps, the time until the last contact has its notification.

    python benchmarks/pep_wire_bench.py [--contacts 200] [--publishes 20]

Each server gets the same accounts (u0 .. uN) and rosters (u0 and every
contact subscribed both ways, a star) from ``benchmarks/load/targets.py``, a
STARTTLS listener pinned to CPU 0.
N contacts log in (SCRAM-SHA-1), send presence with XEP-0115 caps carrying
``http://jabber.org/protocol/nick+notify`` and answer the server's disco#info
queries; u0 then publishes a nick ``--publishes`` times, one at a time, each
timed from the send until all N notifications arrived. Printed per server:
median and best ms per publish, and notifications/s. Prosody runs with its
benchmark module set plus ``pep``.
"""

from __future__ import annotations

import argparse
import ssl
import statistics
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import trio

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks" / "load"))

import targets  # noqa: E402
from targets import DOMAIN, PASSWORD, PROSODY_MODULES, Ours, Prosody  # noqa: E402

from xmpp_sansio.disco import (  # noqa: E402
    DiscoInfo,
    Identity,
    build_disco_info,
    caps_element,
    caps_ver,
)
from xmpp_trio.client import Client, open_client  # noqa: E402

C = "{jabber:client}"
PS = "http://jabber.org/protocol/pubsub"
NICK = "http://jabber.org/protocol/nick"
EVENT = PS + "#event"
INFO = DiscoInfo((Identity("client", "pc", "bench"),), (
    "http://jabber.org/protocol/disco#info", NICK + "+notify"))  # fmt: skip
NODE = "https://bench.invalid"
# The targets' certificates are self-signed for the run: TLS without verification.
UNVERIFIED = ssl.create_default_context()
UNVERIFIED.check_hostname = False
UNVERIFIED.verify_mode = ssl.CERT_NONE


class Fanout:
    def __init__(self, contacts: int) -> None:
        self.contacts = contacts
        self.seen: dict[str, int] = {}
        self.done = trio.Event()
        self.wanted = ""

    def notified(self, item_id: str) -> None:
        count = self.seen[item_id] = self.seen.get(item_id, 0) + 1
        if item_id == self.wanted and count >= self.contacts:
            self.done.set()


async def contact(port: int, index: int, fanout: Fanout, ready: trio.MemorySendChannel[int],
                  task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:  # fmt: skip
    async with open_client(f"u{index}@{DOMAIN}/bench", PASSWORD, host="127.0.0.1", port=port,
                           ssl_context=UNVERIFIED, mechanisms=("SCRAM-SHA-1",)) as client:  # fmt: skip
        presence = ET.Element(C + "presence")
        presence.append(caps_element(NODE, caps_ver(INFO)))
        await client.send(presence)
        task_status.started()
        await ready.send(index)
        await serve(client, fanout)


async def serve(client: Client, fanout: Fanout) -> None:
    async for stanza in client:
        if stanza.tag == C + "iq" and stanza.get("type") == "get":
            query = stanza.find("{http://jabber.org/protocol/disco#info}query")
            answer = ET.Element(C + "iq", {"type": "result", "id": stanza.get("id", "")})
            if stanza.get("from"):
                answer.set("to", stanza.get("from", ""))
            if query is not None:
                node = query.get("node")
                info = DiscoInfo(INFO.identities, INFO.features, node=node)
                answer.append(build_disco_info(info))
            await client.send(answer)
        elif stanza.tag == C + "message":
            item = stanza.find(f"{{{EVENT}}}event/{{{EVENT}}}items/{{{EVENT}}}item")
            if item is not None:
                fanout.notified(item.get("id", ""))


def publish(n: int) -> ET.Element:
    iq = ET.Element(C + "iq", {"type": "set"})
    pubsub = ET.SubElement(iq, f"{{{PS}}}pubsub")
    item = ET.SubElement(ET.SubElement(pubsub, f"{{{PS}}}publish", {"node": NICK}),
                         f"{{{PS}}}item", {"id": f"n{n}"})  # fmt: skip
    ET.SubElement(item, f"{{{NICK}}}nick").text = f"u0 {n}"
    return iq


async def run(port: int, contacts: int, publishes: int) -> list[float]:
    fanout = Fanout(contacts)
    times: list[float] = []
    async with trio.open_nursery() as nursery:
        send, receive = trio.open_memory_channel[int](contacts)
        for i in range(1, contacts + 1):
            await nursery.start(contact, port, i, fanout, send)
        for _ in range(contacts):
            await receive.receive()
        async with open_client(f"u0@{DOMAIN}/pub", PASSWORD, host="127.0.0.1", port=port,
                               ssl_context=UNVERIFIED, mechanisms=("SCRAM-SHA-1",)) as owner:  # fmt: skip
            await owner.send(ET.Element(C + "presence"))
            nursery.start_soon(serve, owner, Fanout(0))
            # Warm up until every contact's caps are known (the servers query
            # them as presence arrives): a publish that reaches all N.
            warm = 0
            with trio.fail_after(60):
                while True:
                    fanout.wanted, fanout.done = f"w{warm}", trio.Event()
                    iq = publish(0)
                    iq.find(f".//{{{PS}}}item").set("id", fanout.wanted)  # type: ignore[union-attr]
                    await owner.request(iq)
                    with trio.move_on_after(2):
                        await fanout.done.wait()
                    if fanout.done.is_set():
                        break
                    warm += 1
            for n in range(publishes):
                fanout.wanted, fanout.done = f"n{n}", trio.Event()
                start = time.perf_counter()
                await owner.request(publish(n))
                with trio.fail_after(30):
                    await fanout.done.wait()
                times.append(time.perf_counter() - start)
        nursery.cancel_scope.cancel()
    return times


def star(index: int, count: int, contacts: int) -> list[int]:
    """u0 has every other account as a contact, each of them only u0 (the
    targets' rosters are a ring by default: N contacts for everyone)."""
    del contacts
    return list(range(1, count)) if index == 0 else [0]


class ProsodyPEP(Prosody):
    label = "Prosody (+pep)"

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir)
        self.modules = (*PROSODY_MODULES["full"], "pep")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--contacts", type=int, default=200)
    parser.add_argument("--publishes", type=int, default=20)
    args = parser.parse_args()
    accounts = args.contacts + 1
    targets.contacts_of = star  # both targets' roster writers read it
    with tempfile.TemporaryDirectory(prefix="pep-wire-") as tmp:
        for target in (Ours(Path(tmp)), ProsodyPEP(Path(tmp))):
            target.prepare(accounts)
            target.provide_rosters(args.contacts, accounts)
            running = target.start("starttls")
            try:
                times = trio.run(run, running.port, args.contacts, args.publishes)
            finally:
                running.stop()
                target.close()
            median = statistics.median(times)
            print(f"{target.label:>16}: 1 publish -> {args.contacts} notifications:"
                  f" median {median * 1e3:.1f} ms, best {min(times) * 1e3:.1f} ms,"
                  f" {args.contacts / median:,.0f} notifications/s", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
