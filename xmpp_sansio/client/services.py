"""The client's own services: disco and caps answers, roster pushes (sans I/O).

Theory of operation: :class:`ClientServices` is what a client answers for
itself, composed from small parts over one :class:`~.iq.IqDispatcher`:

* :class:`DiscoResponder`: disco#info and disco#items about this client
  (XEP-0030 §3.1, §4.1), for its XEP-0115 node ``node#ver`` (§6.2) and its
  XEP-0390 hash nodes (§4.3) too; its caps elements for presence;
* :func:`answer_roster_push`: a roster push accepted only from the account's
  bare JID or without ``from`` (RFC 6121 §2.1.6), applied to the
  :class:`~xmpp_sansio.client_state.RosterCache` and answered with a result;
* :func:`~.iq.answer_ping` (XEP-0199 §4), when the stream layer does not
  answer pings itself.

Feed every incoming stanza to :meth:`ClientServices.handle_iq`; send
``outcome.reply``; hand ``outcome.unhandled`` to the application (whose
default answer is :func:`~.iq.service_unavailable`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final
from xml.etree.ElementTree import Element

from xmpp_sansio.client_state import RejectedPush, RosterCache, parse_push
from xmpp_sansio.disco import (
    NS_CAPS,
    DiscoInfo,
    DiscoItems,
    Identity,
    build_disco_info,
    build_disco_items,
    caps2_element,
    caps2_hashes,
    caps2_node,
    caps_element,
    caps_ver,
)
from xmpp_sansio.errors import StanzaErrorCondition
from xmpp_sansio.jid import JID
from xmpp_sansio.stanza import Iq, IqType, error_reply, iq_result
from xmpp_sansio.xml import ns

from .iq import IqDispatcher, IqOutcome, answer_ping

__all__ = [
    "BASE_FEATURES",
    "CAPS_NODE",
    "DEFAULT_IDENTITY",
    "ClientServices",
    "DiscoResponder",
    "answer_roster_push",
]

CAPS_NODE: Final = "https://xmpp-trio.invalid/client"
"""The XEP-0115 ``node`` naming this client software (§4: a URI)."""
DEFAULT_IDENTITY: Final = Identity("client", "pc", "xmpp-trio")
"""The client's disco identity (XEP-0030 §3.1, registry category ``client``)."""
BASE_FEATURES: Final = (ns.DISCO_INFO, ns.DISCO_ITEMS, NS_CAPS, ns.PING)
"""What every client of this library handles: disco, caps and ping."""

_DISCO_ITEMS: Final = f"{{{ns.DISCO_ITEMS}}}query"
_DISCO_QUERIES: Final = frozenset({f"{{{ns.DISCO_INFO}}}query", _DISCO_ITEMS})
_ROSTER_QUERY: Final = f"{{{ns.ROSTER}}}query"


class DiscoResponder:
    """Disco answers about this client and its entity capabilities.

    Args:
        identity: the client's identity (XEP-0030 §3.1).
        features: what it handles on top of :data:`BASE_FEATURES`.
        caps_node: the XEP-0115 ``node`` of the software (§4).
    """

    def __init__(
        self,
        identity: Identity = DEFAULT_IDENTITY,
        features: Iterable[str] = (),
        caps_node: str = CAPS_NODE,
    ) -> None:
        self.info = DiscoInfo((identity,), tuple(sorted(set(BASE_FEATURES).union(features))))
        """What this client answers to disco#info (XEP-0030 §3.1)."""
        self.caps_node = caps_node
        self.ver = caps_ver(self.info)
        """The XEP-0115 §5.1 verification string of :attr:`info`."""
        self.hashes = caps2_hashes(self.info)
        """The XEP-0390 §4.1 hash set of :attr:`info` (sha-256)."""
        self._nodes = frozenset(
            {f"{caps_node}#{self.ver}"}
            | {caps2_node(algo, value) for algo, value in self.hashes.items()}
        )

    def caps_element(self) -> Element:
        """The XEP-0115 ``<c/>`` for presence (§4)."""
        return caps_element(self.caps_node, self.ver)

    def caps2_element(self) -> Element:
        """The XEP-0390 ``<c xmlns='urn:xmpp:caps'/>`` for presence (§5.4)."""
        return caps2_element(self.hashes)

    def answer(self, iq: Iq) -> IqOutcome:
        """Answer a disco#info or disco#items request about this client.

        The caps nodes get the same info (XEP-0115 §6.2, XEP-0390 §4.3),
        other nodes ``item-not-found`` (XEP-0030 §7); the client has no
        items; a ``set`` is a ``bad-request``.
        """
        payload = iq.payload
        assert payload is not None
        if payload.tag not in _DISCO_QUERIES:
            return IqOutcome(unhandled=iq)
        if iq.type is IqType.SET:
            return IqOutcome(reply=error_reply(iq.element, StanzaErrorCondition.BAD_REQUEST))
        node = payload.get("node")
        if payload.tag == _DISCO_ITEMS:
            if node is not None:
                return IqOutcome(reply=error_reply(iq.element, StanzaErrorCondition.ITEM_NOT_FOUND))
            return IqOutcome(reply=iq_result(iq.element, build_disco_items(DiscoItems())))
        if node is not None and node not in self._nodes:
            return IqOutcome(reply=error_reply(iq.element, StanzaErrorCondition.ITEM_NOT_FOUND))
        return IqOutcome(reply=iq_result(iq.element, build_disco_info(self.info.with_node(node))))


def answer_roster_push(iq: Iq, own_jid: JID, roster: RosterCache) -> IqOutcome:
    """A roster push (RFC 6121 §2.1.6): applied to ``roster`` and answered with
    a result if it comes from the account (bare JID, or no ``from``) and holds
    one valid item; else refused with the error :func:`parse_push` names
    (``service-unavailable`` for a spoofed sender) and not applied."""
    assert iq.payload is not None
    if iq.type is not IqType.SET or iq.payload.tag != _ROSTER_QUERY:
        return IqOutcome(unhandled=iq)  # not a push: a roster get is for servers
    try:
        push = parse_push(iq.element, own_jid)
    except RejectedPush as exc:
        return IqOutcome(reply=error_reply(iq.element, exc.condition))
    roster.apply(push)
    return IqOutcome(reply=iq_result(iq.element), pushed=push.item)


class ClientServices:
    """The iq requests a client answers itself: roster pushes, disco and caps
    (and pings with ``ping=True``); everything else is ``unhandled``.

    Args:
        jid: the client's JID (full or bare); pushes must come from its bare JID.
        roster: the roster cache pushes are applied to.
        disco: the client's disco answers.
        ping: answer XEP-0199 pings here (the stream layer may do it instead).
    """

    def __init__(
        self,
        jid: JID,
        roster: RosterCache,
        disco: DiscoResponder | None = None,
        *,
        ping: bool = False,
    ) -> None:
        self.jid = jid
        self.roster = roster
        self.disco = disco if disco is not None else DiscoResponder()
        self.dispatcher = IqDispatcher(
            {
                ns.ROSTER: lambda iq: answer_roster_push(iq, self.jid, self.roster),
                ns.DISCO_INFO: self.disco.answer,
                ns.DISCO_ITEMS: self.disco.answer,
            }
        )
        if ping:
            self.dispatcher.register(ns.PING, answer_ping)

    def handle_iq(self, element: Element) -> IqOutcome:
        """Handle an incoming stanza (see :meth:`IqDispatcher.handle`)."""
        return self.dispatcher.handle(element)
