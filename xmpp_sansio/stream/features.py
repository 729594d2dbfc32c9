"""Stream features as plug-ins, composed per profile (RFC 6120 §4.3.2).

Theory of operation
-------------------
A :class:`Feature` owns one entry of ``<stream:features/>``: it decides from
the connection's situation (TLS on or not, authenticated or not, the host, the
configuration) whether it is offered and what its element says. A
:class:`Profile` lists the features of one kind of stream in the order they
are offered, before and after authentication; the server connection builds
its ``<features/>`` from its profile and nothing else.

A feature also claims the top-level elements it handles, per :class:`Stage`
(before authentication, while binding, on the ready stream):
:meth:`Profile.claims` turns the features' claims into one dict per stage,
``{tag: feature}`` (plus ``{"{namespace}": feature}`` for a feature that takes
a whole namespace, looked up only for what is not a stanza), built once per
(profile, config). The connection looks an element's tag up in the dict of
its stage and calls ``feature.handle(conn, stage, el)``; what no feature
claims (or a feature gives back, returning False) gets the stream's own
answer (stanzas, or a stream error). On a ready stream a stanza costs one
dict miss. The handling code itself still lives in the connection's parts
(``server_sasl.py``, ``server_register.py``, ``server_sm.py``,
``server.py``): a feature says which element is whose, and calls the part.

Profiles: :data:`C2S_SERVER` today; the client side of c2s picks rather
than offers, with a profile of its own steps (:mod:`.client_features`).
s2s in/out (Dialback, XEP-0220) and components (XEP-0114) get their own
profiles here when they come: they reuse TLS and SASL and drop Bind, SM, CSI
and Register.

This module also holds the small codecs the SASL, registration and binding
steps of both roles share (base64 text of SASL elements, IQ errors).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import Enum
from typing import Protocol, runtime_checkable
from xml.etree.ElementTree import Element, SubElement

from .. import register, sasl
from ..errors import StanzaErrorCondition
from ..stanza import error_reply
from ..xml import ns
from .config import ServerConfig

__all__ = [
    "C2S_SERVER",
    "BindFeature",
    "CSIFeature",
    "Claims",
    "ElementFeature",
    "Feature",
    "FeatureHost",
    "Profile",
    "RegisterFeature",
    "SASLFeature",
    "SMFeature",
    "Stage",
    "StartTLSFeature",
]


class Stage(Enum):
    """Where a stream is, for the elements a feature claims (RFC 6120 §4.3)."""

    BEFORE_AUTH = "before-auth"  # TLS, SASL, registration (§5, §6; XEP-0077)
    BIND = "bind"  # authenticated, no resource yet (§7; XEP-0198 §5 resumption)
    READY = "ready"  # stanzas flow (§8)


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

    # The parts of the connection the features hand their elements to.
    def _handle_tls_element(self, el: Element) -> bool: ...
    def _handle_sasl_element(self, el: Element) -> bool: ...
    def _handle_register_element(self, el: Element) -> bool: ...
    def _handle_bind_iq(self, el: Element) -> None: ...
    def _send_sm_failed(self, condition: StanzaErrorCondition) -> None: ...
    def _handle_resume(self, el: Element) -> None: ...
    def _handle_sm_ready(self, el: Element) -> None: ...
    def _set_client_state(self, active: bool) -> None: ...


class Feature(Protocol):
    """One stream feature offered by a server connection."""

    def offer(self, conn: FeatureHost) -> Iterator[Element]:
        """The elements this feature adds to ``<features/>`` now (none: not offered)."""
        ...


@runtime_checkable
class ElementFeature(Feature, Protocol):
    """A feature that also handles top-level elements of the stream."""

    def claims(self, stage: Stage, config: ServerConfig) -> Iterable[str]:
        """The tags (``{ns}name``, or ``{ns}`` for a whole namespace) this
        feature handles at ``stage`` under ``config``."""
        ...

    def handle(self, conn: FeatureHost, stage: Stage, el: Element) -> bool:
        """Handle a claimed element; False gives it back to the stream."""
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

    def claims(self, stage: Stage, config: ServerConfig) -> Iterable[str]:
        return (ns.STARTTLS_TAG,) if stage is Stage.BEFORE_AUTH else ()

    def handle(self, conn: FeatureHost, stage: Stage, el: Element) -> bool:
        return conn._handle_tls_element(el)


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

    def claims(self, stage: Stage, config: ServerConfig) -> Iterable[str]:
        if stage is Stage.BEFORE_AUTH:
            return (ns.AUTH_TAG, ns.RESPONSE_TAG, ns.ABORT_TAG)
        return ()

    def handle(self, conn: FeatureHost, stage: Stage, el: Element) -> bool:
        return conn._handle_sasl_element(el)


class RegisterFeature:
    """XEP-0077 §8: in-band registration, before authentication."""

    def offer(self, conn: FeatureHost) -> Iterator[Element]:
        if conn.registration_offered:
            yield register.feature_element()

    def claims(self, stage: Stage, config: ServerConfig) -> Iterable[str]:
        """Registration IQs before authentication (§3.1); other IQs are given back."""
        return (ns.IQ_TAG,) if stage is Stage.BEFORE_AUTH else ()

    def handle(self, conn: FeatureHost, stage: Stage, el: Element) -> bool:
        return conn._handle_register_element(el)


class BindFeature:
    """RFC 6120 §7.4: ``<bind/>``, and the RFC 3921 ``<session/>`` marked optional
    (RFC 6121 Appendix E)."""

    def offer(self, conn: FeatureHost) -> Iterator[Element]:
        yield Element(ns.BIND_TAG)
        session = Element(ns.SESSION_TAG)
        SubElement(session, "{" + ns.SESSION + "}optional")
        yield session

    def claims(self, stage: Stage, config: ServerConfig) -> Iterable[str]:
        """The bind IQ while binding (§7.6); on a ready stream the stream
        answers a second bind itself, as a stanza."""
        return (ns.IQ_TAG,) if stage is Stage.BIND else ()

    def handle(self, conn: FeatureHost, stage: Stage, el: Element) -> bool:
        conn._handle_bind_iq(el)
        return True


class SMFeature:
    """XEP-0198 §2: ``<sm/>``, once authenticated."""

    def offer(self, conn: FeatureHost) -> Iterator[Element]:
        if conn.config.stream_management:
            yield Element(ns.SM_TAG)

    def claims(self, stage: Stage, config: ServerConfig) -> Iterable[str]:
        """``<enable/>``/``<resume/>`` at every stage (refused before
        authentication, §3 and §5), the whole namespace once ready (§4)."""
        if not config.stream_management:
            return ()
        if stage is Stage.READY:
            return ("{" + ns.SM + "}", ns.SM_ENABLE_TAG, ns.SM_RESUME_TAG, *_SM_ACK_TAGS)
        return (ns.SM_ENABLE_TAG, ns.SM_RESUME_TAG)

    def handle(self, conn: FeatureHost, stage: Stage, el: Element) -> bool:
        if stage is Stage.READY:
            conn._handle_sm_ready(el)
        elif stage is Stage.BIND and el.tag == ns.SM_RESUME_TAG:
            conn._handle_resume(el)
        else:
            # §3: enable only after binding ("SHALL enforce this order"); §5:
            # resume only after authentication.
            conn._send_sm_failed(StanzaErrorCondition.UNEXPECTED_REQUEST)
        return True


_SM_ACK_TAGS = ("{" + ns.SM + "}r", "{" + ns.SM + "}a")


class CSIFeature:
    """XEP-0352 §4.1: ``<csi/>``."""

    def offer(self, conn: FeatureHost) -> Iterator[Element]:
        if conn.config.csi:
            yield Element(ns.CSI_TAG)

    def claims(self, stage: Stage, config: ServerConfig) -> Iterable[str]:
        """``<active/>``/``<inactive/>`` once authenticated (§5)."""
        if config.csi and stage is not Stage.BEFORE_AUTH:
            return (ns.CSI_ACTIVE_TAG, ns.CSI_INACTIVE_TAG)
        return ()

    def handle(self, conn: FeatureHost, stage: Stage, el: Element) -> bool:
        conn._set_client_state(el.tag == ns.CSI_ACTIVE_TAG)
        return True


#: The features claiming elements at each stage: ``{tag: feature}``, and
#: ``{"{namespace}": feature}`` for whole namespaces.
Claims = dict[Stage, dict[str, ElementFeature]]


@dataclass(frozen=True, slots=True)
class Profile:
    """The features of one kind of stream, in offering order."""

    before_auth: tuple[Feature, ...]
    after_auth: tuple[Feature, ...]
    _claims: dict[int, tuple[ServerConfig, Claims]] = field(
        default_factory=dict, init=False, repr=False, compare=False, hash=False
    )

    def claims(self, config: ServerConfig) -> Claims:
        """Which feature handles which top-level element at each stage under
        ``config`` (the first feature of the profile to claim a tag has it);
        built once per config and kept (a few configs at most)."""
        cached = self._claims.get(id(config))
        if cached is not None and cached[0] is config:
            return cached[1]
        claims: Claims = {}
        for stage in Stage:
            table: dict[str, ElementFeature] = {}
            for feature in (*self.before_auth, *self.after_auth):
                if isinstance(feature, ElementFeature):
                    for tag in feature.claims(stage, config):
                        table.setdefault(tag, feature)
            claims[stage] = table
        if len(self._claims) >= 16:
            self._claims.clear()
        self._claims[id(config)] = (config, claims)
        return claims

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


def _iq_error(request: Element, condition: StanzaErrorCondition) -> Element:
    """The stream's own iq error (``type`` and ``id`` only, RFC 6120 §8.3), built by
    :func:`~xmpp_sansio.stanza.error_reply` like every stanza error."""
    return error_reply(Element(ns.IQ_TAG, {"type": "get", "id": request.get("id", "")}), condition)
