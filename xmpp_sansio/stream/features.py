"""Stream features as plug-ins, composed per profile (RFC 6120 §4.3.2).

Theory of operation
-------------------
A :class:`Feature` owns one entry of ``<stream:features/>``: it decides from
the connection's situation (TLS on or not, authenticated or not, the host, the
configuration) whether it is offered and what its element says. A
:class:`Profile` lists the features of one kind of stream in the order they
are offered, before and after authentication; the server connection builds
its ``<features/>`` from its profile and nothing else.

Profiles: :data:`C2S_SERVER` today. The client side of c2s reads the
server's features in ``ClientConnection`` (it picks; it offers nothing), and
s2s in/out (Dialback, XEP-0220) and components (XEP-0114) get their own
profiles here when they come: they reuse TLS and SASL and drop Bind, SM, CSI
and Register.

This module also holds the small codecs the SASL, registration and binding
steps of both roles share (base64 text of SASL elements, IQ errors).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol
from xml.etree.ElementTree import Element, SubElement

from .. import register, sasl
from ..xml import ns
from .config import ServerConfig

__all__ = [
    "C2S_SERVER",
    "BindFeature",
    "CSIFeature",
    "Feature",
    "FeatureHost",
    "Profile",
    "RegisterFeature",
    "SASLFeature",
    "SMFeature",
    "StartTLSFeature",
]


class _Bindings(Protocol):
    @property
    def channel_bindings(self) -> tuple[sasl.ChannelBinding, ...]: ...


class FeatureHost(Protocol):
    """What a feature reads of the server connection offering it."""

    @property
    def config(self) -> ServerConfig: ...
    @property
    def tls_active(self) -> bool: ...
    @property
    def tls_info(self) -> _Bindings: ...
    @property
    def offered_mechanisms(self) -> list[str]: ...
    @property
    def registration_offered(self) -> bool: ...


class Feature(Protocol):
    """One stream feature offered by a server connection."""

    def offer(self, conn: FeatureHost) -> Iterator[Element]:
        """The elements this feature adds to ``<features/>`` now (none: not offered)."""
        ...


class StartTLSFeature:
    """RFC 6120 §5.4.1: ``<starttls/>``, with ``<required/>`` when TLS is mandatory."""

    def offer(self, conn: FeatureHost) -> Iterator[Element]:
        if conn.tls_active or not conn.config.tls_available:
            return
        starttls = Element(ns.STARTTLS_TAG)
        if conn.config.require_tls:
            SubElement(starttls, "{" + ns.TLS + "}required")
        yield starttls


class SASLFeature:
    """RFC 6120 §6.4.1: ``<mechanisms/>``; with ``-PLUS`` mechanisms, the channel
    binding types of this connection (XEP-0440 §2)."""

    def offer(self, conn: FeatureHost) -> Iterator[Element]:
        mechanisms = conn.offered_mechanisms
        if not mechanisms:
            return
        mechs = Element(ns.MECHANISMS_TAG)
        for name in mechanisms:
            SubElement(mechs, ns.MECHANISM_TAG).text = name
        yield mechs
        if any(name.endswith("-PLUS") for name in mechanisms):
            cb_types = Element(ns.SASL_CB_TAG)
            for binding in conn.tls_info.channel_bindings:
                SubElement(cb_types, "{" + ns.SASL_CB + "}channel-binding", type=binding.type)
            yield cb_types


class RegisterFeature:
    """XEP-0077 §8: in-band registration, before authentication."""

    def offer(self, conn: FeatureHost) -> Iterator[Element]:
        if conn.registration_offered:
            yield register.feature_element()


class BindFeature:
    """RFC 6120 §7.4: ``<bind/>``, and the RFC 3921 ``<session/>`` marked optional
    (RFC 6121 Appendix E)."""

    def offer(self, conn: FeatureHost) -> Iterator[Element]:
        yield Element(ns.BIND_TAG)
        session = Element(ns.SESSION_TAG)
        SubElement(session, "{" + ns.SESSION + "}optional")
        yield session


class SMFeature:
    """XEP-0198 §2: ``<sm/>``, once authenticated."""

    def offer(self, conn: FeatureHost) -> Iterator[Element]:
        if conn.config.stream_management:
            yield Element(ns.SM_TAG)


class CSIFeature:
    """XEP-0352 §4.1: ``<csi/>``."""

    def offer(self, conn: FeatureHost) -> Iterator[Element]:
        if conn.config.csi:
            yield Element(ns.CSI_TAG)


@dataclass(frozen=True, slots=True)
class Profile:
    """The features of one kind of stream, in offering order."""

    before_auth: tuple[Feature, ...]
    after_auth: tuple[Feature, ...]

    def features(self, conn: FeatureHost, *, authenticated: bool) -> Element:
        """``<stream:features/>`` for the current stage (RFC 6120 §4.3.2)."""
        features = Element(ns.FEATURES_TAG)
        for feature in self.after_auth if authenticated else self.before_auth:
            features.extend(feature.offer(conn))
        return features


#: A client-to-server stream, server side.
C2S_SERVER = Profile(
    before_auth=(StartTLSFeature(), SASLFeature(), RegisterFeature()),
    after_auth=(BindFeature(), SMFeature(), CSIFeature()),
)


def _b64encode(data: bytes | None, *, empty: str | None = "=") -> str | None:
    """SASL element text: absent data is no text; empty data is ``=`` in an
    initial response and in success data (RFC 6120 §6.4.2, §6.3.10), and no
    text (``empty=None``) in a challenge or response, where ``=`` is undefined
    (§6.4.3)."""
    if data is None:
        return None
    return base64.b64encode(data).decode("ascii") if data else empty


def _b64decode(text: str | None) -> bytes | None:
    """Decode SASL element text; ``None`` for no text, raise ValueError if invalid."""
    if text is None:
        return None
    text = text.strip()
    if text == "":
        return None
    if text == "=":
        return b""
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("invalid base64") from None


def _sasl_element(name: str, text: str | None = None, **attrs: str) -> Element:
    el = Element("{" + ns.SASL + "}" + name, attrs)
    el.text = text
    return el


def _iq_error(request: Element, condition: str, error_type: str) -> Element:
    reply = Element(ns.IQ_TAG, {"type": "error", "id": request.get("id", "")})
    error = SubElement(reply, "{" + ns.CLIENT + "}error", {"type": error_type})
    SubElement(error, "{" + ns.STANZA_ERRORS + "}" + condition)
    return reply
