"""What a client asks of the modern login (XEP-0388 SASL2, XEP-0386 Bind2,
XEP-0484 FAST), as frozen values in :attr:`ClientConfig.login
<xmpp_sansio.stream.config.ClientConfig>`."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..sasl.channel_binding import CLIENT_BINDING_PREFERENCE

__all__ = [
    "FAST_MECHANISM_PREFERENCE",
    "FastTokenAccepted",
    "FastTokenGranted",
    "FastTokenInvalidated",
    "FastTokenRejected",
    "LoginEvent",
    "LoginOptions",
    "SavedFastToken",
]

FAST_MECHANISM_PREFERENCE: tuple[str, ...] = (
    "HT-SHA-256-EXPR",
    "HT-SHA-256-UNIQ",
    "HT-SHA-256-ENDP",
    "HT-SHA-256-NONE",
)
"""FAST mechanisms a client asks a token for, most preferred first (XEP-0484
§2; a channel-bound one only when this connection has that binding)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SavedFastToken:
    """A FAST token the server issued (XEP-0484 §3.2), bound to ``mechanism``.

    ``count`` is the last count sent with it (§3.3; sent increasing);
    ``expiry`` the server's XEP-0082 timestamp, kept as text.
    """

    mechanism: str
    token: str = field(repr=False)
    expiry: str | None = None
    count: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class LoginOptions:
    """The client's side of SASL2, Bind2 and FAST.

    Attributes:
        sasl2: authenticate with SASL2 when the server offers it (XEP-0388);
            off: always RFC 6120 SASL.
        user_agent_id: this client installation's stable UUID v4 (§2.3),
            kept by the application; FAST needs it (XEP-0484 §4.1).
        software, device: the ``<user-agent/>`` texts.
        bind2: bind inline (XEP-0386) when offered and the configured JID
            names no resource (Bind2 cannot ask for one: the server picks
            it from ``bind_tag``); else classic binding after SASL2.
        bind_tag: Bind2's ``<tag/>`` (default: ``software``).
        carbons: enable Message Carbons inline (XEP-0280 via Bind2).
        inactive: start the session inactive (XEP-0352 via Bind2).
        fast: ask for a FAST token at a password login, and use
            ``fast_token`` when it matches an offered mechanism.
        fast_token: the token from an earlier login, if any.
        invalidate_token: log in with ``fast_token`` one last time and have
            the server invalidate it (``<fast invalidate='true'/>``,
            XEP-0484 §3.5: a log-out); no new token is asked for.
        upgrade: ask for the SCRAM upgrade tasks the server offers at a
            password login (XEP-0480), so an account with older hashes gains
            these.
        channel_bindings: the channel binding types SCRAM ``-PLUS`` may use
            (SASL2 and RFC 6120 SASL alike), most preferred first (XEP-0440).
    """

    sasl2: bool = True
    user_agent_id: str | None = None
    software: str | None = "xmpp-trio"
    device: str | None = None
    bind2: bool = True
    bind_tag: str | None = None
    carbons: bool = False
    inactive: bool = False
    fast: bool = True
    fast_token: SavedFastToken | None = None
    invalidate_token: bool = False
    upgrade: bool = True
    channel_bindings: tuple[str, ...] = CLIENT_BINDING_PREFERENCE


@dataclass(frozen=True, slots=True)
class FastTokenGranted:
    """The server issued or rotated a FAST token (XEP-0484 §3.2, §3.4): store
    it (it replaces the one stored) for the next login."""

    token: SavedFastToken


@dataclass(frozen=True, slots=True)
class FastTokenAccepted:
    """A FAST login succeeded with ``token`` (its ``count`` raised): store it."""

    token: SavedFastToken


@dataclass(frozen=True, slots=True)
class FastTokenRejected:
    """The server refused our FAST token (XEP-0484 §4.1): it is dropped and
    the login goes on with the password on the same stream."""

    mechanism: str
    condition: str


@dataclass(frozen=True, slots=True)
class FastTokenInvalidated:
    """A FAST login with ``invalidate`` succeeded (XEP-0484 §3.5): the server
    forgot the token; forget it too."""

    mechanism: str


LoginEvent = FastTokenGranted | FastTokenAccepted | FastTokenRejected | FastTokenInvalidated
"""The client's login events beside :data:`.events.Event`'s others."""
