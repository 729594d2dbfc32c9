"""Finding a remote server (RFC 6120 §3.2, XEP-0368): static overrides from
``[federation] hosts`` first, else DNS SRV ``_xmpps-server._tcp`` (direct
TLS) and ``_xmpp-server._tcp`` merged by priority and weight (RFC 2782,
:func:`~xmpp_trio.resolve.order_srv`), else the domain itself on 5269.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from .resolve import SRVRecord, Target, order_srv, srv_lookup

__all__ = ["resolve_server_targets", "server_targets_from_srv"]

log = logging.getLogger("xmpp_trio.s2s_resolve")

#: RFC 6120 §3.2.2: the fallback port of server-to-server streams.
S2S_PORT = 5269


def server_targets_from_srv(
    plain: Sequence[SRVRecord], direct_tls: Sequence[SRVRecord], domain: str
) -> list[Target]:
    """XEP-0368 §3 for servers: merge both record sets by priority/weight; with
    none, the domain on 5269 (RFC 6120 §3.2.2); a lone ``.`` target means the
    service is decidedly not available (RFC 2782)."""
    tagged = [(r, True) for r in direct_tls] + [(r, False) for r in plain]
    usable = [(r, t) for r, t in tagged if r.target not in (".", "")]
    if not usable:
        if any(r.target == "." for r, _ in tagged):
            return []
        return [Target(domain, S2S_PORT, False)]
    flags = {id(r): t for r, t in usable}
    ordered = order_srv([r for r, _ in usable])
    return [Target(r.target.rstrip("."), r.port, flags[id(r)]) for r in ordered]


async def resolve_server_targets(
    domain: str,
    *,
    overrides: Mapping[str, tuple[str, int]] | None = None,
    nameservers: Sequence[tuple[str, int]] = (),
) -> list[Target]:
    """Where to connect for ``domain``, in order of preference.

    ``overrides`` (``[federation] hosts``) skip DNS; ``nameservers`` replace
    the system's resolvers (tests run a local DNS server)."""
    if overrides and domain in overrides:
        host, port = overrides[domain]
        return [Target(host, port, False)]
    import dns.asyncresolver

    resolver = dns.asyncresolver.Resolver(configure=not nameservers)
    if nameservers:
        resolver.nameservers = [host for host, _ in nameservers]
        resolver.port = nameservers[0][1]
    resolver.lifetime = 10.0

    direct = await srv_lookup(resolver, f"_xmpps-server._tcp.{domain}")
    plain = await srv_lookup(resolver, f"_xmpp-server._tcp.{domain}")
    return server_targets_from_srv(plain, direct, domain)


async def resolve_host(host: str, nameservers: Sequence[tuple[str, int]] = ()) -> str:
    """``host`` as an address through ``nameservers`` (an A record), when
    they are given (tests, private networks); else ``host`` for the system
    resolver of :func:`trio.open_tcp_stream`."""
    if not nameservers:
        return host
    import ipaddress

    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return host
    import dns.asyncresolver
    import dns.exception

    resolver = dns.asyncresolver.Resolver(configure=False)
    resolver.nameservers = [address for address, _ in nameservers]
    resolver.port = nameservers[0][1]
    resolver.lifetime = 10.0
    try:
        answer = await resolver.resolve(host, "A")
    except dns.exception.DNSException as exc:
        log.debug("A lookup %s: %s", host, exc)
        return host
    return str(answer[0].address)
