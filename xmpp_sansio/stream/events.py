"""Events a stream connection reports to its user (the I/O layer).

Events are small frozen dataclasses named in the past tense for things that
happened (``StanzaReceived``) or as requests the I/O layer must act upon
(``TLSRequested``, ``CredentialsRequested``, ``ResumeRequested``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from xml.etree.ElementTree import Element

from ..errors import StreamErrorCondition
from ..jid import JID
from ..sasl.credentials import ScramCredentials
from .login_options import LoginEvent
from .s2s_events import S2SEvent

__all__ = [
    "Authenticated",
    "AuthenticationFailed",
    "BindRequested",
    "ClientStateChanged",
    "ConnectionClosed",
    "CredentialsRequested",
    "CredentialsUpgradable",
    "DerivationRequested",
    "Event",
    "NegotiationFailed",
    "RegistrationRequested",
    "ResourceBound",
    "ResumeFailed",
    "ResumeRequested",
    "StanzaReceived",
    "StanzasAcknowledged",
    "StreamClosed",
    "StreamErrorReceived",
    "StreamManagementEnabled",
    "StreamManagementFailed",
    "StreamOpened",
    "StreamResumed",
    "TLSRequested",
    "UserAgent",
]


@dataclass(frozen=True, slots=True)
class StreamOpened:
    """The peer's stream header arrived (once per stream, so again after each restart)."""

    to: str | None
    from_: str | None
    id: str | None
    version: str | None
    lang: str | None


@dataclass(frozen=True, slots=True)
class TLSRequested:
    """Wrap the transport in TLS now, then call ``tls_established()`` (RFC 6120 §5.4.3.3).

    Until then the connection accepts no data: anything the peer sends before
    the TLS handshake is an injection attempt.
    """

    server_side: bool
    server_hostname: str


@dataclass(frozen=True, slots=True)
class CredentialsRequested:
    """Server: look up the stored SCRAM credentials of ``username`` for ``hash_name``
    and pass them (or ``None``) to ``provide_credentials()``."""

    username: str
    hash_name: str


@dataclass(frozen=True, slots=True)
class DerivationRequested:
    """Server: run PBKDF2 (RFC 8018 §5.2, SCRAM's ``Hi()``) on ``password`` with
    ``salt``, ``iterations`` and ``hash_name`` (a :mod:`hashlib` name) and pass
    the salted password to ``provide_derived()``.

    Asked for by PLAIN after :class:`CredentialsRequested` (RFC 4616 §2). The
    connection never derives itself: the I/O layer should run this off its
    event loop. An unknown user asks for the same hash and iterations as a
    real account, so nothing here tells them apart.
    """

    password: str = field(repr=False)
    salt: bytes
    iterations: int
    hash_name: str


@dataclass(frozen=True, slots=True)
class RegistrationRequested:
    """Server: a client asks to create the account ``local`` (XEP-0077 §3.1).

    Create it (or refuse) and answer with ``registration_result()``.
    ``local`` and ``password`` are already PRECIS-normalised.
    """

    local: str
    password: str


@dataclass(frozen=True, slots=True)
class UserAgent:
    """XEP-0388 §2.3 ``<user-agent/>``: ``id`` a UUID v4 (lower case), the
    client's free-text software and device names (never shown to others)."""

    id: str | None
    software: str | None = None
    device: str | None = None


@dataclass(frozen=True, slots=True)
class Authenticated:
    """SASL succeeded (RFC 6120 §6.4.6). ``jid`` is the authenticated bare JID;
    ``user_agent`` what a SASL2 client said of itself (XEP-0388 §2.3)."""

    jid: JID
    mechanism: str
    user_agent: UserAgent | None = None


@dataclass(frozen=True, slots=True)
class FastTokensRequested:
    """Server: a FAST login (XEP-0484 §3.3): answer with
    ``FastTokensProvided`` the tokens stored for ``username``'s client
    ``agent_id`` (the SASL2 user-agent id), none if there are none."""

    username: str
    agent_id: str
    mechanism: str


