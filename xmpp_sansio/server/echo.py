"""A toy service at a subdomain: ``echo.DOMAIN`` answers every message with
its own body (the seed's echo bot, served by the server itself).

It shows the shape every service host takes (``conference.``, ``pubsub.``,
components later): a :class:`~xmpp_sansio.server.hosts.HostService` that gets
the stanzas addressed to its domain and returns outcomes. Wired with one line
(``xmpp_trio/services.py``); see docs/architecture.md.
"""

from __future__ import annotations

from typing import ClassVar
from xml.etree.ElementTree import Element, SubElement

from ..disco import Identity
from ..errors import StanzaErrorCondition
from ..stanza import Iq, Message, MessageType, Stanza
from .effects import Bounce, Outcome, Route
from .hosts import HostService
from .stages import Context

__all__ = ["EchoService"]


class EchoService(HostService):
    """Echo each message's ``<body/>`` back to its sender, with the same type
    and ``<thread/>``; answer disco (XEP-0030) and refuse other requests with
    ``service-unavailable`` (RFC 6120 §8.3.3.19). Presence is ignored."""

    name: ClassVar[str | None] = "Echo"
    identities: ClassVar[tuple[Identity, ...]] = (Identity("component", "generic", "Echo"),)

    def handle(self, ctx: Context, stanza: Stanza) -> list[Outcome]:
        if isinstance(stanza, Message):
            return self._echo(stanza)
        if isinstance(stanza, Iq):
            answered = self.answer_disco(stanza)
            if answered is not None:
                return answered
            return [Bounce(stanza.element, StanzaErrorCondition.SERVICE_UNAVAILABLE)]
        return []

    def _echo(self, message: Message) -> list[Outcome]:
        namespace = message.element.tag.partition("}")[0] + "}"
        body = message.element.find(namespace + "body")
        if message.type is MessageType.ERROR or body is None or message.from_ is None:
            return []
        attrs = {"to": str(message.from_), "from": str(message.to), "type": message.type.value}
        if message.id is not None:
            attrs["id"] = message.id
        reply = Element(namespace + "message", attrs)
        SubElement(reply, namespace + "body").text = body.text
        thread = message.element.find(namespace + "thread")
        if thread is not None:
            reply.append(thread)
        return [Route(reply)]
