"""What the I/O layer sends a connection besides stanzas: answers to the
requests it emitted, as values for ``conn.send(answer)`` (one answer style,
h11's ``send``). The bespoke methods (``provide_credentials`` ...) remain as
thin aliases for now.

=====================================  ===================================
request event                          answer
=====================================  ===================================
:class:`~.events.TLSRequested`         :class:`TLSEstablished`
:class:`~.events.CredentialsRequested` :class:`CredentialsProvided`, :class:`CredentialsRefused`
:class:`~.events.DerivationRequested`  :class:`DerivationProvided`
:class:`~.events.BindRequested`        :class:`BindAccepted`, :class:`BindRefused`
:class:`~.events.ResumeRequested`      :class:`ResumeAccepted`, :class:`ResumeRejected`
:class:`~.events.RegistrationRequested` :class:`RegistrationAnswered`
=====================================  ===================================
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .. import sasl
from ..errors import StanzaErrorCondition
from ..sasl.credentials import ScramCredentials
from ..sm import SMState

__all__ = [
    "Answer",
    "BindAccepted",
    "BindRefused",
    "CredentialsProvided",
    "CredentialsRefused",
    "DerivationProvided",
    "RegistrationAnswered",
    "ResumeAccepted",
    "ResumeRejected",
    "TLSEstablished",
    "TLSInfo",
]


@dataclass(frozen=True, slots=True)
class TLSInfo:
    """What the TLS layer tells the connection once the handshake is done.

    ``channel_binding`` enables the SCRAM ``-PLUS`` mechanisms (RFC 5929 / RFC 9266)
    and is the one a client uses; a server lists further types this connection
    supports in ``more_channel_bindings`` (``tls-unique`` on TLS 1.2) and
    announces them all (XEP-0440).
    """

    channel_binding: sasl.ChannelBinding | None = None
    more_channel_bindings: tuple[sasl.ChannelBinding, ...] = ()

    @property
    def channel_bindings(self) -> tuple[sasl.ChannelBinding, ...]:
        """Every binding of this connection, ``channel_binding`` first."""
        first = () if self.channel_binding is None else (self.channel_binding,)
        return first + self.more_channel_bindings


@dataclass(frozen=True, slots=True)
class TLSEstablished:
    """The TLS handshake finished (RFC 6120 §5.4.3.3); ``info`` carries its
    channel bindings."""

    info: TLSInfo | None = None


@dataclass(frozen=True, slots=True)
class CredentialsProvided:
    """The stored credentials of the account asked for (``None``: no such account)."""

    credentials: ScramCredentials | None


@dataclass(frozen=True, slots=True)
class CredentialsRefused:
    """Fail the exchange without a lookup (RFC 6120 §6.5.12 by default)."""

    condition: sasl.SASLCondition = sasl.SASLCondition.TEMPORARY_AUTH_FAILURE


@dataclass(frozen=True, slots=True)
class DerivationProvided:
    """The PBKDF2 result PLAIN asked for."""

    salted_password: bytes


@dataclass(frozen=True, slots=True)
class FastToken:
    """One stored FAST token of a client (XEP-0484 §5.1): ``secret`` the token
    as the client holds it, ``slot`` ``"new"`` or ``"current"``, ``expiry``
    in seconds since the epoch, ``count`` the highest count seen (0: none)."""

    secret: bytes = field(repr=False)
    mechanism: str
    expiry: float
    count: int = 0
    slot: str = "current"


@dataclass(frozen=True, slots=True)
class FastTokensProvided:
    """Answers ``FastTokensRequested``: the client's tokens (none: no such
    client or account)."""

    tokens: tuple[FastToken, ...] = ()


@dataclass(frozen=True, slots=True)
class UpgradeTasksNeeded:
    """Answers ``UpgradeTasksRequested``: the hashes to upgrade (none: go on)."""

    hashes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class BindAccepted:
    """Bind the resource asked for (RFC 6120 §7.6.1)."""


@dataclass(frozen=True, slots=True)
class BindRefused:
    """Refuse the resource with an IQ error (RFC 6120 §7.6.2.1)."""

    condition: StanzaErrorCondition = StanzaErrorCondition.RESOURCE_CONSTRAINT


@dataclass(frozen=True, slots=True)
class ResumeAccepted:
    """Continue the detached session ``state`` on this stream (XEP-0198 §5)."""

    state: SMState


@dataclass(frozen=True, slots=True)
class ResumeRejected:
    """No such session to resume (XEP-0198 §5 ``<item-not-found/>``)."""


@dataclass(frozen=True, slots=True)
class RegistrationAnswered:
    """The account was created (``condition`` ``None``) or not (XEP-0077 §3.1)."""

    condition: StanzaErrorCondition | None = None


Answer = (
    TLSEstablished
    | CredentialsProvided
    | CredentialsRefused
    | DerivationProvided
    | FastTokensProvided
    | UpgradeTasksNeeded
    | BindAccepted
    | BindRefused
    | ResumeAccepted
    | ResumeRejected
    | RegistrationAnswered
)
