"""Bookmarks kept in step between PEP (XEP-0402) and private XML storage
(XEP-0048 in XEP-0049), the ``urn:xmpp:bookmarks:1#compat`` feature
(XEP-0402 §5.3, XEP-0411).

Both directions go through the router, never through the private storage
service itself:

* *PEP to private XML* (XEP-0402 §5.3.1): after the owner changes the
  ``urn:xmpp:bookmarks:1`` node, :meth:`BookmarksCompat.to_legacy` routes a
  ``jabber:iq:private`` set from the account's bare JID holding every
  conference as ``<storage xmlns='storage:bookmarks'/>`` (keeping the
  stored ``<url/>`` bookmarks, read through :class:`PrivateReader`), which the
  private storage service handles as any other set (its answer goes to the
  bare JID, where nothing takes it).
* *Private XML to PEP* (§5.3.2): a client's private set of
  ``storage:bookmarks`` is taken here first (this service comes before the
  private storage service), routed on unchanged (the private storage service
  stores and answers it), and the node is brought in line: changed or new
  conferences published, missing ones retracted, unchanged ones left alone
  without notifications.

If the private storage refuses a set (its size limits), the PEP side has
already changed: the two stay apart until the next change.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, ClassVar, Final, Protocol
from xml.etree.ElementTree import Element, SubElement

from ...jid import JID
from ...stanza import Iq, IqType
from ...xml.element import elements_equal
from ...xml.parser import parse_fragment
from ..effects import Outcome, Persist, Route
from ..service import IqService
from .config import AccessModel, NodeConfig, SendLast
from .engine import Answer, NodeEvent, PubSubEngine
from .node import Item
from .protocol import PubSubError, items_event, retract_event
from .store import PubSubItemDelete, PubSubItemSave

if TYPE_CHECKING:
    from ..stages import Context

__all__ = [
    "BOOKMARKS",
    "COMPAT_FEATURE",
    "BookmarksCompat",
    "PrivateReader",
    "items_to_legacy",
    "legacy_to_items",
]

BOOKMARKS: Final = "urn:xmpp:bookmarks:1"
COMPAT_FEATURE: Final = BOOKMARKS + "#compat"
LEGACY: Final = "storage:bookmarks"
_PRIVATE: Final = "jabber:iq:private"
_B: Final = f"{{{BOOKMARKS}}}"
_L: Final = f"{{{LEGACY}}}"


class PEP(Protocol):
    """What this service uses of :class:`~.pep.PEPService`."""

    engine: PubSubEngine
    compat: BookmarksCompat | None

    def deliver(self, ctx: Context, owner: JID, event: NodeEvent) -> list[Outcome]: ...


class PrivateReader(Protocol):
    """The read side of private XML storage (XEP-0049)."""

    def get(self, user: JID, namespace: str, local: str) -> bytes | None: ...


def bookmarks_config(base: NodeConfig) -> NodeConfig:
    """XEP-0402 §3.4's node options over ``base``."""
    return replace(
        base,
        access_model=AccessModel.WHITELIST,
        max_items=None,
        persist_items=True,
        send_last_published_item=SendLast.NEVER,
    )


def legacy_to_items(storage: Element) -> list[tuple[str, Element]]:
    """The XEP-0402 items (room, ``<conference/>``) of a XEP-0048 ``<storage/>``
    (XEP-0402 §5.3.2); conferences without a valid ``jid`` are skipped."""
    items: dict[str, Element] = {}
    for legacy in storage.iterfind(_L + "conference"):
        raw = legacy.get("jid")
        if not raw:
            continue
        try:
            room = str(JID.parse(raw).bare)
        except ValueError:
            continue
        attrs = {"autojoin": "true" if legacy.get("autojoin") in ("true", "1") else "false"}
        if legacy.get("name") is not None:
            attrs["name"] = legacy.get("name", "")
        conference = Element(_B + "conference", attrs)
        for child in ("nick", "password"):
            text = legacy.findtext(_L + child)
            if text is not None:
                SubElement(conference, _B + child).text = text
        items[room] = conference
    return list(items.items())


