"""Federation with Prosody 0.12 (Debian, issue 21's Done-when): our server
at a.example and Prosody at c.example, found through SRV records served by a local
DNS server, exchange messages, subscriptions and presence both ways over
TLS authenticated with certificates (the test CA in Prosody's cafile)."""

from __future__ import annotations

from pathlib import Path

import trio
import trustme
from dns_server import dns_server
from prosody_peer import prosody, require_prosody
from test_federation_wire import PASSWORD, client, exchange_between, start_domain

from xmpp_trio.client import open_client

C = "{jabber:client}"


async def test_our_server_and_prosody_federate_both_ways(
    tmp_path: Path, nursery: trio.Nursery
) -> None:
    require_prosody()
    ca = trustme.CA()
    a = await start_domain("a.example", ca, ca, tmp_path, nursery)
    assert a.server.federation is not None
    ours = a.server.federation.port
    records: dict[str, list[tuple[int, int, int, str]]] = {
        "_xmpp-server._tcp.a.example": [(0, 0, ours, "a.example")],
    }
    addresses = {"a.example": "127.0.0.1", "c.example": "127.0.0.1"}
    with trio.fail_after(60):
        async with dns_server(records, addresses) as dns:
            a.server.federation.nameservers = [dns]
            async with prosody("c.example", ca, tmp_path / "prosody", dns, {"romeo": PASSWORD}) as (
                c2s,
                s2s,
            ):
                records["_xmpp-server._tcp.c.example"] = [(0, 0, s2s, "c.example")]
                romeo_client = open_client(
                    "romeo@c.example",
                    PASSWORD,
                    host="127.0.0.1",
                    port=c2s,
                    ssl_context=a.client_context(),
                )
                async with client(a, "juliet@a.example") as juliet, romeo_client as romeo:
                    # ours -> Prosody and back, then the subscriptions both ways.
                    await exchange_between(juliet, "juliet@a.example", romeo, "romeo@c.example")
                    await exchange_between(romeo, "romeo@c.example", juliet, "juliet@a.example")
    # Prosody (s2s_secure_auth) and we authenticated each other by certificate.
    assert a.server.federation.methods == {("c.example", "a.example"): "EXTERNAL"}
    assert a.server.federation.failures == 0
