"""Configuration of stream connections: frozen values, validated on construction."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from xml.etree.ElementTree import Element

from ..jid import JID
from ..sm import AckRequestPolicy
from .login_options import LoginOptions

__all__ = [
    "ClientConfig",
    "ComponentClientConfig",
    "ComponentServerConfig",
    "Limits",
    "ServerConfig",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    """Parser limits (RFC 6120 §13.12 asks servers to bound stanza size).

    Attributes:
        max_stanza_size: bytes of one top-level element once authenticated.
        max_stanza_size_preauth: the same before authentication, smaller so an
            unauthenticated peer cannot make the server buffer much.
        max_depth: element nesting below the stream element.
        negotiation_timeout: seconds from connect until the stream is ready.
        max_auth_attempts: SASL attempts per stream (RFC 6120 §6.4.5: two to
            five retries); then the stream is closed with ``policy-violation``.
    """

    max_stanza_size: int = 262144
    max_stanza_size_preauth: int = 16384
    max_depth: int = 64
    negotiation_timeout: float = 60.0
    max_auth_attempts: int = 3

    def __post_init__(self) -> None:
        if self.max_stanza_size < 1024 or self.max_stanza_size_preauth < 1024:
            raise ValueError("stanza size limits must be at least 1024 bytes")
        if self.max_depth < 2:
            raise ValueError("max_depth must be at least 2")
        if self.negotiation_timeout <= 0:
            raise ValueError("negotiation_timeout must be positive")
        if not 1 <= self.max_auth_attempts <= 6:
            raise ValueError("max_auth_attempts must be between 1 and 6 (RFC 6120 §6.4.5)")


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerConfig:
    """What a server-side stream offers.

    Attributes:
        domains: served domains; a header ``to`` outside them gets ``host-unknown``.
        tls_available: a certificate is configured, so STARTTLS can be offered.
        require_tls: refuse authentication before TLS (RFC 6120 §5.3.1, the default).
        allow_plain: offer PLAIN (never without TLS).
        allow_anonymous: offer ANONYMOUS (RFC 4505).
        anonymous_domains: served domains (among ``domains``) whose users log
            in with ANONYMOUS and nothing else: no password mechanism, no
            registration there, as operators set up ``anon.DOMAIN``.
        allow_external: offer EXTERNAL; the I/O layer supplies the identity.
        allow_registration: offer in-band registration of new accounts before
            authentication (XEP-0077), only where authentication is allowed.
        post_auth_features: extra stream features offered after authentication
            (e.g. roster versioning, the server's entity capabilities).
        rng: source of unpredictable bytes (stream ids, nonces, generated
            resources, SM-IDs), required: the library reads no entropy itself
            (a server passes ``secrets.token_bytes``, a test
            :func:`~xmpp_sansio.testing.seeded_rng`).
        decoy_key: secret for SCRAM's fake salts for unknown users, stable for
            the server's lifetime so repeated probes cannot tell users apart
            (empty, the default: 16 bytes drawn from ``rng`` once).
        decoy_iterations: the iteration count of the SCRAM decoy (``i=``) and
            of PLAIN's decoy derivation for unknown users; set it to the count
            of stored credentials, so an unknown user looks like a real one.
        stream_management: offer XEP-0198 after authentication.
        sm_resume_timeout: seconds a broken session stays resumable (XEP-0198
            §5, announced as ``max``). ``0`` (the default) offers no
            resumption: offering it is a promise that the I/O layer keeps
            sessions whose transport broke and answers
            :class:`~xmpp_sansio.stream.events.ResumeRequested`.
        sm_max_unacked: the most unacknowledged stanzas kept for a connected
            client; past that the stream is closed with ``resource-constraint``
            (the I/O layer then treats the queue as undeliverable, XEP-0198
            §4). A safety net against a client that never acknowledges: keep
            it well above the largest burst the server sends at once (offline
            messages at login, a roster), since a healthy client can only
            acknowledge a burst after it arrived.
        sm_max_unacked_bytes: the same bound in serialised bytes of the
            unacknowledged stanzas (the count alone lets a client hold
            ``sm_max_unacked`` stanzas of the largest size).
        sm_unacked_burst: how far one burst may take the unacknowledged
            queue past ``sm_max_unacked``/``sm_max_unacked_bytes``, as a
            factor: a client cannot acknowledge stanzas before they arrived,
            so a large legitimate burst (a MAM page, a big roster) must not
            cut it. Crossing a limit asks for an ack at once (``<r/>``,
            XEP-0198 §4); the stream is closed with ``resource-constraint``
            only past ``sm_unacked_burst`` times the limit, which bounds the
            memory a client that never acknowledges holds. ``1`` (the
            default) closes at the limit itself.
        sm_ack_requests: when to ask the client for an ack (XEP-0198 §4).
        csi: offer Client State Indication (XEP-0352) and, while the client is
            inactive, hold presence updates (the latest per sender).
        ask_before_bind: emit :class:`~xmpp_sansio.stream.events.BindRequested`
            and wait for ``bind_accepted()`` / ``bind_refused()`` instead of
            binding every valid resource at once (e.g. to limit the sessions
            of one account, RFC 6120 §7.6.2.1). Off by default.
        sasl2: also offer SASL2 (XEP-0388, ``<authentication/>``) beside
            RFC 6120 SASL: the same mechanisms, no restart after success.
            Off by default (docs/sasl2.md).
        fast_token_lifetime: seconds a FAST token (XEP-0484) stays valid;
            0 (the default) offers no FAST. Needs ``clock`` and ``sasl2``.
        fast_rotate_within: a token used with less than this many seconds
            left is replaced by a new one in ``<success/>`` (XEP-0484 §3.4).
        clock: wall-clock time in seconds since the epoch (token expiry); the
            I/O layer's, like ``rng``.
    """

    domains: frozenset[str]
    tls_available: bool = True
    require_tls: bool = True
    allow_plain: bool = True
    allow_anonymous: bool = False
    anonymous_domains: frozenset[str] = frozenset()
    allow_external: bool = False
    allow_registration: bool = False
    registration_instructions: str = "Choose a username and password for this server."
    post_auth_features: tuple[Element, ...] = ()
    limits: Limits = field(default_factory=Limits)
    rng: Callable[[int], bytes]
    decoy_key: bytes = b""
    decoy_iterations: int = 4096
    stream_management: bool = True
    sm_resume_timeout: float = 0.0
    sm_max_unacked: int = 10000
    sm_max_unacked_bytes: int = 8 << 20
    sm_unacked_burst: int = 1
    sm_ack_requests: AckRequestPolicy = field(default_factory=AckRequestPolicy)
    csi: bool = True
    ask_before_bind: bool = False
    sasl2: bool = False
    fast_token_lifetime: float = 0.0
    fast_rotate_within: float = 0.0
    clock: Callable[[], float] | None = None

    def __post_init__(self) -> None:
        if not self.domains:
            raise ValueError("at least one domain must be served")
        if not self.decoy_key:
            object.__setattr__(self, "decoy_key", self.rng(16))
        if not self.anonymous_domains <= self.domains:
            raise ValueError("anonymous_domains must be served domains")
        if self.require_tls and not self.tls_available:
            raise ValueError("require_tls needs tls_available")
        if self.fast_token_lifetime < 0 or self.fast_rotate_within < 0:
            raise ValueError("fast_token_lifetime and fast_rotate_within must not be negative")
        if self.fast_token_lifetime and self.clock is None:
            raise ValueError("FAST tokens (fast_token_lifetime) need a clock")
        if self.decoy_iterations < 1:
            raise ValueError("decoy_iterations must be positive")
        if self.sm_resume_timeout < 0:
            raise ValueError("sm_resume_timeout must not be negative")
        if self.sm_max_unacked < 1:
            raise ValueError("sm_max_unacked must be at least 1")
        if self.sm_max_unacked_bytes < 1:
            raise ValueError("sm_max_unacked_bytes must be at least 1")
        if self.sm_unacked_burst < 1:
            raise ValueError("sm_unacked_burst must be at least 1")


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientConfig:
    """What a client-side stream asks for.

    Attributes:
        jid: the account (a resource in it is the requested resource).
        password: the account password.
        require_tls: refuse to continue if the server does not offer STARTTLS
            (protection against STARTTLS stripping).
        allow_plain: allow the PLAIN mechanism (only ever over TLS).
        mechanisms: restrict SASL to these names (default: all supported).
        stream_management: enable XEP-0198 when the server offers it.
        sm_resume: ask for a resumable session (XEP-0198 §5).
        sm_max: the preferred resumption time in seconds (XEP-0198 §3), if any.
        sm_ack_requests: when to ask the server for an ack (XEP-0198 §4).
        rng: source of unpredictable bytes (SCRAM client nonces), required
            like :attr:`ServerConfig.rng`.
        login: SASL2, Bind2 and FAST (:class:`.login_options.LoginOptions`).
    """

    jid: JID
    password: str
    require_tls: bool = True
    allow_plain: bool = True
    mechanisms: tuple[str, ...] | None = None
    lang: str | None = "en"
    limits: Limits = field(default_factory=Limits)
    rng: Callable[[int], bytes]
    stream_management: bool = True
    sm_resume: bool = True
    sm_max: int | None = None
    sm_ack_requests: AckRequestPolicy = field(default_factory=AckRequestPolicy)
    login: LoginOptions = field(default_factory=LoginOptions)


@dataclass(frozen=True, slots=True, kw_only=True)
class ComponentServerConfig:
    """The server side of component streams (XEP-0114, ``jabber:component:accept``).

    Attributes:
        secrets: the shared secret of each component domain the server
            accepts; a header ``to`` outside them gets ``host-unknown`` (§3).
        limits: parser limits; ``max_stanza_size_preauth`` until the
            handshake, ``max_stanza_size`` after it.
        rng: source of unpredictable bytes (stream ids).
    """

    secrets: Mapping[str, str]
    limits: Limits = field(default_factory=Limits)
    rng: Callable[[int], bytes]

    def __post_init__(self) -> None:
        if not self.secrets:
            raise ValueError("at least one component domain must be configured")
        if not all(self.secrets.values()):
            raise ValueError("every component needs a non-empty secret")


@dataclass(frozen=True, slots=True, kw_only=True)
class ComponentClientConfig:
    """The component side of a component stream (XEP-0114).

    Attributes:
        domain: the component's domain (the stream header's ``to``).
        secret: the secret shared with the server.
        limits: parser limits, as for the server side.
    """

    domain: str
    secret: str = field(repr=False)
    limits: Limits = field(default_factory=Limits)

    def __post_init__(self) -> None:
        if not self.domain or not self.secret:
            raise ValueError("a component needs a domain and a secret")
