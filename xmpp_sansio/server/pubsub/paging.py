"""Result set management for item retrieval (XEP-0059 §2.1-§2.5, as
XEP-0060 §6.5.4 uses it): one page of a node's items and its ``<set/>``."""

from __future__ import annotations

from xml.etree.ElementTree import Element, SubElement

from ...errors import StanzaErrorCondition
from .node import Item
from .protocol import NS_RSM, PubSubError

__all__ = ["page"]

_BAD = StanzaErrorCondition.BAD_REQUEST
_NOT_FOUND = StanzaErrorCondition.ITEM_NOT_FOUND


def page(items: list[Item], rsm: Element, max_page: int) -> tuple[list[Item], Element]:
    """One page of ``items`` for the XEP-0059 request ``rsm`` and its ``<set/>``."""
    r = f"{{{NS_RSM}}}"
    raw_max = rsm.findtext(r + "max")
    try:
        size = max_page if raw_max is None else min(int(raw_max), max_page)
    except ValueError:
        raise PubSubError(_BAD) from None
    if size < 0:
        raise PubSubError(_BAD)
    ids = [item.id for item in items]
    after = rsm.findtext(r + "after")
    before = rsm.find(r + "before")
    index_el = rsm.findtext(r + "index")
    if after is not None:
        if after not in ids:
            raise PubSubError(_NOT_FOUND)
        start = ids.index(after) + 1
        page = items[start : start + size]
    elif before is not None:
        end = len(ids) if not before.text else ids.index(before.text) if before.text in ids else -1
        if end < 0:
            raise PubSubError(_NOT_FOUND)
        start = max(0, end - size)
        page = items[start:end]
    else:
        try:
            start = int(index_el) if index_el is not None else 0
        except ValueError:
            raise PubSubError(_BAD) from None
        page = items[max(start, 0) : max(start, 0) + size]
        start = max(start, 0)
    result = Element(r + "set")
    if page:
        SubElement(result, r + "first", {"index": str(start)}).text = page[0].id
        SubElement(result, r + "last").text = page[-1].id
    SubElement(result, r + "count").text = str(len(items))
    return page, result
