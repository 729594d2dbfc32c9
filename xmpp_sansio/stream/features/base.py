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
dict miss.

A feature owns the handling of what it claims: each plug-in module
(``starttls.py``, ``sasl.py``, ``register.py``, ``bind.py``, ``sm.py``,
``csi.py``) holds its protocol code and drives the connection through
:class:`FeatureHost` (``_fire`` on the state table, ``_send_element``, the
event queue). A feature that asks the I/O layer something also takes the
answers (:class:`AnsweringFeature`): ``conn.send(answer)`` goes to the
profile's feature that names the answer's type (:meth:`Profile.answering`),
and a profile without it refuses the answer (``LocalProtocolError``).

Profiles: :data:`~xmpp_sansio.stream.features.C2S_SERVER` today; the client
side of c2s picks rather than offers, with a profile of its own steps
(:mod:`..client_features`). Components (XEP-0114) have their own connection
(:mod:`..component`); s2s (Dialback, XEP-0220) reuses TLS and SASL and drops
Bind, SM, CSI and Register.

This module also holds the small codecs the SASL, registration and binding
steps of both roles share (base64 text of SASL elements, IQ errors).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import Enum
from typing import Generic, Protocol, TypeVar, runtime_checkable
from xml.etree.ElementTree import Element

from ... import sasl
from ...errors import StanzaErrorCondition, StreamErrorCondition
from ...jid import JID
from ...sm import HandledCountTooHigh, PresenceHold, Resume, SMState
from ...stanza import error_reply
from ...xml import ns
from ..answers import Answer, TLSInfo
from ..config import ServerConfig
from ..events import Event, UserAgent
from ..state import Input, State
from .inline import FastAttempt, FastLogin, InlineRequest, UpgradeState

__all__ = [
    "AnsweringFeature",
    "Claims",
    "ElementFeature",
    "Feature",
    "FeatureHost",
    "Profile",
    "Stage",
]


class Stage(Enum):
    """Where a stream is, for the elements a feature claims (RFC 6120 §4.3)."""

    BEFORE_AUTH = "before-auth"  # TLS, SASL, registration (§5, §6; XEP-0077)
    BIND = "bind"  # authenticated, no resource yet (§7; XEP-0198 §5 resumption)
    READY = "ready"  # stanzas flow (§8)


class FeatureHost(Protocol):
    """What a feature reads of, and calls on, the server connection offering it.

    The connection is the table driver (``_fire``), the output and event
    queues and the stream's situation; the per-stream data of each plug-in is
    kept on the connection (the public properties read it) and written only
    by that plug-in.
    """

    # the situation
    config: ServerConfig
    tls_active: bool
    domain: str | None
    authenticated_jid: JID | None
    jid: JID | None
    _events: list[Event]

    @property
    def state(self) -> State: ...
    @property
    def tls_info(self) -> TLSInfo: ...

    # SASL's (RFC 6120 §6.4)
    auth_failures: int
    _mechanism: sasl.ServerMechanism | None
    _cb_type_refused: bool  # a -PLUS attempt named a type we lack (XEP-0440)
    _hash_misses: int  # uncounted SCRAM attempts at a hash the account lacks
    _pending_username: str | None
    _external_identity: str | None
    _sasl_ns: str  # the exchange's namespace: RFC 6120 SASL or XEP-0388 SASL2
    _user_agent: UserAgent | None  # of the SASL2 exchange in progress

    _inline: InlineRequest | None  # XEP-0388 §2.3 inline requests of the exchange
    _pending_success: Element | None  # SASL2 <success/> held while inline steps run
    _fast_attempt: FastAttempt | None  # a FAST login waiting for its tokens (XEP-0484)
    _fast_login: FastLogin | None  # the token a login succeeded with
    _upgrade: UpgradeState | None  # XEP-0480 tasks in progress

    def _sasl2_authenticated(self, success: Element) -> None: ...
    def _inline_resume_answered(self, answer: Element) -> None: ...
    def _upgrades_done(self, success: Element) -> None: ...
    def _features(self) -> Element: ...

    # Register's (XEP-0077)
    _pending_registration: Element | None

    # Bind's (RFC 6120 §7): the iq id and the JID asked for
    _pending_bind: tuple[str, JID] | None

    # SM's (XEP-0198)
    _sm: SMState | None
    _sm_live: bool
    _resume_request: Resume | None
    _resume_attempted: bool

    # CSI's (XEP-0352)
    client_active: bool
    _held: PresenceHold | None  # made when the client first goes inactive

    # the driver and the output
    def _fire(self, item: Input) -> None: ...
    def _send_element(self, el: Element) -> None: ...
    def _send_stanza(self, element: Element) -> None: ...
    def _process(self) -> None: ...
    def _stream_error(
        self, condition: StreamErrorCondition, text: str | None = None, extra: Element | None = None
    ) -> None: ...

    # XEP-0198 as both roles share it (sm_stream.py)
    def _handle_ack_nonza(self, el: Element) -> None: ...
    def _handled_count_too_high(self, exc: HandledCountTooHigh) -> None: ...
    def _attach_resumed(self, sm: SMState) -> None: ...