def items_to_legacy(items: list[Item], urls: list[Element]) -> Element:
    """The XEP-0048 ``<storage/>`` of XEP-0402 items (XEP-0402 §5.3.1: the
    item id becomes the ``jid``), followed by the ``<url/>`` bookmarks."""
    storage = Element(_L + "storage")
    for item in items:
        payload = item.payload
        if payload is None or payload.tag != _B + "conference":
            continue
        attrs = {"jid": item.id, "autojoin": payload.get("autojoin", "false")}
        if payload.get("name") is not None:
            attrs["name"] = payload.get("name", "")
        legacy = SubElement(storage, _L + "conference", attrs)
        for child in ("nick", "password"):
            text = payload.findtext(_B + child)
            if text is not None:
                SubElement(legacy, _L + child).text = text
    storage.extend(urls)
    return storage


class BookmarksCompat(IqService):
    """The XEP-0402 ``#compat`` unification for the accounts' PEP (see the
    module docstring). Put it before the private storage service."""

    account_features: ClassVar[tuple[str, ...]] = (COMPAT_FEATURE,)

    def __init__(self, pep: PEP, private: PrivateReader) -> None:
        self.pep = pep
        self.engine: PubSubEngine = pep.engine
        self.private = private
        self._passing: Element | None = None
        pep.compat = self

    # -- private XML to PEP --------------------------------------------------------------

    def handle_iq(self, ctx: Context, iq: Iq, to: JID | None) -> list[Outcome] | None:
        query = iq.payload
        if query is None or query.tag != f"{{{_PRIVATE}}}query" or iq.type is not IqType.SET:
            return None
        if iq.element is self._passing:
            self._passing = None
            return None  # on to the private storage service
        sender = iq.from_
        storage = query.find(_L + "storage")
        if sender is None or sender.resource is None or storage is None:
            return None  # not a client's bookmarks (or our own write, from the bare JID)
        if to is not None and to != sender.bare:
            return None
        owner = sender.bare
        self._passing = iq.element
        outcomes: list[Outcome] = [Route(iq.element)]
        try:
            answer = self.sync(ctx, owner, legacy_to_items(storage))
        except PubSubError:
            return outcomes  # no room for the node (max-nodes-exceeded): private XML only
        outcomes.extend(Persist(op) for op in answer.ops)
        for event in answer.events:
            outcomes.extend(self.pep.deliver(ctx, owner, event))
        return outcomes

    def sync(self, ctx: Context, owner: JID, wanted: list[tuple[str, Element]]) -> Answer:
        """Bring ``owner``'s bookmarks node in line with ``wanted``: publish
        what changed, retract what is gone, leave the rest alone (XEP-0402
        §5.3.2: no notifications for unchanged items)."""
        service = str(owner)
        answer = Answer()
        node = self.engine.nodes(service).get(BOOKMARKS)
        if node is None:
            if not wanted:
                return answer
            config = bookmarks_config(self.engine.defaults)
            node = self.engine.new_node(ctx, service, owner, owner, BOOKMARKS, config, answer)
        keep = {room for room, _ in wanted}
        gone = [item_id for item_id in node.items if item_id not in keep]
        for item_id in gone:
            del node.items[item_id]
            answer.ops.append(PubSubItemDelete(service, BOOKMARKS, item_id))
        if gone:
            answer.events.append(NodeEvent(node, retract_event(BOOKMARKS, gone)))
        for room, payload in wanted:
            old = node.items.get(room)
            if old is not None and old.payload is not None and elements_equal(old.payload, payload):
                continue
            item = Item(room, payload, service, ctx.now, node.next_seq())
            node.items.pop(room, None)
            node.items[room] = item
            answer.ops.append(PubSubItemSave(service, BOOKMARKS, item.stored()))
            event = items_event(BOOKMARKS, [(room, payload, None)])
            answer.events.append(NodeEvent(node, event, item=item))
        self.engine.trim(service, node, answer)
        return answer

    # -- PEP to private XML --------------------------------------------------------------

    def to_legacy(self, ctx: Context, owner: JID) -> list[Outcome]:
        """Write ``owner``'s bookmarks node to private XML as XEP-0048
        (XEP-0402 §5.3.1), keeping the stored ``<url/>`` bookmarks."""
        node = self.engine.nodes(str(owner)).get(BOOKMARKS)
        items = [] if node is None else list(node.items.values())
        urls: list[Element] = []
        stored = self.private.get(owner, LEGACY, "storage")
        if stored:
            try:
                urls = list(parse_fragment(stored).iterfind(_L + "url"))
            except ValueError:
                urls = []
        iq = Element(
            "{jabber:client}iq",
            {"type": "set", "id": "compat-" + ctx.rng(6).hex(), "from": str(owner)},
        )
        query = SubElement(iq, f"{{{_PRIVATE}}}query")
        query.append(items_to_legacy(items, urls))
        return [Route(iq)]