@dataclass(frozen=True, slots=True)
class FastTokenUsed:
    """Server: ``jid`` logged in with the token in ``slot`` (``"new"`` or
    ``"current"``) of client ``agent_id``: record ``count`` (replay
    protection) and the use; a ``"new"`` token becomes the current one and
    the older is dropped (XEP-0484 §5.1); ``invalidate``: delete it (§3.5)."""

    jid: JID
    agent_id: str
    slot: str
    count: int | None
    invalidate: bool


@dataclass(frozen=True, slots=True)
class FastTokenIssued:
    """Server: a new token for ``jid``'s client (XEP-0484 §3.2, §3.4) is in the
    ``<success/>`` about to be sent: store it (encrypted) in the client's
    ``"new"`` slot, replacing an unused one. ``token`` never shows in ``repr``;
    ``expiry`` is in seconds since the epoch."""

    jid: JID
    user_agent: UserAgent
    mechanism: str
    token: bytes = field(repr=False)
    expiry: float


@dataclass(frozen=True, slots=True)
class UpgradeTasksRequested:
    """Server: a SASL2 client asked for XEP-0480 upgrades to ``hashes``
    (``"sha256"``, ``"sha512"``): answer with ``UpgradeTasksNeeded`` the ones
    ``jid``'s account lacks."""

    jid: JID
    hashes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class CredentialsUpgraded:
    """Server: an XEP-0480 SCRAM upgrade task gave ``jid``'s credentials for
    a hash the account lacked: add them (keeping those it has)."""

    jid: JID
    credentials: ScramCredentials = field(repr=False)


@dataclass(frozen=True, slots=True)
class CredentialsUpgradable:
    """Server: PLAIN verified ``jid``'s password against credentials of a
    weaker hash than SHA-256 (an account imported with SCRAM-SHA-1 only,
    XEP-0227): derive and store the hashes the account lacks (XEP-0480 §1's
    upgrade, here from the password itself). Sent just before
    :class:`Authenticated`; ``password`` is OpaqueString-valid and never
    shown in ``repr``."""

    jid: JID
    password: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class AuthenticationFailed:
    """SASL failed with a defined condition (RFC 6120 §6.5).

    On the server the stream stays open for a retry until too many attempts
    have failed; on the client the stream is closed.

    ``credentials_checked`` (server) is true only when a credential was
    verified and found wrong (a wrong password or SCRAM proof, or an unknown
    user): the failures a login back-off should count. Failures before any
    check (an unknown mechanism, ``<abort/>``, a malformed request, an
    unsupported channel binding, a detected downgrade) leave it false.
    ``counted``: the failure counted toward the stream's attempt limit
    (RFC 6120 §6.4.5; False only for an unsupported channel binding type).
    """

    condition: str
    text: str | None
    username: str | None = None
    credentials_checked: bool = False
    counted: bool = True


@dataclass(frozen=True, slots=True)
class BindRequested:
    """Server (with ``ServerConfig.ask_before_bind``): the client asks to bind
    the full JID ``jid`` (RFC 6120 §7; the resource is already validated, or
    generated when the client asked for none).

    Answer with ``bind_accepted()`` or ``bind_refused()``; input is not
    processed until then.
    """

    jid: JID


@dataclass(frozen=True, slots=True)
class ResourceBound:
    """Resource binding completed (RFC 6120 §7); stanzas may now flow.
    ``carbons``: Bind 2 asked for XEP-0280 carbons on this session
    (XEP-0386 §3.2: "MUST be enabled at this point")."""

    jid: JID
    carbons: bool = False


@dataclass(frozen=True, slots=True)
class NegotiationFailed:
    """Client: stream negotiation cannot go on (for example TLS is required but not
    offered, or no acceptable SASL mechanism). The stream has been closed."""

    reason: str