#: The connection a feature works on (contravariant: a feature for any
#: connection serves a narrower one), and the configuration it claims under.
H_contra = TypeVar("H_contra", contravariant=True)
C_contra = TypeVar("C_contra", contravariant=True)
H = TypeVar("H")
C = TypeVar("C")


class Feature(Protocol[H_contra]):
    """One stream feature offered by a server connection of type ``H_contra``
    (:class:`FeatureHost` for c2s)."""

    def offer(self, conn: H_contra) -> Iterator[Element]:
        """The elements this feature adds to ``<features/>`` now (none: not offered)."""
        ...


@runtime_checkable
class ElementFeature(Feature[H_contra], Protocol[H_contra, C_contra]):
    """A feature that also handles top-level elements of the stream."""

    def claims(self, stage: Stage, config: C_contra) -> Iterable[str]:
        """The tags (``{ns}name``, or ``{ns}`` for a whole namespace) this
        feature handles at ``stage`` under ``config``."""
        ...

    def handle(self, conn: H_contra, stage: Stage, el: Element) -> bool:
        """Handle a claimed element; False gives it back to the stream."""
        ...


@runtime_checkable
class AnsweringFeature(Protocol[H_contra]):
    """A feature that asks the I/O layer and takes its answers
    (``conn.send(answer)``, :mod:`~xmpp_sansio.stream.answers`)."""

    def answers(self) -> tuple[type[Answer], ...]:
        """The answer types this feature takes."""
        ...

    def answer(self, conn: H_contra, answer: Answer) -> None:
        """Apply ``answer``; raise :class:`LocalProtocolError` when nothing asked for it."""
        ...


#: The features claiming elements at each stage: ``{tag: feature}``, and
#: ``{"{namespace}": feature}`` for whole namespaces.
Claims = dict[Stage, dict[str, ElementFeature[H, C]]]


@dataclass(frozen=True, slots=True)
class Profile(Generic[H, C]):
    """The features of one kind of stream, in offering order, for connections
    of type ``H`` configured by ``C`` (c2s: :class:`FeatureHost`,
    :class:`ServerConfig`)."""

    before_auth: tuple[Feature[H], ...]
    after_auth: tuple[Feature[H], ...]
    _claims: dict[int, tuple[C, Claims[H, C]]] = field(
        default_factory=dict, init=False, repr=False, compare=False, hash=False
    )
    _answers: dict[type[Answer], AnsweringFeature[H]] = field(
        default_factory=dict, init=False, repr=False, compare=False, hash=False
    )

    def answering(self) -> dict[type[Answer], AnsweringFeature[H]]:
        """Which feature takes which answer type (the first to name it), built once."""
        if not self._answers:
            for feature in (*self.before_auth, *self.after_auth):
                if isinstance(feature, AnsweringFeature):
                    for kind in feature.answers():
                        self._answers.setdefault(kind, feature)
        return self._answers

    def claims(self, config: C) -> Claims[H, C]:
        """Which feature handles which top-level element at each stage under
        ``config`` (the first feature of the profile to claim a tag has it);
        built once per config and kept (a few configs at most)."""
        cached = self._claims.get(id(config))
        if cached is not None and cached[0] is config:
            return cached[1]
        claims: Claims[H, C] = {}
        for stage in Stage:
            table: dict[str, ElementFeature[H, C]] = {}
            for feature in (*self.before_auth, *self.after_auth):
                if isinstance(feature, ElementFeature):
                    for tag in feature.claims(stage, config):
                        table.setdefault(tag, feature)
            claims[stage] = table
        if len(self._claims) >= 16:
            self._claims.clear()
        self._claims[id(config)] = (config, claims)
        return claims

    def features(self, conn: H, *, authenticated: bool) -> Element:
        """``<stream:features/>`` for the current stage (RFC 6120 §4.3.2)."""
        features = Element(ns.FEATURES_TAG)
        for feature in self.after_auth if authenticated else self.before_auth:
            features.extend(feature.offer(conn))
        return features


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
