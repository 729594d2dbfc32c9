"""Roster items and the ``jabber:iq:roster`` payload (RFC 6121 §2), for clients and servers.

A roster is the list of a user's contacts (RFC 6121 §2.1). Each
:class:`RosterItem` holds what a client may see of a contact (§2.1.2): its
JID, an optional handle (``name``), the groups it is filed under, the
subscription state (``subscription`` and ``ask``, Appendix A) and the
pre-approval flag (``approved``, §3.4). A server keeps more per contact (the
"Pending In" sub-state and the subscription request to redeliver, §3.1.3);
that lives in :mod:`xmpp_sansio.server.roster` and never reaches a client:
"Pending In" is not shown in the roster (RFC 6121 Appendix A.1).

:func:`parse_roster_query` reads a ``<query xmlns='jabber:iq:roster'/>`` (a
roster result, push or set) and raises :class:`InvalidRosterQuery`, carrying
the stanza error condition of RFC 6121 §2.3.3, for what the RFC forbids;
:func:`build_roster_query` and :func:`roster_push` write one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Final
from xml.etree.ElementTree import Element

from xmpp_sansio.errors import StanzaErrorCondition
from xmpp_sansio.jid import JID
from xmpp_sansio.stanza import IqType, StanzaValueError, make_iq
from xmpp_sansio.xml import ns

__all__ = [
    "PRE_APPROVAL_FEATURE",
    "QUERY_TAG",
    "ROSTER_VER_FEATURE",
    "InvalidRosterQuery",
    "RosterItem",
    "Subscription",
    "build_roster_query",
    "parse_roster_query",
    "roster_push",
]

#: The roster payload, ``<query xmlns='jabber:iq:roster'/>`` (RFC 6121 §2.1.1).
QUERY_TAG: Final = f"{{{ns.ROSTER}}}query"
_ITEM_TAG: Final = f"{{{ns.ROSTER}}}item"
_GROUP_TAG: Final = f"{{{ns.ROSTER}}}group"

#: Stream feature announcing roster versioning (RFC 6121 §2.6.1).
ROSTER_VER_FEATURE: Final = "{urn:xmpp:features:rosterver}ver"
#: Stream feature announcing subscription pre-approval (RFC 6121 §3.4.1).
PRE_APPROVAL_FEATURE: Final = "{urn:xmpp:features:pre-approval}sub"

_TRUE: Final = frozenset({"true", "1"})  # xs:boolean (RFC 6121 §2.1.2.1)


class Subscription(StrEnum):
    """The ``subscription`` attribute of a roster item (RFC 6121 §2.1.2.5).

    ``none``/``to``/``from``/``both`` describe the presence subscriptions
    between the user and the contact; ``remove`` only appears in a roster set
    (deleting the item, §2.5) and in the roster push that follows.
    """

    NONE = "none"
    TO = "to"
    FROM = "from"
    BOTH = "both"
    REMOVE = "remove"


@dataclass(frozen=True, slots=True)
class RosterItem:
    """One contact as a client sees it (RFC 6121 §2.1.2).

    ``ask`` is true for the "Pending Out" sub-states (``ask='subscribe'``,
    §2.1.2.2); ``approved`` is a subscription pre-approval (§2.1.2.1, §3.4);
    ``name`` is the user's handle for the contact (§2.1.2.4); ``groups`` the
    roster groups it is filed under (§2.1.2.6).
    """

    jid: JID
    name: str | None = None
    subscription: Subscription = Subscription.NONE
    ask: bool = False
    groups: frozenset[str] = frozenset()
    approved: bool = False


class InvalidRosterQuery(StanzaValueError):
    """A roster payload the RFC forbids; ``condition`` is the error to answer
    with (RFC 6121 §2.3.3: ``bad-request``, ``not-acceptable``; RFC 6120
    §8.3.3.8: ``jid-malformed`` for an item whose ``jid`` is not a JID)."""


def _parse_item(el: Element) -> RosterItem:
    raw_jid = el.get("jid")
    if raw_jid is None:
        # RFC 6121 §2.1.2.4: the 'jid' attribute is REQUIRED.
        raise InvalidRosterQuery(StanzaErrorCondition.BAD_REQUEST, "roster item without 'jid'")
    try:
        jid = JID.parse(raw_jid)
    except ValueError as exc:
        raise InvalidRosterQuery(
            StanzaErrorCondition.JID_MALFORMED, f"invalid roster item jid {raw_jid!r}: {exc}"
        ) from exc
    groups: list[str] = []
    seen: set[str] = set()
    for child in el.findall(_GROUP_TAG):
        group = child.text or ""
        if not group:
            # RFC 6121 §2.3.3: a <group/> of zero length is not-acceptable.
            raise InvalidRosterQuery(
                StanzaErrorCondition.NOT_ACCEPTABLE, f"empty group name in the item for {jid}"
            )
        if group in seen:  # a set: an item with many groups costs linear time
            # RFC 6121 §2.3.3: duplicate groups are a bad-request.
            raise InvalidRosterQuery(
                StanzaErrorCondition.BAD_REQUEST, f"duplicate group {group!r} for {jid}"
            )
        groups.append(group)
        seen.add(group)
    raw_sub = el.get("subscription")
    try:
        subscription = Subscription(raw_sub) if raw_sub is not None else Subscription.NONE
    except ValueError:
        # RFC 6121 §2.1.5: the server MUST ignore any value other than "remove";
        # a client reading an unknown value treats it as the default, "none".
        subscription = Subscription.NONE
    name = el.get("name")
    return RosterItem(
        jid=jid,
        name=name or None,
        subscription=subscription,
        ask=el.get("ask") == "subscribe",
        groups=frozenset(groups),
        approved=el.get("approved") in _TRUE,
    )


def parse_roster_query(query: Element) -> tuple[str | None, list[RosterItem]]:
    """Read a roster ``<query/>``: its ``ver`` (RFC 6121 §2.6) and its items.

    Raises :class:`InvalidRosterQuery` when ``query`` is not a roster query
    (``bad-request``), an item has no ``jid`` (``bad-request``, §2.1.2.4) or
    an invalid one (``jid-malformed``), a group is empty (``not-acceptable``,
    §2.3.3) or repeated within an item (``bad-request``, §2.3.3). Children other
    than ``<item/>`` are ignored. How many items a roster set may carry is the
    caller's business (exactly one, §2.1.5).
    """
    if query.tag != QUERY_TAG:
        raise InvalidRosterQuery(
            StanzaErrorCondition.BAD_REQUEST, f"not a roster query: {query.tag!r}"
        )
    items = [_parse_item(child) for child in query.findall(_ITEM_TAG)]
    return query.get("ver"), items


def _item_element(item: RosterItem) -> Element:
    attrs = {"jid": str(item.jid), "subscription": item.subscription.value}
    if item.name is not None:
        attrs["name"] = item.name
    if item.ask:
        attrs["ask"] = "subscribe"
    if item.approved:
        # RFC 6121 §2.1.2.1: a server SHOULD show pre-approvals to the client.
        attrs["approved"] = "true"
    el = Element(_ITEM_TAG, attrs)
    for group in sorted(item.groups):
        child = Element(_GROUP_TAG)
        child.text = group
        el.append(child)
    return el


def build_roster_query(items: Iterable[RosterItem], ver: str | None = None) -> Element:
    """A roster ``<query/>`` holding ``items`` (RFC 6121 §2.1.1), with ``ver`` if given.

    Only client-visible state is written: ``subscription`` (always), ``ask``
    and ``approved`` when set, ``name`` when present, groups in sorted order.
    """
    query = Element(QUERY_TAG, {} if ver is None else {"ver": ver})
    query.extend(_item_element(item) for item in items)
    return query


def roster_push(item: RosterItem, ver: str | None, to: JID, *, id: str) -> Element:
    """A roster push (RFC 6121 §2.1.6): an iq ``set`` to the interested resource
    ``to`` with one item and the new roster version (§2.6.3).

    It has no ``from``: a push comes from the user's own account, which a
    client accepts with no ``from`` or ``from`` its bare JID (§2.1.6).
    """
    return make_iq(IqType.SET, id, build_roster_query([item], ver), to=to)
