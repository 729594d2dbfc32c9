"""Publish-subscribe for clients (XEP-0060), with PEP helpers (XEP-0163):
request builders and parsers, no I/O.

The builders return ``<iq/>`` elements without an ``id`` (the client's iq
tracker gives one); ``to=None`` addresses the client's own account, which is
PEP (XEP-0163 §3). The PEP helpers build the standard payloads: avatars
(XEP-0084), nick (XEP-0172), bookmarks (XEP-0402, with the publish-options
its §3.4 asks for) and OMEMO's device list options.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final
from xml.etree.ElementTree import Element, SubElement

from ..forms import FORM_TYPE, Field, FieldType, Form, FormError, FormType, build_form, parse_form

__all__ = [
    "AVATAR_DATA",
    "AVATAR_METADATA",
    "BOOKMARKS",
    "BOOKMARKS_OPTIONS",
    "NICK",
    "OMEMO_OPTIONS",
    "Bookmark",
    "PubSubEvent",
    "PubSubItem",
    "avatar_data",
    "avatar_metadata",
    "bookmark_element",
    "configure_iq",
    "create_iq",
    "delete_iq",
    "items_iq",
    "nick_element",
    "parse_bookmark",
    "parse_config",
    "parse_event",
    "parse_items",
    "parse_published_id",
    "publish_iq",
    "retract_iq",
    "subscribe_iq",
    "unsubscribe_iq",
]

NS_PUBSUB: Final = "http://jabber.org/protocol/pubsub"
NS_OWNER: Final = NS_PUBSUB + "#owner"
NS_EVENT: Final = NS_PUBSUB + "#event"
PUBLISH_OPTIONS: Final = NS_PUBSUB + "#publish-options"
NODE_CONFIG: Final = NS_PUBSUB + "#node_config"
AVATAR_DATA: Final = "urn:xmpp:avatar:data"
AVATAR_METADATA: Final = "urn:xmpp:avatar:metadata"
NICK: Final = "http://jabber.org/protocol/nick"
BOOKMARKS: Final = "urn:xmpp:bookmarks:1"

#: XEP-0402 §3.4: the options of the bookmarks node.
BOOKMARKS_OPTIONS: Final = {
    "persist_items": "true",
    "max_items": "max",
    "send_last_published_item": "never",
    "access_model": "whitelist",
}
#: OMEMO's device list and bundles (XEP-0384 §5.3.2): open, as many as needed.
OMEMO_OPTIONS: Final = {"access_model": "open", "max_items": "max"}

_C: Final = "{jabber:client}"
_P: Final = f"{{{NS_PUBSUB}}}"
_E: Final = f"{{{NS_EVENT}}}"


def _iq(type_: str, payload: Element, to: str | None) -> Element:
    attrs = {"type": type_}
    if to is not None:
        attrs["to"] = to
    iq = Element(_C + "iq", attrs)
    iq.append(payload)
    return iq


def _submit(form_type: str, values: Mapping[str, str | Iterable[str]]) -> Element:
    fields = [Field(FORM_TYPE, FieldType.HIDDEN, values=(form_type,))]
    for var, value in values.items():
        name = var if var.startswith("pubsub#") else f"pubsub#{var}"
        fields.append(Field(name, values=(value,) if isinstance(value, str) else tuple(value)))
    return build_form(Form(FormType.SUBMIT, fields=tuple(fields)))


def publish_iq(
    node: str,
    payload: Element | None,
    *,
    item_id: str | None = None,
    to: str | None = None,
    options: Mapping[str, str] | None = None,
) -> Element:
    """Publish ``payload`` to ``node`` (XEP-0060 §7.1), with publish-options
    preconditions (§7.1.5) if ``options`` are given."""
    pubsub = Element(_P + "pubsub")
    publish = SubElement(pubsub, _P + "publish", {"node": node})
    item = SubElement(publish, _P + "item", {} if item_id is None else {"id": item_id})
    if payload is not None:
        item.append(payload)
    if options:
        SubElement(pubsub, _P + "publish-options").append(_submit(PUBLISH_OPTIONS, options))
    return _iq("set", pubsub, to)


def retract_iq(node: str, item_id: str, *, to: str | None = None, notify: bool = True) -> Element:
    """Retract ``item_id`` from ``node`` (XEP-0060 §7.2)."""
    pubsub = Element(_P + "pubsub")
    attrs = {"node": node, "notify": "true"} if notify else {"node": node}
    retract = SubElement(pubsub, _P + "retract", attrs)
    SubElement(retract, _P + "item", {"id": item_id})
    return _iq("set", pubsub, to)


def items_iq(
    node: str,
    *,
    to: str | None = None,
    max_items: int | None = None,
    item_ids: Iterable[str] = (),
) -> Element:
    """Retrieve items of ``node``: all, the ``max_items`` newest, or by id (XEP-0060 §6.5)."""
    pubsub = Element(_P + "pubsub")
    items = SubElement(pubsub, _P + "items", {"node": node})
    if max_items is not None:
        items.set("max_items", str(max_items))
    for item_id in item_ids:
        SubElement(items, _P + "item", {"id": item_id})
    return _iq("get", pubsub, to)


def subscribe_iq(node: str, jid: str, *, to: str | None = None) -> Element:
    """Subscribe ``jid`` (the client's bare or full JID) to ``node`` (XEP-0060 §6.1)."""
    pubsub = Element(_P + "pubsub")
    SubElement(pubsub, _P + "subscribe", {"node": node, "jid": jid})
    return _iq("set", pubsub, to)


def unsubscribe_iq(node: str, jid: str, *, to: str | None = None) -> Element:
    """Unsubscribe ``jid`` from ``node`` (XEP-0060 §6.2)."""
    pubsub = Element(_P + "pubsub")
    SubElement(pubsub, _P + "unsubscribe", {"node": node, "jid": jid})
    return _iq("set", pubsub, to)


def create_iq(
    node: str, *, to: str | None = None, config: Mapping[str, str] | None = None
) -> Element:
    """Create ``node``, configured with ``config`` if given (XEP-0060 §8.1)."""
    pubsub = Element(_P + "pubsub")
    SubElement(pubsub, _P + "create", {"node": node})
    if config:
        SubElement(pubsub, _P + "configure").append(_submit(NODE_CONFIG, config))
    return _iq("set", pubsub, to)


def configure_iq(
    node: str, *, to: str | None = None, config: Mapping[str, str] | None = None
) -> Element:
    """Ask for ``node``'s configuration form (no ``config``) or submit
    ``config`` (XEP-0060 §8.2)."""
    pubsub = Element(f"{{{NS_OWNER}}}pubsub")
    configure = SubElement(pubsub, f"{{{NS_OWNER}}}configure", {"node": node})
    if config is None:
        return _iq("get", pubsub, to)
    configure.append(_submit(NODE_CONFIG, config))
    return _iq("set", pubsub, to)


def delete_iq(node: str, *, to: str | None = None) -> Element:
    """Delete ``node`` (XEP-0060 §8.4)."""
    pubsub = Element(f"{{{NS_OWNER}}}pubsub")
    SubElement(pubsub, f"{{{NS_OWNER}}}delete", {"node": node})
    return _iq("set", pubsub, to)


@dataclass(frozen=True, slots=True)
class PubSubItem:
    """An item: its id and payload (``None`` for a notification without one)."""

    id: str
    payload: Element | None


@dataclass(frozen=True, slots=True)
class PubSubEvent:
    """A notification (XEP-0060 §7.1.2): from whom, about which node, the
    items published and the ids retracted; ``purged``/``deleted`` for those
    events."""

    sender: str | None
    node: str
    items: tuple[PubSubItem, ...] = ()
    retracted: tuple[str, ...] = ()
    purged: bool = False
    deleted: bool = False


def _item(el: Element) -> PubSubItem:
    children = list(el)
    return PubSubItem(el.get("id", ""), children[0] if children else None)


def parse_items(result: Element) -> list[PubSubItem]:
    """The items of an items result (XEP-0060 §6.5.2), in document order."""
    return [_item(el) for el in result.iterfind(f"{_P}pubsub/{_P}items/{_P}item")]


def parse_published_id(result: Element) -> str | None:
    """The item id a publish result names (XEP-0060 §7.1.2), if any."""
    item = result.find(f"{_P}pubsub/{_P}publish/{_P}item")
    return None if item is None else item.get("id")


def parse_event(message: Element) -> PubSubEvent | None:
    """The notification a ``<message/>`` carries, or ``None``."""
    event = message.find(_E + "event")
    if event is None or not len(event):
        return None
    child = event[0]
    node = child.get("node", "")
    sender = message.get("from")
    if child.tag == _E + "items":
        return PubSubEvent(
            sender,
            node,
            tuple(_item(el) for el in child.iterfind(_E + "item")),
            tuple(el.get("id", "") for el in child.iterfind(_E + "retract")),
        )
    if child.tag == _E + "purge":
        return PubSubEvent(sender, node, purged=True)
    if child.tag == _E + "delete":
        return PubSubEvent(sender, node, deleted=True)
    return None


def parse_config(result: Element) -> dict[str, tuple[str, ...]]:
    """The options of a configure result (XEP-0060 §8.2.2), by field name
    (``pubsub#access_model``...); raises ``ValueError`` for a bad form."""
    x = result.find(f"{{{NS_OWNER}}}pubsub/{{{NS_OWNER}}}configure/{{jabber:x:data}}x")
    if x is None:
        raise ValueError("no configuration form")
    try:
        form = parse_form(x)
    except FormError as exc:
        raise ValueError(str(exc)) from None
    return {f.var: f.values for f in form.fields if f.var is not None and f.var != FORM_TYPE}


# -- PEP payloads ---------------------------------------------------------------------


def nick_element(nick: str) -> Element:
    """``<nick/>`` (XEP-0172 §4)."""
    el = Element(f"{{{NICK}}}nick")
    el.text = nick
    return el


def avatar_data(image: bytes) -> tuple[str, Element]:
    """The item id (SHA-1 of the image, XEP-0084 §4.1) and ``<data/>``."""
    el = Element(f"{{{AVATAR_DATA}}}data")
    el.text = base64.b64encode(image).decode("ascii")
    return hashlib.sha1(image).hexdigest(), el


def avatar_metadata(
    item_id: str, size: int, mime_type: str = "image/png", *, width: int = 0, height: int = 0
) -> Element:
    """``<metadata><info/></metadata>`` for one image (XEP-0084 §4.2)."""
    el = Element(f"{{{AVATAR_METADATA}}}metadata")
    attrs = {"id": item_id, "bytes": str(size), "type": mime_type}
    if width:
        attrs["width"] = str(width)
    if height:
        attrs["height"] = str(height)
    SubElement(el, f"{{{AVATAR_METADATA}}}info", attrs)
    return el


@dataclass(frozen=True, slots=True)
class Bookmark:
    """A XEP-0402 bookmark: the room is the item id."""

    room: str
    name: str | None = None
    autojoin: bool = False
    nick: str | None = None
    password: str | None = None


def bookmark_element(bookmark: Bookmark) -> Element:
    """``<conference/>`` (XEP-0402 §3)."""
    attrs = {"autojoin": "true" if bookmark.autojoin else "false"}
    if bookmark.name is not None:
        attrs["name"] = bookmark.name
    el = Element(f"{{{BOOKMARKS}}}conference", attrs)
    if bookmark.nick is not None:
        SubElement(el, f"{{{BOOKMARKS}}}nick").text = bookmark.nick
    if bookmark.password is not None:
        SubElement(el, f"{{{BOOKMARKS}}}password").text = bookmark.password
    return el


def parse_bookmark(item: PubSubItem) -> Bookmark | None:
    """The bookmark an item holds, or ``None`` if it holds none."""
    el = item.payload
    if el is None or el.tag != f"{{{BOOKMARKS}}}conference" or not item.id:
        return None
    return Bookmark(
        item.id,
        el.get("name"),
        el.get("autojoin") in ("true", "1"),
        el.findtext(f"{{{BOOKMARKS}}}nick"),
        el.findtext(f"{{{BOOKMARKS}}}password"),
    )
