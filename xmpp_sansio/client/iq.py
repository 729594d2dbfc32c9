"""Answering the iq requests a client receives (RFC 6120 §8.2.3, §8.4), sans I/O.

Theory of operation: every iq ``get``/``set`` addressed to a client gets
exactly one answer (RFC 6120 §8.2.3). :class:`IqDispatcher` picks the
handler registered for the namespace of the request's payload; a handler
returns an :class:`IqOutcome` (the reply to send, and what it changed). A
request no handler takes comes back as ``IqOutcome(unhandled=iq)``: the
application may answer it itself, else :func:`service_unavailable` is the
answer (RFC 6120 §8.4: a payload the entity does not understand). Results
and errors are never answered (§8.2.3, §8.3.1); a request that does not
validate gets the error its validation names (``bad-request``).

Nothing here sends: the caller sends ``outcome.reply``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final
from xml.etree.ElementTree import Element

from xmpp_sansio.errors import StanzaErrorCondition
from xmpp_sansio.roster import RosterItem
from xmpp_sansio.stanza import (
    Iq,
    IqType,
    StanzaKind,
    StanzaValueError,
    can_reply_with_error,
    error_reply,
    iq_result,
    stanza_kind,
)
from xmpp_sansio.xml import ns

__all__ = [
    "IqDispatcher",
    "IqHandler",
    "IqOutcome",
    "answer_ping",
    "payload_namespace",
    "ping_dispatcher",
    "service_unavailable",
]

_REQUEST_TYPES: Final = frozenset({IqType.GET.value, IqType.SET.value})


@dataclass(frozen=True, slots=True)
class IqOutcome:
    """What handling one incoming stanza produced.

    Attributes:
        reply: the answer to send now (a result or an error), if any.
        unhandled: a valid get/set no handler took: answer it, or send
            :func:`service_unavailable` (RFC 6120 §8.4).
        pushed: the roster item a roster push changed (RFC 6121 §2.1.6).
    """

    reply: Element | None = None
    unhandled: Iq | None = None
    pushed: RosterItem | None = None


IqHandler = Callable[[Iq], IqOutcome]
"""Answers one validated iq get/set whose payload is in the registered namespace."""


def payload_namespace(tag: str) -> str:
    """The namespace of a Clark-notation tag (``""`` when it has none)."""
    return tag[1 : tag.index("}")] if tag.startswith("{") else ""


def service_unavailable(iq: Iq | Element) -> Element:
    """The RFC 6120 §8.4 answer to a request for a payload nobody handles."""
    element = iq.element if isinstance(iq, Iq) else iq
    return error_reply(element, StanzaErrorCondition.SERVICE_UNAVAILABLE)


def answer_ping(iq: Iq) -> IqOutcome:
    """XEP-0199 §4: a ping get is answered with an empty result; a set is
    not a ping (``bad-request``)."""
    if iq.type is not IqType.GET:
        return IqOutcome(reply=error_reply(iq.element, StanzaErrorCondition.BAD_REQUEST))
    return IqOutcome(reply=iq_result(iq.element))


class IqDispatcher:
    """Incoming iq requests to handlers by payload namespace.

    Handlers are registered explicitly (no global registry); registering a
    namespace twice replaces the handler.
    """

    def __init__(self, handlers: dict[str, IqHandler] | None = None) -> None:
        self._handlers: dict[str, IqHandler] = dict(handlers or {})

    def register(self, namespace: str, handler: IqHandler) -> None:
        """Let ``handler`` answer the get/set requests whose payload is in ``namespace``."""
        self._handlers[namespace] = handler

    def unregister(self, namespace: str) -> None:
        """Stop handling ``namespace`` (its requests become unhandled)."""
        self._handlers.pop(namespace, None)

    @property
    def namespaces(self) -> frozenset[str]:
        """The namespaces handled."""
        return frozenset(self._handlers)

    @staticmethod
    def is_request(element: Element) -> bool:
        """An iq ``get`` or ``set`` (whatever its validity)."""
        return stanza_kind(element) is StanzaKind.IQ and element.get("type") in _REQUEST_TYPES

    def handle(self, element: Element) -> IqOutcome:
        """Handle one incoming stanza; only iq get/set requests produce anything.

        A request that does not validate (e.g. no ``id`` or two payloads) is
        answered with the error its validation names when an answer is
        possible (RFC 6120 §8.2.3, §8.3.1).
        """
        if not self.is_request(element):
            return IqOutcome()
        try:
            iq = Iq.from_element(element)
        except StanzaValueError as exc:
            if can_reply_with_error(element):
                return IqOutcome(reply=error_reply(element, exc.condition))
            return IqOutcome()
        assert iq.payload is not None  # Iq.from_element: a get/set has one child
        handler = self._handlers.get(payload_namespace(iq.payload.tag))
        if handler is None:
            return IqOutcome(unhandled=iq)
        return handler(iq)


def ping_dispatcher() -> IqDispatcher:
    """A dispatcher that answers XEP-0199 pings and nothing else."""
    return IqDispatcher({ns.PING: answer_ping})
