"""Events a stream connection reports to its user (the I/O layer).

Events are small frozen dataclasses named in the past tense for things that
happened (``StanzaReceived``) or as requests the I/O layer must act upon
(``TLSRequested``, ``CredentialsRequested``).
"""

from __future__ import annotations

from dataclasses import dataclass
from xml.etree.ElementTree import Element

from ..errors import StreamErrorCondition
from ..jid import JID

__all__ = [
    "Authenticated",
    "AuthenticationFailed",
    "ConnectionClosed",
    "CredentialsRequested",
    "Event",
    "NegotiationFailed",
    "RegistrationRequested",
    "ResourceBound",
    "StanzaReceived",
    "StreamClosed",
    "StreamErrorReceived",
    "StreamOpened",
    "TLSRequested",
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
class RegistrationRequested:
    """Server: a client asks to create the account ``local`` (XEP-0077 §3.1).

    Create it (or refuse) and answer with ``registration_result()``.
    ``local`` and ``password`` are already PRECIS-normalised.
    """

    local: str
    password: str


@dataclass(frozen=True, slots=True)
class Authenticated:
    """SASL succeeded (RFC 6120 §6.4.6). ``jid`` is the authenticated bare JID."""

    jid: JID
    mechanism: str


@dataclass(frozen=True, slots=True)
class AuthenticationFailed:
    """SASL failed with a defined condition (RFC 6120 §6.5).

    On the server the stream stays open for a retry until too many attempts
    have failed; on the client the stream is closed.
    """

    condition: str
    text: str | None
    username: str | None = None


@dataclass(frozen=True, slots=True)
class ResourceBound:
    """Resource binding completed (RFC 6120 §7); stanzas may now flow."""

    jid: JID


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


Event = (
    StreamOpened
    | TLSRequested
    | CredentialsRequested
    | RegistrationRequested
    | Authenticated
    | AuthenticationFailed
    | ResourceBound
    | NegotiationFailed
    | StanzaReceived
    | StreamErrorReceived
    | StreamClosed
    | ConnectionClosed
)
