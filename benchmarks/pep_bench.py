"""PEP and pubsub in the sans-IO core, with the bundled services over SQLite
(what the server runs): the notification fan-out of one publish, and what
PEP costs a message that is not for it.

    python benchmarks/pep_bench.py [--contacts 1000] [--rounds 5]

* ``pep fan-out``: romeo has ``--contacts`` contacts (``both``), each
  online with verified caps carrying ``http://jabber.org/protocol/nick+notify``
  (learnt the real way: presence with XEP-0115 caps, the server's disco#info
  query, the answer); one ``Router.route`` of a nick publish to romeo's own
  PEP returns one notification per contact. Reported: ms per publish, us per
  notification, and the commit of its store operations.
* ``pubsub fan-out``: a node at ``pubsub.localhost`` with ``--contacts``
  subscribers (bare JIDs, each online): one publish.
* ``message``: a chat message to a full JID with ``[pubsub] pep = true``
  against ``pep = false`` (best of ``--rounds`` runs of 20,000, taking turns).

No sockets, no TLS (``benchmarks/load`` measures those); PEP over the wire
beside Prosody is ``benchmarks/pep_wire_bench.py``.
"""

from __future__ import annotations

import argparse
import dataclasses
import secrets
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from xmpp_sansio.disco import DiscoInfo, Identity, build_disco_info, caps_element, caps_ver  # noqa: E402
from xmpp_sansio.jid import JID  # noqa: E402
from xmpp_sansio.roster import RosterItem, Subscription  # noqa: E402
from xmpp_sansio.server import Deliver, Router  # noqa: E402
from xmpp_sansio.server.effects import Persist  # noqa: E402
from xmpp_sansio.server.roster import StoredItem  # noqa: E402
from xmpp_trio.config import PubSubConfig, ServerConfig  # noqa: E402
from xmpp_trio.services import ServerServices, open_database  # noqa: E402
from xmpp_trio.storage import AccountStore  # noqa: E402
from xmpp_trio.stores.roster import SqliteRosterStorage  # noqa: E402

C = "{jabber:client}"
PS = "http://jabber.org/protocol/pubsub"
NICK = "http://jabber.org/protocol/nick"
INFO = DiscoInfo((Identity("client", "pc", "bench"),), (
    "http://jabber.org/protocol/disco#info", NICK + "+notify"))  # fmt: skip
NODE = "https://bench.invalid"


def setup(tmp: Path, contacts: int, pep: bool) -> tuple[Router, ServerServices]:
    config = ServerConfig(domains=("localhost",), data_dir=tmp, pubsub=PubSubConfig(pep=pep))
    tmp.mkdir(parents=True, exist_ok=True)
    accounts = AccountStore.open(config.database_path)
    db = open_database(config)
    db.execute("PRAGMA synchronous=OFF")  # setup only
    roster = SqliteRosterStorage(db)
    romeo = JID.parse("romeo@localhost")
    for i in range(contacts):
        contact = JID.parse(f"c{i}@localhost")
        roster.put(romeo, StoredItem(RosterItem(contact, subscription=Subscription.BOTH)))
        roster.put(contact, StoredItem(RosterItem(romeo, subscription=Subscription.BOTH)))
    db.execute("PRAGMA synchronous=FULL")
    services = ServerServices(config, accounts, db)
    router = Router(config.domains, rng=secrets.token_bytes,
                    account_exists=lambda local, domain: True, services=services.services,
                    hosts=services.hosts, clock=time.time)  # fmt: skip
    return router, services


def online(router: Router, contacts: int) -> None:
    """romeo (session 0) and the contacts (1..n), each with caps; the first
    caps query is answered, which verifies the hash for all."""
    presence = ET.Element(C + "presence")
    presence.append(caps_element(NODE, caps_ver(INFO)))
    router.bind(0, JID.parse("romeo@localhost/r"))
    router.route(0, ET.Element(C + "presence"))
    for i in range(contacts):
        router.bind(i + 1, JID.parse(f"c{i}@localhost/r"))
        for effect in router.route(i + 1, presence):
            query = effect.element if isinstance(effect, Deliver) else None
            if query is not None and query.tag == C + "iq" and query.get("type") == "get":
                info = dataclasses.replace(INFO, node=f"{NODE}#{caps_ver(INFO)}")
                result = ET.Element(C + "iq", {"type": "result", "id": query.get("id", ""),
                                               "to": query.get("from", "")})  # fmt: skip
                result.append(build_disco_info(info))
                router.route(effect.session, result)


