"""Server-side sans-IO logic: stanza routing (RFC 6120 §10, RFC 6121 §8)."""

from xmpp_sansio.server.router import (
    AvailableResource,
    BoundSession,
    Deliver,
    Disconnect,
    Effect,
    Router,
    SessionId,
)

__all__ = [
    "AvailableResource",
    "BoundSession",
    "Deliver",
    "Disconnect",
    "Effect",
    "Router",
    "SessionId",
]
