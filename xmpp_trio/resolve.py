"""Finding a server: DNS SRV for XMPP (RFC 6120 §3.2, XEP-0368), with dnspython.

The only module that knows DNS. Ordering of SRV records (RFC 2782) is a pure
function so it can be tested without a network.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("xmpp_trio.resolve")


@dataclass(frozen=True, slots=True)
class Target:
    """A place to connect to: ``direct_tls`` for ``_xmpps-client`` (XEP-0368)."""

    host: str
    port: int
    direct_tls: bool


@dataclass(frozen=True, slots=True)
class SRVRecord:
    priority: int
    weight: int
    port: int
    target: str


def order_srv(records: Sequence[SRVRecord], rng: random.Random | None = None) -> list[SRVRecord]:
    """Order SRV records by priority, weighted-random within a priority (RFC 2782)."""
    rng = rng or random.Random()
    result: list[SRVRecord] = []
    for priority in sorted({r.priority for r in records}):
        group = [r for r in records if r.priority == priority]
        while group:
            total = sum(r.weight for r in group)
            if total == 0:
                pick = group[0]
            else:
                point = rng.uniform(0, total)
                running = 0
                pick = group[-1]
                for r in group:
                    running += r.weight
                    if running >= point:
                        pick = r
                        break
            result.append(pick)
            group.remove(pick)
    return result


def targets_from_srv(
    client: Sequence[SRVRecord], clients_tls: Sequence[SRVRecord], domain: str
) -> list[Target]:
    """XEP-0368 §3: merge ``_xmpps-client`` and ``_xmpp-client`` records by priority;
    with neither, fall back to the domain on port 5222 (RFC 6120 §3.2.2).
    A lone ``.`` target means the service is decidedly not available."""
    tagged = [(r, True) for r in clients_tls] + [(r, False) for r in client]
    tagged = [(r, t) for r, t in tagged if r.target not in (".", "")]
    if not tagged:
        if any(r.target == "." for r in (*client, *clients_tls)):
            return []
        return [Target(domain, 5222, False)]
    ordered = order_srv([r for r, _ in tagged])
    flags = {id(r): t for r, t in tagged}
    return [Target(r.target.rstrip("."), r.port, flags[id(r)]) for r in ordered]


async def resolve_client_targets(domain: str) -> list[Target]:
    """Look up ``_xmpps-client._tcp`` and ``_xmpp-client._tcp`` SRV records for ``domain``."""
    import dns.asyncresolver

    resolver = dns.asyncresolver.Resolver()
    tls = await srv_lookup(resolver, f"_xmpps-client._tcp.{domain}")
    plain = await srv_lookup(resolver, f"_xmpp-client._tcp.{domain}")
    return targets_from_srv(plain, tls, domain)


async def srv_lookup(resolver: Any, name: str) -> list[SRVRecord]:
    """The SRV records of ``name`` from a dnspython async ``resolver``
    (none on any DNS error; a lone ``.`` target is kept as ``.``)."""
    import dns.exception

    try:
        answer = await resolver.resolve(name, "SRV")
    except dns.exception.DNSException as exc:
        log.debug("SRV lookup %s: %s", name, exc)
        return []
    return [
        SRVRecord(r.priority, r.weight, r.port, r.target.to_text(omit_final_dot=True) or ".")
        for r in answer
    ]
