"""The client side of a c2s stream's features as plug-ins (RFC 6120 §4.3.3).

A server offers, a client picks: at each ``<stream:features/>`` the client's
:class:`ClientProfile` asks its features in order whether the next step is
theirs (STARTTLS while TLS is off, RFC 6120 §5.3.1; SASL, or SASL2 when
offered, XEP-0388, until authenticated, §6.3.1; then binding, §7, or XEP-0198 resumption instead). The first that
takes the step ends the turn; the next ``<features/>`` (after the restart)
asks again. The steps' protocol code lives on
:class:`~xmpp_sansio.stream.client.ClientConnection`, as the server's parts
do (see :mod:`.features`): a feature decides whether the step is its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol
from xml.etree.ElementTree import Element

__all__ = [
    "C2S_CLIENT",
    "ClientBind",
    "ClientFeature",
    "ClientFeatureHost",
    "ClientProfile",
    "ClientSASL",
    "ClientStartTLS",
]


class ClientFeatureHost(Protocol):
    """What a client feature reads of, and calls on, the client connection."""

    tls_active: bool
    authenticated: bool

    def _negotiate_tls(self, features: Element) -> bool: ...
    def _negotiate_sasl(self, features: Element) -> None: ...
    def _negotiate_bind(self, features: Element) -> None: ...
    def _negotiate_sasl2(self, features: Element) -> bool: ...
    def _finish_sasl2(self, features: Element) -> bool: ...
    def _fail_negotiation(self, reason: str) -> None: ...


class ClientFeature(Protocol):
    """One step of a client's negotiation."""

    def take(self, conn: ClientFeatureHost, features: Element) -> bool:
        """Take the next step if it is this feature's; whether it did."""
        ...


class ClientStartTLS:
    """RFC 6120 §5.4.2.1: STARTTLS when offered, or give up when TLS is required."""

    def take(self, conn: ClientFeatureHost, features: Element) -> bool:
        return not conn.tls_active and conn._negotiate_tls(features)


class ClientSASL:
    """Authenticate with the best offered mechanism: SASL2 when offered and
    wanted (XEP-0388 §2.2, :mod:`.client_sasl2`), else RFC 6120 §6.4.2."""

    def take(self, conn: ClientFeatureHost, features: Element) -> bool:
        if conn.authenticated:
            return False
        if not conn._negotiate_sasl2(features):
            conn._negotiate_sasl(features)
        return True


class ClientBind:
    """RFC 6120 §7.5 binding, or XEP-0198 §5 resumption instead; notes the
    offered SM (§2) and CSI (XEP-0352 §4.1) on the way. After SASL2, what its
    ``<success/>`` did inline (a resumed session, a Bind2 resource: XEP-0386
    §2.2) makes the stream ready without either."""

    def take(self, conn: ClientFeatureHost, features: Element) -> bool:
        if not conn._finish_sasl2(features):
            conn._negotiate_bind(features)
        return True


@dataclass(frozen=True, slots=True)
class ClientProfile:
    """The negotiation steps of one kind of stream, client side, in order."""

    steps: tuple[ClientFeature, ...]

    def negotiate(self, conn: ClientFeatureHost, features: Element) -> None:
        """Take the next step for the server's ``<features/>``."""
        for step in self.steps:
            if step.take(conn, features):
                return
        conn._fail_negotiation("no feature of this profile can go on")


#: A client-to-server stream, client side.
C2S_CLIENT = ClientProfile(steps=(ClientStartTLS(), ClientSASL(), ClientBind()))
