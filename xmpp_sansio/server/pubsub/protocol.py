"""Publish-subscribe on the wire (XEP-0060): namespaces, the errors with
their ``pubsub#errors`` conditions (XEP-0060 §7-§8), and the builders of
event notifications (XEP-0060 §7.1.2.1, §7.2.2.1, §8.2.5.3, §8.4.3.1,
§8.5.3.1) and result payloads.

Parsing the requests is the handler's job (:mod:`.handler`); this module
owns the vocabulary both sides share.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final
from xml.etree.ElementTree import Element, SubElement

from ...errors import StanzaErrorCondition
from ...stanza import error_reply

__all__ = [
    "NS_ERRORS",
    "NS_EVENT",
    "NS_OWNER",
    "NS_PUBSUB",
    "NS_RSM",
    "PubSubError",
    "error_element",
    "event_element",
    "unsupported",
]

NS_PUBSUB: Final = "http://jabber.org/protocol/pubsub"
NS_OWNER: Final = NS_PUBSUB + "#owner"
NS_EVENT: Final = NS_PUBSUB + "#event"
NS_ERRORS: Final = NS_PUBSUB + "#errors"
NS_RSM: Final = "http://jabber.org/protocol/rsm"
NS_SHIM: Final = "http://jabber.org/protocol/shim"

#: The ``pubsub#`` features this engine implements (XEP-0060 §10), advertised
#: as ``http://jabber.org/protocol/pubsub#<name>``.
FEATURES: Final = (
    "access-authorize",
    "access-open",
    "access-presence",
    "access-roster",
    "access-whitelist",
    "auto-create",
    "config-node",
    "create-and-configure",
    "create-nodes",
    "delete-items",
    "delete-nodes",
    "errors",
    "instant-nodes",
    "item-ids",
    "last-published",
    "manage-subscriptions",
    "modify-affiliations",
    "multi-items",
    "outcast-affiliation",
    "persistent-items",
    "publish",
    "publish-only-affiliation",
    "publish-options",
    "publisher-affiliation",
    "purge-nodes",
    "retract-items",
    "retrieve-affiliations",
    "retrieve-default",
    "retrieve-items",
    "retrieve-subscriptions",
    "rsm",
    "subscribe",
    "subscription-notifications",
)
#: What PEP adds (XEP-0163 §1: presence-based delivery filtered by caps).
PEP_ONLY_FEATURES: Final = (
    "auto-subscribe",
    "filtered-notifications",
    "presence-notifications",
    "presence-subscribe",
)


class PubSubError(Exception):
    """A request fails with the stanza error ``condition`` and, if given, the
    ``pubsub#errors`` condition ``app`` (XEP-0060 §7-§8); ``feature`` names
    the unsupported feature of an ``<unsupported/>`` (XEP-0060 §6.1.3.4)."""

    def __init__(
        self,
        condition: StanzaErrorCondition,
        app: str | None = None,
        *,
        feature: str | None = None,
        text: str | None = None,
    ) -> None:
        super().__init__(condition.value, app, feature)
        self.condition = condition
        self.app = app
        self.feature = feature
        self.text = text


def unsupported(feature: str) -> PubSubError:
    """``feature-not-implemented`` with ``<unsupported feature=.../>``
    (XEP-0060 §10: the ``pubsub#errors`` way to refuse an optional feature)."""
    return PubSubError(StanzaErrorCondition.FEATURE_NOT_IMPLEMENTED, "unsupported", feature=feature)


def error_element(request: Element, error: PubSubError) -> Element:
    """The error reply to the iq ``request`` for ``error``: the RFC 6120
    condition and the application condition in ``pubsub#errors``."""
    reply = error_reply(request, error.condition, text=error.text)
    if error.app is not None:
        container = reply[-1]
        attrs = {} if error.feature is None else {"feature": error.feature}
        container.append(Element(f"{{{NS_ERRORS}}}{error.app}", attrs))
    return reply


def event_element(child: Element) -> Element:
    """``<event xmlns='...#event'>`` around ``child`` (XEP-0060 §7.1.2.1)."""
    event = Element(f"{{{NS_EVENT}}}event")
    event.append(child)
    return event


def items_event(node: str, items: Iterable[tuple[str, Element | None, str | None]]) -> Element:
    """``<items node=...>`` of ``(id, payload or None, publisher or None)``
    (XEP-0060 §7.1.2.1: with payloads; §7.1.2.2: without)."""
    container = Element(f"{{{NS_EVENT}}}items", {"node": node})
    for item_id, payload, publisher in items:
        attrs = {"id": item_id}
        if publisher is not None:
            attrs["publisher"] = publisher
        item = SubElement(container, f"{{{NS_EVENT}}}item", attrs)
        if payload is not None:
            item.append(payload)
    return event_element(container)


def retract_event(node: str, item_ids: Iterable[str]) -> Element:
    """``<items node><retract id/></items>`` (XEP-0060 §7.2.2.1)."""
    container = Element(f"{{{NS_EVENT}}}items", {"node": node})
    for item_id in item_ids:
        SubElement(container, f"{{{NS_EVENT}}}retract", {"id": item_id})
    return event_element(container)


def purge_event(node: str) -> Element:
    """``<purge node/>`` (XEP-0060 §8.5.3.1)."""
    return event_element(Element(f"{{{NS_EVENT}}}purge", {"node": node}))


def delete_event(node: str, redirect: str | None) -> Element:
    """``<delete node>`` with an optional ``<redirect uri/>`` (XEP-0060 §8.4.3.1)."""
    delete = Element(f"{{{NS_EVENT}}}delete", {"node": node})
    if redirect is not None:
        SubElement(delete, f"{{{NS_EVENT}}}redirect", {"uri": redirect})
    return event_element(delete)


def configuration_event(node: str, form: Element | None) -> Element:
    """``<configuration node>``, with the new form if payloads are delivered
    (XEP-0060 §8.2.5.3)."""
    configuration = Element(f"{{{NS_EVENT}}}configuration", {"node": node})
    if form is not None:
        configuration.append(form)
    return event_element(configuration)


def subscription_event(node: str, jid: str, state: str, subid: str | None) -> Element:
    """``<subscription node jid subscription>``: a subscription's state changed
    (XEP-0060 §8.8.4, the approval of a pending subscription)."""
    attrs = {"node": node, "jid": jid, "subscription": state}
    if subid is not None:
        attrs["subid"] = subid
    return event_element(Element(f"{{{NS_EVENT}}}subscription", attrs))


def headers(subids: Iterable[str]) -> Element | None:
    """SHIM ``<headers>`` with one ``SubID`` header per subscription the
    notification answers (XEP-0060 §12.1, XEP-0131); ``None`` for none."""
    ids = list(subids)
    if not ids:
        return None
    container = Element(f"{{{NS_SHIM}}}headers")
    for subid in ids:
        SubElement(container, f"{{{NS_SHIM}}}header", {"name": "SubID"}).text = subid
    return container
