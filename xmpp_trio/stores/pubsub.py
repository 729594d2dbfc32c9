"""Publish-subscribe storage in SQLite (XEP-0060, XEP-0163): the
:class:`~xmpp_sansio.server.pubsub.store.PubSubStorage` contract.

Nodes, items, affiliations and subscriptions in four tables keyed by
``(service, node)``; the engine reads a service once (:meth:`load`) and
writes through :meth:`apply`, which the server calls from
``ServerServices.commit`` once per batch of input, in one transaction.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

from xmpp_sansio.jid import JID
from xmpp_sansio.roster import Subscription
from xmpp_sansio.server.pubsub.store import (
    PubSubAffiliationSave,
    PubSubItemDelete,
    PubSubItemSave,
    PubSubNodeDelete,
    PubSubNodeSave,
    PubSubPurge,
    PubSubServiceDelete,
    PubSubSubscriptionSave,
    StoredItem,
    StoredNode,
)

from ._sql import transaction

if TYPE_CHECKING:
    from xmpp_sansio.server.roster import RosterStorage

__all__ = ["RosterContacts", "SqlitePubSubStorage"]

_SCHEMA: Final = (
    """
    CREATE TABLE IF NOT EXISTS pubsub_nodes (
        service TEXT NOT NULL,
        node TEXT NOT NULL,
        config TEXT NOT NULL,
        PRIMARY KEY (service, node)
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS pubsub_items (
        service TEXT NOT NULL,
        node TEXT NOT NULL,
        item TEXT NOT NULL,
        payload BLOB NOT NULL,
        publisher TEXT NOT NULL,
        stamp REAL NOT NULL,
        seq INTEGER NOT NULL,
        PRIMARY KEY (service, node, item)
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS pubsub_affiliations (
        service TEXT NOT NULL,
        node TEXT NOT NULL,
        jid TEXT NOT NULL,
        affiliation TEXT NOT NULL,
        PRIMARY KEY (service, node, jid)
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS pubsub_subscriptions (
        service TEXT NOT NULL,
        node TEXT NOT NULL,
        jid TEXT NOT NULL,
        subid TEXT NOT NULL,
        state TEXT NOT NULL,
        PRIMARY KEY (service, node, jid, subid)
    )
    """,
)
_CHILD_TABLES: Final = ("pubsub_items", "pubsub_affiliations", "pubsub_subscriptions")
_IF_NODE: Final = "WHERE EXISTS (SELECT 1 FROM pubsub_nodes WHERE service = ? AND node = ?)"


class SqlitePubSubStorage:
    """:class:`~xmpp_sansio.server.pubsub.store.PubSubStorage` in ``conn``
    (tables created if missing)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        with conn:
            for statement in _SCHEMA:
                conn.execute(statement)

    def load(self, service: str) -> list[StoredNode]:
        conn = self._conn
        nodes = conn.execute(
            "SELECT node, config FROM pubsub_nodes WHERE service = ? ORDER BY rowid", (service,)
        ).fetchall()
        if not nodes:
            return []
        items: dict[str, list[StoredItem]] = {}
        for node, item, payload, publisher, stamp, seq in conn.execute(
            "SELECT node, item, payload, publisher, stamp, seq FROM pubsub_items"
            " WHERE service = ? ORDER BY seq",
            (service,),
        ):
            items.setdefault(node, []).append(
                StoredItem(item, bytes(payload), publisher, float(stamp), int(seq))
            )
        affiliations: dict[str, list[tuple[str, str]]] = {}
        for node, jid, affiliation in conn.execute(
            "SELECT node, jid, affiliation FROM pubsub_affiliations"
            " WHERE service = ? ORDER BY rowid",
            (service,),
        ):
            affiliations.setdefault(node, []).append((jid, affiliation))
        subscriptions: dict[str, list[tuple[str, str, str]]] = {}
        for node, jid, subid, state in conn.execute(
            "SELECT node, jid, subid, state FROM pubsub_subscriptions"
            " WHERE service = ? ORDER BY rowid",
            (service,),
        ):
            subscriptions.setdefault(node, []).append((jid, subid, state))
        return [
            StoredNode(
                node,
                tuple((str(k), str(v)) for k, v in json.loads(config)),
                tuple(affiliations.get(node, ())),
                tuple(subscriptions.get(node, ())),
                tuple(items.get(node, ())),
            )
            for node, config in nodes
        ]

    def write(self, op: object) -> None:
        """Carry out one pubsub operation in the caller's transaction
        (``ServerServices.commit``)."""
        conn = self._conn
        match op:
            case PubSubNodeSave():
                _node_save(conn, op)
            case PubSubNodeDelete():
                _node_delete(conn, op)
            case PubSubItemSave():
                _item_save(conn, op)
            case PubSubItemDelete():
                _item_delete(conn, op)
            case PubSubPurge():
                _purge(conn, op)
            case PubSubAffiliationSave():
                _affiliation_save(conn, op)
            case PubSubSubscriptionSave():
                _subscription_save(conn, op)
            case PubSubServiceDelete():
                _service_delete(conn, op)
            case _:
                raise TypeError(f"not a pubsub op: {op!r}")

    def apply(self, ops: Sequence[object]) -> None:
        """``write`` each of ``ops`` in one transaction of their own."""
        with transaction(self._conn):
            for op in ops:
                self.write(op)


def _node_save(conn: sqlite3.Connection, op: PubSubNodeSave) -> None:
    conn.execute(
        "INSERT INTO pubsub_nodes (service, node, config) VALUES (?, ?, ?)"
        " ON CONFLICT (service, node) DO UPDATE SET config = excluded.config",
        (op.service, op.node, json.dumps(op.config)),
    )


def _node_delete(conn: sqlite3.Connection, op: PubSubNodeDelete) -> None:
    for table in (*_CHILD_TABLES, "pubsub_nodes"):
        conn.execute(f"DELETE FROM {table} WHERE service = ? AND node = ?", (op.service, op.node))


def _item_save(conn: sqlite3.Connection, op: PubSubItemSave) -> None:
    item = op.item
    conn.execute(
        "INSERT OR REPLACE INTO pubsub_items"
        " (service, node, item, payload, publisher, stamp, seq)"
        f" SELECT ?, ?, ?, ?, ?, ?, ? {_IF_NODE}",
        (
            op.service,
            op.node,
            item.id,
            item.payload,
            item.publisher,
            item.stamp,
            item.seq,
            op.service,
            op.node,
        ),
    )


def _item_delete(conn: sqlite3.Connection, op: PubSubItemDelete) -> None:
    conn.execute(
        "DELETE FROM pubsub_items WHERE service = ? AND node = ? AND item = ?",
        (op.service, op.node, op.item_id),
    )


def _purge(conn: sqlite3.Connection, op: PubSubPurge) -> None:
    conn.execute("DELETE FROM pubsub_items WHERE service = ? AND node = ?", (op.service, op.node))


def _affiliation_save(conn: sqlite3.Connection, op: PubSubAffiliationSave) -> None:
    if op.affiliation == "none":
        conn.execute(
            "DELETE FROM pubsub_affiliations WHERE service = ? AND node = ? AND jid = ?",
            (op.service, op.node, op.jid),
        )
        return
    conn.execute(
        "INSERT INTO pubsub_affiliations (service, node, jid, affiliation)"
        f" SELECT ?, ?, ?, ? {_IF_NODE}"
        " ON CONFLICT (service, node, jid) DO UPDATE SET affiliation = excluded.affiliation",
        (op.service, op.node, op.jid, op.affiliation, op.service, op.node),
    )


def _subscription_save(conn: sqlite3.Connection, op: PubSubSubscriptionSave) -> None:
    if op.state == "none":
        conn.execute(
            "DELETE FROM pubsub_subscriptions"
            " WHERE service = ? AND node = ? AND jid = ? AND subid = ?",
            (op.service, op.node, op.jid, op.subid),
        )
        return
    conn.execute(
        "INSERT INTO pubsub_subscriptions (service, node, jid, subid, state)"
        f" SELECT ?, ?, ?, ?, ? {_IF_NODE}"
        " ON CONFLICT (service, node, jid, subid) DO UPDATE SET state = excluded.state",
        (op.service, op.node, op.jid, op.subid, op.state, op.service, op.node),
    )


def _service_delete(conn: sqlite3.Connection, op: PubSubServiceDelete) -> None:
    for table in (*_CHILD_TABLES, "pubsub_nodes"):
        conn.execute(f"DELETE FROM {table} WHERE service = ?", (op.service,))


class RosterContacts:
    """PEP's :class:`~xmpp_sansio.server.pubsub.pep.Contacts` read from the
    rosters (RFC 6121 §2.1.2.5: ``from``/``both`` in the owner's roster means
    the contact receives the owner's presence)."""

    def __init__(self, storage: RosterStorage) -> None:
        self._storage = storage

    def subscribed(self, owner: JID, contact: JID) -> bool:
        stored = self._storage.item(owner.bare, contact.bare)
        return stored is not None and stored.item.subscription in _FROM

    def groups(self, owner: JID, contact: JID) -> frozenset[str]:
        stored = self._storage.item(owner.bare, contact.bare)
        return frozenset() if stored is None else frozenset(stored.item.groups)

    def presence_subscribers(self, owner: JID) -> list[JID]:
        _, items = self._storage.get(owner.bare)
        return [s.item.jid.bare for s in items if s.item.subscription in _FROM]

    def presence_subscriptions(self, contact: JID) -> list[JID]:
        _, items = self._storage.get(contact.bare)
        return [s.item.jid.bare for s in items if s.item.subscription in _TO]


_FROM: Final = frozenset({Subscription.FROM, Subscription.BOTH})
_TO: Final = frozenset({Subscription.TO, Subscription.BOTH})
