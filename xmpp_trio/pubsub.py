"""Publish-subscribe helpers for a connected :class:`~xmpp_trio.client.Client`
(XEP-0060), with PEP ones (XEP-0163): avatar, nick, bookmarks.

Each helper sends one request with :meth:`Client.request` and parses the
answer with :mod:`xmpp_sansio.client.pubsub`; an error answer raises
:class:`~xmpp_trio.client.IqErrorResponse`. ``to=None`` is the client's own
account (PEP).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING
from xml.etree.ElementTree import Element

from xmpp_sansio.client.pubsub import (
    AVATAR_DATA,
    AVATAR_METADATA,
    BOOKMARKS,
    BOOKMARKS_OPTIONS,
    NICK,
    Bookmark,
    PubSubItem,
    avatar_data,
    avatar_metadata,
    bookmark_element,
    configure_iq,
    items_iq,
    nick_element,
    parse_bookmark,
    parse_config,
    parse_items,
    parse_published_id,
    publish_iq,
    retract_iq,
    subscribe_iq,
)

from .client import IqErrorResponse

if TYPE_CHECKING:
    from .client import Client

__all__ = [
    "get_bookmarks",
    "get_config",
    "get_items",
    "publish",
    "publish_avatar",
    "publish_bookmark",
    "retract",
    "set_config",
    "set_nick",
    "subscribe",
]


async def publish(
    client: Client,
    node: str,
    payload: Element | None,
    *,
    item_id: str | None = None,
    to: str | None = None,
    options: Mapping[str, str] | None = None,
) -> str | None:
    """Publish ``payload``; the item id the service names (XEP-0060 §7.1)."""
    result = await client.request(
        publish_iq(node, payload, item_id=item_id, to=to, options=options)
    )
    return parse_published_id(result) or item_id


async def retract(client: Client, node: str, item_id: str, *, to: str | None = None) -> None:
    """Retract ``item_id``, notifying subscribers (XEP-0060 §7.2)."""
    await client.request(retract_iq(node, item_id, to=to))


async def get_items(
    client: Client, node: str, *, to: str | None = None, max_items: int | None = None
) -> list[PubSubItem]:
    """The items of ``node`` (XEP-0060 §6.5)."""
    return parse_items(await client.request(items_iq(node, to=to, max_items=max_items)))


async def subscribe(client: Client, node: str, *, to: str | None = None) -> str:
    """Subscribe the client's bare JID to ``node``; the subscription's state."""
    result = await client.request(subscribe_iq(node, str(client.jid.bare), to=to))
    sub = result.find(
        "{http://jabber.org/protocol/pubsub}pubsub/{http://jabber.org/protocol/pubsub}subscription"
    )
    return "" if sub is None else sub.get("subscription", "")


async def get_config(
    client: Client, node: str, *, to: str | None = None
) -> dict[str, tuple[str, ...]]:
    """``node``'s configuration (XEP-0060 §8.2)."""
    return parse_config(await client.request(configure_iq(node, to=to)))


async def set_config(
    client: Client, node: str, config: Mapping[str, str], *, to: str | None = None
) -> None:
    """Submit ``config`` for ``node`` (XEP-0060 §8.2.4)."""
    await client.request(configure_iq(node, to=to, config=config))


async def publish_avatar(
    client: Client, image: bytes, mime_type: str = "image/png", *, width: int = 0, height: int = 0
) -> str:
    """Publish an avatar to PEP: data, then metadata (XEP-0084 §4); its id."""
    item_id, data = avatar_data(image)
    await publish(client, AVATAR_DATA, data, item_id=item_id)
    metadata = avatar_metadata(item_id, len(image), mime_type, width=width, height=height)
    await publish(client, AVATAR_METADATA, metadata, item_id=item_id)
    return item_id


async def set_nick(client: Client, nick: str) -> None:
    """Publish the user's nick (XEP-0172 §4)."""
    await publish(client, NICK, nick_element(nick), item_id="current")


async def publish_bookmark(client: Client, bookmark: Bookmark) -> None:
    """Add or replace a bookmark, with XEP-0402 §3.4's publish-options."""
    await publish(
        client,
        BOOKMARKS,
        bookmark_element(bookmark),
        item_id=bookmark.room,
        options=BOOKMARKS_OPTIONS,
    )


async def get_bookmarks(client: Client) -> list[Bookmark]:
    """The user's bookmarks (XEP-0402 §3); none if the node does not exist."""
    try:
        items = await get_items(client, BOOKMARKS)
    except IqErrorResponse as exc:
        if exc.error.condition.value == "item-not-found":
            return []
        raise
    return [b for b in map(parse_bookmark, items) if b is not None]
