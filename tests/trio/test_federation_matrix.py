"""Issue 21's Done-when in one test: two of our servers (a.example, b.example)
and Prosody 0.12 (c.example), each with its own domain on one machine, found
through SRV records served by a local DNS server, exchange messages,
subscriptions and presence in all six directed pairs over TLS authenticated
by certificates (SASL EXTERNAL, RFC 6120 §6.4; the test CA trusted by all)."""

from __future__ import annotations

from itertools import combinations
from pathlib import Path

import trio
import trustme
from dns_server import dns_server
from prosody_peer import prosody, require_prosody
from test_federation_wire import PASSWORD, client, exchange_between, start_domain

from xmpp_trio.client import open_client

OURS = ("a.example", "b.example")
PROSODY_DOMAIN = "c.example"
DOMAINS = (*OURS, PROSODY_DOMAIN)


def user(domain: str, peer: str) -> str:
    """The local part on ``domain`` that talks only to ``peer`` (one contact
    per account, so no presence from another pair gets in the way)."""
    return "to-" + peer.split(".")[0]


async def test_two_of_our_servers_and_prosody_federate_in_all_six_directions(
    tmp_path: Path, nursery: trio.Nursery
) -> None:
    require_prosody()
    ca = trustme.CA()
    servers = {
        domain: await start_domain(
            domain,
            ca,
            ca,
            tmp_path,
            nursery,
            users=tuple(user(domain, peer) for peer in DOMAINS if peer != domain),
        )
        for domain in OURS
    }
    records: dict[str, list[tuple[int, int, int, str]]] = {}
    for domain, running in servers.items():
        assert running.server.federation is not None
        records[f"_xmpp-server._tcp.{domain}"] = [(0, 0, running.server.federation.port, domain)]
    addresses = dict.fromkeys(DOMAINS, "127.0.0.1")
    prosody_users = {user(PROSODY_DOMAIN, peer): PASSWORD for peer in OURS}
    with trio.fail_after(90):
        async with dns_server(records, addresses) as dns:
            for running in servers.values():
                assert running.server.federation is not None
                running.server.federation.nameservers = [dns]
            async with prosody(PROSODY_DOMAIN, ca, tmp_path / "prosody", dns, prosody_users) as (
                c2s,
                s2s,
            ):
                records[f"_xmpp-server._tcp.{PROSODY_DOMAIN}"] = [(0, 0, s2s, PROSODY_DOMAIN)]

                def connect(domain: str, peer: str):  # type: ignore[no-untyped-def]
                    jid = f"{user(domain, peer)}@{domain}"
                    if domain in servers:
                        return client(servers[domain], jid)
                    return open_client(
                        jid,
                        PASSWORD,
                        host="127.0.0.1",
                        port=c2s,
                        ssl_context=servers[OURS[0]].client_context(),
                    )

                for x, y in combinations(DOMAINS, 2):
                    x_jid, y_jid = f"{user(x, y)}@{x}", f"{user(y, x)}@{y}"
                    async with connect(x, y) as xc, connect(y, x) as yc:
                        # x -> y and back, x subscribes to y; then y to x.
                        await exchange_between(xc, x_jid, yc, y_jid)
                        await exchange_between(yc, y_jid, xc, x_jid)
    # Every link, both directions, authenticated by certificate.
    for domain, running in servers.items():
        federation = running.server.federation
        assert federation is not None
        assert federation.failures == 0
        assert federation.methods == {
            (peer, domain): "EXTERNAL" for peer in DOMAINS if peer != domain
        }