@dataclass(frozen=True, slots=True)
class StanzaReceived:
    """A top-level stanza (message, presence or iq) arrived on a ready stream."""

    element: Element


@dataclass(frozen=True, slots=True)
class StreamErrorReceived:
    """The peer sent a stream error (RFC 6120 §4.9); the stream is over."""

    condition: StreamErrorCondition
    text: str | None


@dataclass(frozen=True, slots=True)
class StreamClosed:
    """The peer closed its stream with ``</stream:stream>`` (RFC 6120 §4.4)."""


@dataclass(frozen=True, slots=True)
class ConnectionClosed:
    """The transport reached end of file."""


@dataclass(frozen=True, slots=True)
class StreamManagementEnabled:
    """Stream management is on (XEP-0198 §3): the server sent, or the client
    received, ``<enabled/>``. ``id`` is the SM-ID when ``resume`` is true (§5);
    ``max`` the resumption time in seconds, ``location`` where to reconnect."""

    id: str | None
    resume: bool
    max: int | None = None
    location: str | None = None


@dataclass(frozen=True, slots=True)
class StreamManagementFailed:
    """Client: the server answered ``<enable/>`` with ``<failed/>`` (XEP-0198 §3);
    the stream goes on without stream management."""

    condition: str | None


@dataclass(frozen=True, slots=True)
class StanzasAcknowledged:
    """The peer acknowledged ``stanzas`` (XEP-0198 §4), oldest first: they are
    now its responsibility."""

    stanzas: tuple[Element, ...]


@dataclass(frozen=True, slots=True)
class ResumeRequested:
    """Server: the client asks to resume the session ``previd`` (XEP-0198 §5).

    Look up the detached session; if it exists *and* belongs to ``jid`` (the
    authenticated bare JID: only its owner may resume a session, §10) answer
    ``resume_accepted(state)``, else ``resume_failed()``. ``h`` is the number of
    stanzas the client handled on the old stream.
    """

    previd: str
    h: int
    jid: JID


@dataclass(frozen=True, slots=True)
class StreamResumed:
    """The session was resumed (XEP-0198 §5): the stream is ready again as
    ``jid`` without binding, and ``retransmitted`` were sent again, once."""

    jid: JID
    retransmitted: tuple[Element, ...]


@dataclass(frozen=True, slots=True)
class ResumeFailed:
    """Client: the previous session could not be resumed (XEP-0198 §5).

    ``condition`` is the server's stanza error condition (``item-not-found``
    when the session timed out), or ``feature-not-implemented`` when the
    server does not offer stream management or the old session was not
    resumable. ``h`` is the server's count of our stanzas if it said so.
    ``unacked`` are the stanzas of the old session the server did not
    acknowledge: the application decides whether to send them again. The
    connection goes on to bind a resource as usual.
    """

    condition: str | None
    h: int | None
    unacked: tuple[Element, ...]


@dataclass(frozen=True, slots=True)
class ClientStateChanged:
    """Server: the client said it is ``active`` or not (XEP-0352 §4.2)."""

    active: bool


Event = (
    StreamOpened
    | TLSRequested
    | CredentialsRequested
    | DerivationRequested
    | RegistrationRequested
    | Authenticated
    | FastTokensRequested
    | FastTokenUsed
    | FastTokenIssued
    | UpgradeTasksRequested
    | CredentialsUpgraded
    | CredentialsUpgradable
    | AuthenticationFailed
    | BindRequested
    | ResourceBound
    | NegotiationFailed
    | StanzaReceived
    | StreamManagementEnabled
    | StreamManagementFailed
    | StanzasAcknowledged
    | ResumeRequested
    | StreamResumed
    | ResumeFailed
    | ClientStateChanged
    | StreamErrorReceived
    | StreamClosed
    | ConnectionClosed
    | S2SEvent
    | LoginEvent
)