def publish_iq(node: str, to: str | None, n: int) -> ET.Element:
    iq = ET.Element(C + "iq", {"type": "set", "id": f"p{n}"} | ({"to": to} if to else {}))
    pubsub = ET.SubElement(iq, f"{{{PS}}}pubsub")
    item = ET.SubElement(ET.SubElement(pubsub, f"{{{PS}}}publish", {"node": node}),
                         f"{{{PS}}}item", {"id": "current"})  # fmt: skip
    ET.SubElement(item, f"{{{NICK}}}nick").text = f"Romeo {n}"
    return iq


def fanout(router: Router, services: ServerServices, to: str | None, node: str,
           rounds: int) -> tuple[float, float, int]:  # fmt: skip
    best = best_commit = float("inf")
    delivered = 0
    for n in range(rounds):
        start = time.perf_counter()
        effects = router.route(0, publish_iq(node, to, n))
        took = time.perf_counter() - start
        ops = [e.op for e in effects if isinstance(e, Persist)]
        start = time.perf_counter()
        services.commit(ops)
        router.persisted([e for e in effects if isinstance(e, Persist)])
        best_commit = min(best_commit, time.perf_counter() - start)
        delivered = sum(1 for e in effects if isinstance(e, Deliver)
                        and e.element.tag == C + "message")  # fmt: skip
        best = min(best, took)
    return best, best_commit, delivered


def message_step(tmp: Path, pep: bool) -> Callable[[], object]:
    router, _ = setup(tmp, 1, pep)
    online(router, 1)
    msg = ET.Element(C + "message", {"to": "c0@localhost/r", "type": "chat", "id": "x"})
    ET.SubElement(msg, C + "body").text = "y" * 120
    return lambda: router.route(0, msg)


def message_cost(tmp: Path, rounds: int) -> tuple[float, float]:
    """Best us per message without and with PEP, the two routers taking turns."""
    steps = {False: message_step(tmp / "off", False), True: message_step(tmp / "on", True)}
    best = {False: float("inf"), True: float("inf")}
    for _ in range(rounds):
        for pep, step in steps.items():
            start = time.perf_counter()
            for _ in range(20_000):
                step()
            best[pep] = min(best[pep], (time.perf_counter() - start) / 20_000 * 1e6)
    return best[False], best[True]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--contacts", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pep-bench-") as tmp:
        router, services = setup(Path(tmp) / "fanout", args.contacts, True)
        online(router, args.contacts)
        took, commit, delivered = fanout(router, services, None, NICK, args.rounds)
        print(f"pep fan-out     1 publish -> {delivered} notifications: {took * 1e3:.2f} ms"
              f" ({took / max(delivered, 1) * 1e6:.2f} us/notification),"
              f" commit {commit * 1e3:.2f} ms")  # fmt: skip
        # pubsub.localhost: a node, every contact subscribed with its bare JID.
        create = ET.Element(C + "iq", {"type": "set", "id": "c", "to": "pubsub.localhost"})
        ET.SubElement(ET.SubElement(create, f"{{{PS}}}pubsub"), f"{{{PS}}}create", {"node": "n"})
        services.commit([e.op for e in router.route(0, create) if isinstance(e, Persist)])
        for i in range(args.contacts):
            sub = ET.Element(C + "iq", {"type": "set", "id": "s", "to": "pubsub.localhost"})
            ET.SubElement(ET.SubElement(sub, f"{{{PS}}}pubsub"), f"{{{PS}}}subscribe",
                          {"node": "n", "jid": f"c{i}@localhost"})  # fmt: skip
            effects = router.route(i + 1, sub)
            services.commit([e.op for e in effects if isinstance(e, Persist)])
        took, commit, delivered = fanout(router, services, "pubsub.localhost", "n", args.rounds)
        print(f"pubsub fan-out  1 publish -> {delivered} notifications: {took * 1e3:.2f} ms"
              f" ({took / max(delivered, 1) * 1e6:.2f} us/notification),"
              f" commit {commit * 1e3:.2f} ms")  # fmt: skip
        off, on = message_cost(Path(tmp), args.rounds)
        print(f"message         to a full JID: pep off {off:.2f} us, pep on {on:.2f} us,"
              f" on/off {on / off:.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
