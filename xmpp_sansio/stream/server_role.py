"""The situation of the server side of a c2s stream: its configuration, TLS,
host, authenticated JID, and the per-stream data the feature plug-ins
(features/) keep on it, each written only by its plug-in. The features
read and drive it through :class:`~xmpp_sansio.stream.features.FeatureHost`.
"""

from __future__ import annotations

from typing import cast
from xml.etree.ElementTree import Element

from .. import sasl
from ..jid import JID
from ..sm import PresenceHold, Resume
from ..xml import ns
from .answers import TLSInfo
from .config import ServerConfig
from .events import UserAgent
from .features import C2S_SERVER, FeatureHost, Profile, Stage, bind2
from .features.inline import FastAttempt, FastLogin, InlineRequest, UpgradeState
from .features.sasl import offered_mechanisms
from .framing import Framing
from .sm_stream import _SMStream
from .state import SERVER_TRANSITIONS

_NO_TLS = TLSInfo()  # frozen: shared by the streams without TLS (yet)


class _ServerRole(_SMStream):
    """The state every part of the server side reads.

    Its attributes are slots: with the base's, a bound stream would carry more
    than the 29 attributes CPython shares an instance dict's keys for, and
    its ``__dict__`` would take 1.6 KB instead of ~0.3 KB (issue 24, idle
    memory per session; benchmarks/idle_memory.py)."""

    __slots__ = (
        "_ack_policy",
        "_answering",
        "_cb_type_refused",
        "_claims",
        "_external_identity",
        "_fast_attempt",
        "_fast_login",
        "_hash_misses",
        "_held",
        "_inline",
        "_mechanism",
        "_peer_from",
        "_pending_bind",
        "_pending_registration",
        "_pending_success",
        "_pending_username",
        "_ready_claims",
        "_resume_attempted",
        "_resume_request",
        "_sasl_ns",
        "_tls_info",
        "_upgrade",
        "_user_agent",
        "auth_failures",
        "authenticated_jid",
        "client_active",
        "config",
        "domain",
        "jid",
        "stream_id",
        "tls_active",
    )

    _transitions = SERVER_TRANSITIONS
    _profile: Profile[FeatureHost, ServerConfig] = (
        C2S_SERVER  # per instance only when another is given
    )

    def __init__(
        self,
        config: ServerConfig,
        *,
        tls_active: bool = False,
        tls_info: TLSInfo | None = None,
        external_identity: str | None = None,
        framing: Framing | None = None,
        profile: Profile[FeatureHost, ServerConfig] = C2S_SERVER,
    ) -> None:
        limits = config.limits
        super().__init__(
            limits.max_stanza_size_preauth, limits.max_stanza_size, limits.max_depth, framing
        )
        self.config = config
        self.tls_active = tls_active
        self._tls_info = tls_info or _NO_TLS
        self._external_identity = external_identity
        self.domain: str | None = None
        self.stream_id: str | None = None
        self.authenticated_jid: JID | None = None
        self.jid: JID | None = None
        self.auth_failures = 0
        self._mechanism: sasl.ServerMechanism | None = None
        self._cb_type_refused = False  # a -PLUS attempt named a type we lack
        self._hash_misses = 0  # uncounted SCRAM attempts at a missing hash
        self._sasl_ns = ns.SASL  # or XEP-0388's, for the exchange in progress
        self._user_agent: UserAgent | None = None  # of that SASL2 exchange
        self._inline: InlineRequest | None = None  # its inline requests (XEP-0388 §2.3)
        self._pending_success: Element | None = None  # held while they run
        self._fast_attempt: FastAttempt | None = None  # XEP-0484 token login
        self._fast_login: FastLogin | None = None
        self._upgrade: UpgradeState | None = None  # XEP-0480 tasks in progress
        self._pending_username: str | None = None
        self._pending_registration: Element | None = None
        self._pending_bind: tuple[str, JID] | None = None  # iq id, the JID asked for
        self._peer_from: str | None = None
        self._ack_policy = config.sm_ack_requests
        self._resume_request: Resume | None = None
        self._resume_attempted = False
        #: XEP-0352: the client's state; every stream starts active (§5, §5.2).
        self.client_active = True
        self._held: PresenceHold | None = None  # made when the client goes inactive
        if profile is not C2S_SERVER:
            self._profile = profile
        #: the profile's features by the elements they claim, per stage
        self._claims = profile.claims(config)
        # READY's table, looked up by every stanza: Stage's hash is Python code
        self._ready_claims = self._claims[Stage.READY]
        #: the profile's features by the answer types they take
        self._answering = profile.answering()

    @property
    def tls_info(self) -> TLSInfo:
        """The channel bindings of this connection's TLS session (empty without TLS)."""
        return self._tls_info

    @property
    def offered_mechanisms(self) -> list[str]:
        """SASL mechanisms offered in the current features (RFC 6120 §6.4.1)."""
        return offered_mechanisms(cast("FeatureHost", self))

    def _error_header_attrs(self) -> dict[str, str | None]:
        return {
            "from": self.domain or next(iter(sorted(self.config.domains))),
            "id": self._new_id(),
            "version": "1.0",
        }

    def _new_id(self) -> str:
        return self.config.rng(12).hex()

    def _sasl2_authenticated(self, success: Element) -> None:
        """XEP-0388 §2.6.1: no restart after SASL2 ``<success/>``: the stream
        takes the post-authentication stanza limit; the inline steps run
        (Bind 2, XEP-0198), then ``success`` and the features go out."""
        parser = self._parser
        parser.max_stanza_size = self._postauth_size
        # No restart, so nothing drops what expat learned during negotiation
        # (about 2 KB a stream keeps while bound): drop it here, as RFC 6120
        # SASL's restart does; the next input starts a fresh expat parser.
        parser.compact()
        bind2.proceed(cast("FeatureHost", self), success)

    def _inline_resume_answered(self, answer: Element) -> None:
        bind2.resume_answered(cast("FeatureHost", self), answer)

    def _upgrades_done(self, success: Element) -> None:
        bind2.after_upgrades(cast("FeatureHost", self), success)

    def _features(self) -> Element:
        """RFC 6120 §4.3.2: features for the current stage of negotiation, from the
        profile's plug-ins (features/), then ``config.post_auth_features``."""
        authenticated = self.authenticated_jid is not None
        # The host is the composed ServerConnection (its parts hold the handlers).
        host = cast("FeatureHost", self)
        features = self._profile.features(host, authenticated=authenticated)
        if authenticated:
            features.extend(self.config.post_auth_features)
        return features
