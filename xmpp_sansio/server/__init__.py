"""Server-side sans-IO logic: stanza routing (RFC 6120 §10, RFC 6121 §8) and the
services plugged into it."""

from xmpp_sansio.server.effects import (
    Bounce,
    Deliver,
    Disconnect,
    Effect,
    EndSessions,
    Outcome,
    Reply,
    Route,
    SessionId,
)
from xmpp_sansio.server.router import Router
from xmpp_sansio.server.service import IqService, Service
from xmpp_sansio.server.stages import Context, Stage
from xmpp_sansio.server.view import AvailableResource, BoundSession, ServerView

__all__ = [
    "AvailableResource",
    "Bounce",
    "BoundSession",
    "Context",
    "Deliver",
    "Disconnect",
    "Effect",
    "EndSessions",
    "IqService",
    "Outcome",
    "Reply",
    "Route",
    "Router",
    "ServerView",
    "Service",
    "SessionId",
    "Stage",
]
