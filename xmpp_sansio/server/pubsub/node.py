"""Leaf nodes in memory: items, affiliations and subscriptions (XEP-0060 §4).

A :class:`Node` is the engine's working copy; it is built from storage once
(:func:`node_from_stored`) and changed only by the engine, which returns the
matching store operations.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from xml.etree.ElementTree import Element

from ...jid import JID, InvalidJID
from ...xml.parser import parse_fragment
from ...xml.writer import serialize
from .access import Affiliation
from .config import NodeConfig
from .store import StoredItem, StoredNode

__all__ = ["Item", "Node", "SubState", "Subscription", "node_from_stored", "payload_bytes"]


class SubState(StrEnum):
    """A subscription's state (XEP-0060 §4.2)."""

    SUBSCRIBED = "subscribed"
    PENDING = "pending"
    NONE = "none"


@dataclass(slots=True)
class Item:
    """A published item: ``payload`` ``None`` for an item without one."""

    id: str
    payload: Element | None
    publisher: str
    stamp: float
    seq: int

    def stored(self) -> StoredItem:
        raw = b"" if self.payload is None else payload_bytes(self.payload)
        return StoredItem(self.id, raw, self.publisher, self.stamp, self.seq)


@dataclass(slots=True)
class Subscription:
    """One subscription of ``jid`` (as subscribed: bare or full)."""

    jid: JID
    subid: str
    state: SubState


@dataclass(slots=True)
class Node:
    """A leaf node: items in publication order (newest last)."""

    name: str
    config: NodeConfig
    items: dict[str, Item] = field(default_factory=dict)
    affiliations: dict[JID, Affiliation] = field(default_factory=dict)
    subscriptions: dict[JID, Subscription] = field(default_factory=dict)
    seq: int = 0

    def affiliation(self, jid: JID) -> Affiliation:
        """``jid``'s (bare) affiliation."""
        return self.affiliations.get(jid.bare, Affiliation.NONE)

    @property
    def owners(self) -> list[JID]:
        return [j for j, a in self.affiliations.items() if a is Affiliation.OWNER]

    def subscribed(self, jid: JID) -> bool:
        """Whether ``jid`` (bare) has an approved subscription (any resource)."""
        bare = jid.bare
        return any(
            s.state is SubState.SUBSCRIBED and s.jid.bare == bare
            for s in self.subscriptions.values()
        )

    def subscribers(self) -> list[Subscription]:
        """The approved subscriptions."""
        return [s for s in self.subscriptions.values() if s.state is SubState.SUBSCRIBED]

    def last_item(self) -> Item | None:
        return next(reversed(self.items.values()), None)

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq


def payload_bytes(payload: Element) -> bytes:
    """The stored form of a payload element."""
    return serialize(payload)


def _payload(raw: bytes) -> Element | None:
    if not raw:
        return None
    try:
        return parse_fragment(raw)
    except ValueError:
        return None


def node_from_stored(stored: StoredNode, base: NodeConfig) -> Node:
    """The working copy of a stored node (entries with unparsable JIDs skipped)."""
    node = Node(stored.name, NodeConfig.from_pairs(stored.config, base))
    for raw_jid, raw_aff in stored.affiliations:
        try:
            node.affiliations[JID.parse(raw_jid)] = Affiliation(raw_aff)
        except (InvalidJID, ValueError):
            continue
    for raw_jid, subid, state in stored.subscriptions:
        try:
            jid = JID.parse(raw_jid)
            node.subscriptions[jid] = Subscription(jid, subid, SubState(state))
        except (InvalidJID, ValueError):
            continue
    for item in stored.items:
        node.items[item.id] = Item(
            item.id, _payload(item.payload), item.publisher, item.stamp, item.seq
        )
        node.seq = max(node.seq, item.seq)
    return node
