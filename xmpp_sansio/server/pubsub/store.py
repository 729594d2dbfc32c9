"""Publish-subscribe storage: the store operations (``Persist`` effects, as
data) and the storage protocol a backend implements, with an in-memory one.

A *service* is the string that owns a set of nodes: the pubsub host's domain
(``pubsub.example.com``) or, for PEP, the account's bare JID (XEP-0163 §1).
The engine loads a service's nodes once, when first used
(:meth:`PubSubStorage.load`), and keeps them; every write after that is a
store operation the I/O layer commits once per batch (see
:class:`~xmpp_sansio.server.effects.Persist`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

__all__ = [
    "MemoryPubSubStorage",
    "PubSubAffiliationSave",
    "PubSubItemDelete",
    "PubSubItemSave",
    "PubSubNodeDelete",
    "PubSubNodeSave",
    "PubSubOp",
    "PubSubPurge",
    "PubSubServiceDelete",
    "PubSubStorage",
    "PubSubSubscriptionSave",
    "StoredItem",
    "StoredNode",
]


@dataclass(frozen=True, slots=True)
class StoredItem:
    """One published item: ``payload`` serialised (empty for none),
    ``seq`` orders the items of a node (higher is newer)."""

    id: str
    payload: bytes
    publisher: str
    stamp: float
    seq: int


@dataclass(frozen=True, slots=True)
class StoredNode:
    """A node as stored: its configuration pairs
    (:meth:`~.config.NodeConfig.pairs`), affiliations ``(jid, affiliation)``,
    subscriptions ``(jid, subid, state)`` and items, oldest first."""

    name: str
    config: tuple[tuple[str, str], ...]
    affiliations: tuple[tuple[str, str], ...] = ()
    subscriptions: tuple[tuple[str, str, str], ...] = ()
    items: tuple[StoredItem, ...] = ()


@dataclass(frozen=True, slots=True)
class PubSubNodeSave:
    """Create ``node`` of ``service`` or replace its configuration."""

    service: str
    node: str
    config: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class PubSubNodeDelete:
    """Delete ``node`` with its items, affiliations and subscriptions."""

    service: str
    node: str


@dataclass(frozen=True, slots=True)
class PubSubItemSave:
    """Store ``item`` in ``node`` (replacing an item with its id)."""

    service: str
    node: str
    item: StoredItem


@dataclass(frozen=True, slots=True)
class PubSubItemDelete:
    """Remove the item ``item_id`` of ``node``."""

    service: str
    node: str
    item_id: str


@dataclass(frozen=True, slots=True)
class PubSubPurge:
    """Remove every item of ``node``."""

    service: str
    node: str


@dataclass(frozen=True, slots=True)
class PubSubAffiliationSave:
    """Set ``jid``'s affiliation with ``node`` (``none`` removes it)."""

    service: str
    node: str
    jid: str
    affiliation: str


@dataclass(frozen=True, slots=True)
class PubSubSubscriptionSave:
    """Set the subscription ``subid`` of ``jid`` to ``node`` to ``state``
    (``subscribed`` or ``pending``; ``none`` removes it)."""

    service: str
    node: str
    jid: str
    subid: str
    state: str


@dataclass(frozen=True, slots=True)
class PubSubServiceDelete:
    """Forget every node of ``service`` (an account removed, XEP-0077 §3.2)."""

    service: str


#: The publish-subscribe store operations.
PubSubOp = (
    PubSubNodeSave
    | PubSubNodeDelete
    | PubSubItemSave
    | PubSubItemDelete
    | PubSubPurge
    | PubSubAffiliationSave
    | PubSubSubscriptionSave
    | PubSubServiceDelete
)


class PubSubStorage(Protocol):
    """The contract of a publish-subscribe backend.

    ``load`` returns every node of ``service`` with what it holds, nodes in
    creation order, items oldest first (by ``seq``), affiliations and
    subscriptions in first-stored order. ``apply`` carries out operations
    in order, all or nothing, durable when it returns; an operation on a node
    that does not exist is ignored (its node was deleted earlier in the
    batch). Item payloads come back byte for byte.
    """

    def load(self, service: str) -> list[StoredNode]: ...

    def apply(self, ops: Sequence[object]) -> None: ...


@dataclass(slots=True)
class _MemNode:
    config: tuple[tuple[str, str], ...]
    affiliations: dict[str, str] = field(default_factory=dict)
    subscriptions: dict[tuple[str, str], str] = field(default_factory=dict)
    items: dict[str, StoredItem] = field(default_factory=dict)


class MemoryPubSubStorage:
    """:class:`PubSubStorage` in memory (tests)."""

    def __init__(self) -> None:
        self._services: dict[str, dict[str, _MemNode]] = {}

    def load(self, service: str) -> list[StoredNode]:
        return [
            StoredNode(
                name,
                node.config,
                tuple(node.affiliations.items()),
                tuple((jid, subid, state) for (jid, subid), state in node.subscriptions.items()),
                tuple(sorted(node.items.values(), key=lambda i: i.seq)),
            )
            for name, node in self._services.get(service, {}).items()
        ]

    def apply(self, ops: Sequence[object]) -> None:
        staged = {s: dict(nodes) for s, nodes in self._services.items()}
        copied: set[tuple[str, str]] = set()

        def node(service: str, name: str) -> _MemNode | None:
            found = staged.get(service, {}).get(name)
            if found is not None and (service, name) not in copied:
                found = _MemNode(
                    found.config,
                    dict(found.affiliations),
                    dict(found.subscriptions),
                    dict(found.items),
                )
                staged[service][name] = found
                copied.add((service, name))
            return found

        for op in ops:
            match op:
                case PubSubNodeSave(service=s, node=n, config=c):
                    existing = node(s, n)
                    if existing is None:
                        staged.setdefault(s, {})[n] = _MemNode(c)
                        copied.add((s, n))
                    else:
                        existing.config = c
                case PubSubNodeDelete(service=s, node=n):
                    staged.get(s, {}).pop(n, None)
                case PubSubItemSave(service=s, node=n, item=item):
                    if (found := node(s, n)) is not None:
                        found.items.pop(item.id, None)
                        found.items[item.id] = item
                case PubSubItemDelete(service=s, node=n, item_id=item_id):
                    if (found := node(s, n)) is not None:
                        found.items.pop(item_id, None)
                case PubSubPurge(service=s, node=n):
                    if (found := node(s, n)) is not None:
                        found.items.clear()
                case PubSubAffiliationSave(service=s, node=n, jid=jid, affiliation=aff):
                    if (found := node(s, n)) is not None:
                        if aff == "none":
                            found.affiliations.pop(jid, None)
                        else:
                            found.affiliations[jid] = aff
                case PubSubSubscriptionSave(service=s, node=n, jid=jid, subid=subid, state=st):
                    if (found := node(s, n)) is not None:
                        if st == "none":
                            found.subscriptions.pop((jid, subid), None)
                        else:
                            found.subscriptions[(jid, subid)] = st
                case PubSubServiceDelete(service=s):
                    staged.pop(s, None)
                case _:
                    pass
        self._services = staged
