"""Server-side sans-IO logic: stanza routing (RFC 6120 §10, RFC 6121 §8) and the
services plugged into it."""

from xmpp_sansio.server.router import (
    AvailableResource,
    BoundSession,
    Deliver,
    Disconnect,
    Effect,
    Router,
    SessionId,
)
from xmpp_sansio.server.service import Service

__all__ = [
    "AvailableResource",
    "BoundSession",
    "Deliver",
    "Disconnect",
    "Effect",
    "Router",
    "Service",
    "SessionId",
]
