"""A small authoritative DNS server for tests (dnspython over a Trio UDP
socket on loopback): SRV and A records from a dict, empty answers for the rest.
Prosody and our resolver both ask it for ``_xmpp-server._tcp`` records."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager

import dns.flags
import dns.message
import dns.rdatatype
import dns.rrset
import trio

#: name -> [(priority, weight, port, target)]
SRV = Mapping[str, Sequence[tuple[int, int, int, str]]]


@asynccontextmanager
async def dns_server(
    srv: SRV, a: Mapping[str, str] | None = None
) -> AsyncIterator[tuple[str, int]]:
    """Serve ``srv`` (and ``a`` records) on 127.0.0.1; yields (host, port)."""
    sock = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM)
    await sock.bind(("127.0.0.1", 0))
    addresses = dict(a or {})

    async def serve() -> None:
        while True:
            data, peer = await sock.recvfrom(4096)
            try:
                query = dns.message.from_wire(data)
            except Exception:
                continue
            reply = dns.message.make_response(query)
            reply.flags |= dns.flags.AA
            question = query.question[0]
            name = question.name.to_text(omit_final_dot=True).lower()
            if question.rdtype == dns.rdatatype.SRV and name in srv:
                texts = [f"{p} {w} {port} {t}." for p, w, port, t in srv[name]]
                reply.answer.append(dns.rrset.from_text_list(question.name, 60, "IN", "SRV", texts))
            elif question.rdtype == dns.rdatatype.A and name in addresses:
                reply.answer.append(
                    dns.rrset.from_text_list(question.name, 60, "IN", "A", [addresses[name]])
                )
            # Otherwise an empty answer (NODATA), never NXDOMAIN: a resolver
            # such as unbound asks about parent names first (DS, NS) and takes
            # NXDOMAIN there to mean nothing below exists (RFC 8020).
            await sock.sendto(reply.to_wire(), peer)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(serve)
        try:
            yield sock.getsockname()[:2]
        finally:
            nursery.cancel_scope.cancel()
            sock.close()
