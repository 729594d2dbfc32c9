"""Who the peer of a server-to-server stream is: RFC 6125 identity checks on
the certificate facts the I/O layer passes in, and the dialback keys
(XEP-0185), sans I/O.

Theory of operation
-------------------
The TLS layer verifies the chain (against the trust store) and hands the
connection a :class:`PeerCertificate`: whether the chain is valid, and the
identifiers the certificate presents (subjectAltName dNSName, SRVName and
XmppAddr entries, and the subject's common names). The protocol decision,
whether those identifiers name a given XMPP domain, is taken here
(:func:`certificate_names`), so it is the same for both roles and testable
without sockets:

- SRV-ID ``_xmpp-server.<domain>`` (RFC 6125 §6.5.1, RFC 4985; XEP-0178 §3),
- XmppAddr equal to the domain (RFC 6120 §13.7.1.4),
- DNS-ID equal to the domain, or a wildcard ``*.`` in the leftmost label
  only, matching exactly one label (RFC 6125 §6.4.3),
- CN-ID only when the certificate has none of the above (§6.4.4).

Domains compare case-insensitively as A-labels (§6.4.2; the caller passes
domains in their ASCII form, as the JID layer's normalised domains are for
the hosts we federate with).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

__all__ = [
    "PeerCertificate",
    "certificate_names",
    "dialback_key",
    "dialback_key_matches",
    "dns_id_matches",
]


@dataclass(frozen=True, slots=True)
class PeerCertificate:
    """The facts of the peer's certificate, from the I/O layer.

    ``chain_valid``: the chain verified against the trust store (and is in
    date); the identifiers are reported whether it did or not.
    """

    chain_valid: bool
    dns_ids: tuple[str, ...] = ()
    srv_ids: tuple[str, ...] = ()  # the SRVName values, e.g. "_xmpp-server.example.org"
    xmpp_addrs: tuple[str, ...] = ()
    common_names: tuple[str, ...] = ()


def _fold(name: str) -> str:
    return name.strip().rstrip(".").lower()


def dns_id_matches(pattern: str, domain: str) -> bool:
    """RFC 6125 §6.4.3: exact match, or ``*`` as the whole leftmost label
    standing for exactly one label (never for a public suffix: at least two
    labels must follow it). ``domain`` is in A-labels, lower case, without a
    trailing dot."""
    pattern = _fold(pattern)
    if pattern == domain:
        return True
    if not pattern.startswith("*."):
        return False
    rest = pattern[2:]
    if rest.count(".") < 1 or "*" in rest:
        return False
    head, dot, tail = domain.partition(".")
    return bool(head) and bool(dot) and tail == rest


def certificate_names(cert: PeerCertificate | None, domain: str) -> bool:
    """True when ``cert`` is valid and its identifiers name the XMPP
    ``domain`` (RFC 6125 §6; RFC 6120 §13.7.1.2, XEP-0178 §3)."""
    if cert is None or not cert.chain_valid:
        return False
    domain = _fold(domain)
    if not domain:
        return False
    if any(_fold(s) == "_xmpp-server." + domain for s in cert.srv_ids):
        return True
    if any(_fold(a) == domain for a in cert.xmpp_addrs):
        return True
    if any(dns_id_matches(d, domain) for d in cert.dns_ids):
        return True
    if cert.srv_ids or cert.xmpp_addrs or cert.dns_ids:
        return False  # §6.4.4: a CN is not checked when a SAN identifier exists
    return any(dns_id_matches(cn, domain) for cn in cert.common_names)


def dialback_key(secret: bytes, receiving: str, originating: str, stream_id: str) -> str:
    """XEP-0185 §3: ``HEX(HMAC-SHA256(HEX(SHA256(secret)), receiving ' '
    originating ' ' stream_id))``. The secret comes from the rng at start."""
    key = hashlib.sha256(secret).hexdigest().encode("ascii")
    text = f"{receiving} {originating} {stream_id}".encode()
    return hmac.new(key, text, hashlib.sha256).hexdigest()


def dialback_key_matches(
    secret: bytes, receiving: str, originating: str, stream_id: str, given: str
) -> bool:
    """Compare a received key with ours, in constant time (XEP-0220 §2.3)."""
    expected = dialback_key(secret, receiving, originating, stream_id)
    return hmac.compare_digest(given.strip().lower().encode("utf-8"), expected.encode("ascii"))
