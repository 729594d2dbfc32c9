"""Configuration, events and answers of server-to-server streams (:mod:`.s2s`).

=========================================  ===============================
request event                              answer
=========================================  ===============================
:class:`~.events.TLSRequested`             :class:`S2STLSEstablished`
:class:`DialbackVerifyRequested`           :class:`DialbackVerdict`
=========================================  ===============================
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ..errors import StanzaErrorCondition
from .answers import TLSInfo
from .config import Limits
from .s2s_identity import PeerCertificate

__all__ = [
    "DialbackVerdict",
    "DialbackVerifyRequested",
    "DialbackVerifyResult",
    "DomainPairAuthenticated",
    "DomainPairRejected",
    "S2SConfig",
    "S2SEvent",
    "S2STLSEstablished",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class S2SConfig:
    """What both roles of an s2s stream need.

    Attributes:
        domains: the domains this server hosts (the ``to`` of a received
            header, the ``from`` of ours, the ``to`` of a dialback request).
        secret: the dialback secret (XEP-0185 §3), drawn from the rng at start.
        rng: entropy for stream ids.
        tls_available: the receiving side can offer STARTTLS.
        require_tls: STARTTLS before anything else (RFC 6120 §5.3.1; default on).
        allow_dialback: offer and accept XEP-0220 when EXTERNAL is not possible.
        require_valid_certificate: dialback is accepted only from a peer whose
            certificate is valid for the claimed domain (then it is XEP-0344's
            dialback without the callback); off: dialback verifies the domain
            by asking its authoritative server, whatever the certificate.
        max_domain_pairs: domain pairs (authenticated or being verified) one
            stream may carry (XEP-0220 §2.6); past it ``resource-constraint``.
        bidi: offer (receiving) and ask for (initiating) bidirectional
            streams (XEP-0288).
    """

    domains: frozenset[str]
    secret: bytes = field(repr=False)
    rng: Callable[[int], bytes]
    limits: Limits = field(default_factory=Limits)
    tls_available: bool = True
    require_tls: bool = True
    allow_dialback: bool = True
    require_valid_certificate: bool = False
    max_domain_pairs: int = 1000
    bidi: bool = False


@dataclass(frozen=True, slots=True)
class S2STLSEstablished:
    """The TLS handshake of an s2s stream finished; ``certificate`` holds the
    facts of the peer's certificate (None: the peer sent none)."""

    certificate: PeerCertificate | None
    info: TLSInfo | None = None


@dataclass(frozen=True, slots=True)
class DialbackVerifyRequested:
    """Receiving server: ask the authoritative server of ``originating`` whether
    ``key`` is valid for the pair and stream (XEP-0220 §2.3: a ``db:verify`` on a
    stream of its own), then answer with :class:`DialbackVerdict`."""

    originating: str
    receiving: str
    stream_id: str
    key: str


@dataclass(frozen=True, slots=True)
class DialbackVerdict:
    """The answer to :class:`DialbackVerifyRequested`: ``valid``, or an error
    condition when the authoritative server could not be asked (§2.4)."""

    originating: str
    receiving: str
    valid: bool
    error: StanzaErrorCondition | None = None


@dataclass(frozen=True, slots=True)
class DialbackVerifyResult:
    """Initiating side of a verify stream: the authoritative server answered a
    ``db:verify`` we sent (XEP-0220 §2.3.2)."""

    originating: str
    receiving: str
    stream_id: str
    valid: bool


@dataclass(frozen=True, slots=True)
class DomainPairAuthenticated:
    """Stanzas from ``remote`` to ``local`` (receiving) or from ``local`` to
    ``remote`` (initiating) may now flow; ``method`` is ``EXTERNAL`` or
    ``dialback``."""

    local: str
    remote: str
    method: str


@dataclass(frozen=True, slots=True)
class DomainPairRejected:
    """The pair was refused (dialback ``invalid`` or ``error``, XEP-0220 §2.4)."""

    local: str
    remote: str
    condition: StanzaErrorCondition | None


#: The events only s2s streams emit (part of :data:`~.events.Event`).
S2SEvent = (
    DialbackVerifyRequested | DialbackVerifyResult | DomainPairAuthenticated | DomainPairRejected
)
