"""Service discovery answered by the server (XEP-0030), for itself and on
behalf of its accounts, with the server's entity capabilities (XEP-0115,
XEP-0390).

The server's disco#info is truthful to what is plugged in: its features are
the union of the ``server_features`` of every service in the router (plus the
XEP-0199 ping the router itself answers), so adding a service to the router
is enough to advertise it. The same goes for ``account_features`` on an
account's bare JID.

Privacy (XEP-0030 §8): the server answers disco#info and disco#items on
behalf of an account only to requesters that may see the account's presence
(§8 rule 1.2); everybody else gets ``service-unavailable``, the answer the
router already gives for an account that does not exist (RFC 6121 §8.5.1,
XEP-0030 §8 rule 1.1), so that the reply does not reveal which accounts
exist. (§8 rule 2 asks for an *empty* disco#items result in both cases; the
router answers for missing accounts before any service sees the query, so an
empty result here would tell existing accounts apart.) By default only the
account itself (any of its resources) and the local domains are trusted; pass
``presence_authorized`` (e.g. "the account has a ``from`` or ``both``
subscription to the requester", from the roster service) to widen it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Final
from xml.etree.ElementTree import Element

from xmpp_sansio.disco import (
    CAPS_HASHES,
    DiscoInfo,
    DiscoItem,
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
from xmpp_sansio.forms import Form, FormType
from xmpp_sansio.jid import JID
from xmpp_sansio.stanza import Iq, IqType, iq_result
from xmpp_sansio.xml import ns

from .effects import Bounce, Reply
from .service import IqService
from .stages import (
    Context,
)

if TYPE_CHECKING:
    from .effects import Outcome

__all__ = ["DEFAULT_CAPS_NODE", "DiscoService"]

DEFAULT_CAPS_NODE: Final = "https://xmpp-trio.invalid/caps"
"""The XEP-0115 ``node`` naming this software (§4: a URI; no project URL yet)."""

_INFO_QUERY = f"{{{ns.DISCO_INFO}}}query"
_ITEMS_QUERY = f"{{{ns.DISCO_ITEMS}}}query"

#: Answered by the router itself (XEP-0199 §4.2 client-to-server pings; §5).
_ROUTER_FEATURES: Final = (ns.PING,)


class DiscoService(IqService):
    """Answers disco#info and disco#items (XEP-0030) sent to the server and to
    the bare JIDs of its accounts.

    * disco#info to the server: ``identities`` (default ``server/im``,
      XEP-0030 §3.1), the sorted union of every router service's
      ``server_features`` and ping, and the XEP-0128 extension ``forms``
      (e.g. XEP-0157 contact addresses). The nodes ``caps_node#ver``
      (XEP-0115 §6.2) and the XEP-0390 hash nodes (§5.5) get the same
      answer, mirroring the node (XEP-0030 §3.2).
    * disco#items to the server: ``extra_items`` (components, e.g.
      ``conference.example.org``), possibly empty (XEP-0030 §7: no items is
      an empty result, not an error).
    * disco#info to an account's bare JID: identity ``account/registered``
      (XEP-0030 §3.1) and the union of ``account_features``; disco#items: an
      empty result. Both only if the requester passes the XEP-0030 §8 check
      (see the module docstring), else ``service-unavailable``.
    * any other node: ``item-not-found`` (XEP-0030 §7); a disco ``set``:
      ``bad-request``.

    Put services that answer disco for their own nodes (ad-hoc commands,
    PEP...) *before* this one in the router's list: this service answers
    every disco query addressed to the server or a bare JID.
    """

    server_features = (ns.DISCO_INFO, ns.DISCO_ITEMS)
    account_features = (ns.DISCO_INFO, ns.DISCO_ITEMS)

    def __init__(
        self,
        *,
        identities: Sequence[Identity] = (Identity("server", "im", "xmpp-trio"),),
        extra_items: Sequence[DiscoItem] = (),
        forms: Sequence[Form] = (),
        caps_node: str = DEFAULT_CAPS_NODE,
        caps2_algos: Sequence[str] = ("sha-256",),
        presence_authorized: Callable[[JID, JID], bool] | None = None,
        account_identities: Sequence[Identity] = (),
    ) -> None:
        """``presence_authorized(requester_bare, account_bare)`` says whether the
        requester may receive the account's presence (XEP-0030 §8 rule 1.2);
        the account itself and the local domains are always allowed."""
        if not identities:
            raise ValueError("every entity MUST have at least one identity (XEP-0030 §3.1)")
        self.identities: tuple[Identity, ...] = tuple(identities)
        self.extra_items: tuple[DiscoItem, ...] = tuple(extra_items)
        self.forms: tuple[Form, ...] = tuple(forms)
        for form in self.forms:
            # XEP-0128 §2 (and XEP-0390 §4.1, which cannot hash anything else).
            if form.type is not FormType.RESULT or form.form_type is None or form.reported:
                raise ValueError("extension forms must be results with a hidden FORM_TYPE")
        self.caps_node = caps_node
        self.caps2_algos: tuple[str, ...] = tuple(caps2_algos)
        unsupported = [algo for algo in self.caps2_algos if algo not in CAPS_HASHES]
        if unsupported:
            raise ValueError(f"unsupported hash functions {unsupported}")
        self._presence_authorized = presence_authorized
        #: Identities an account's bare JID has besides ``account/registered``
        #: (``pubsub/pep`` with PEP, XEP-0163 §6).
        self.account_identities: tuple[Identity, ...] = tuple(account_identities)

    # -- what the server says about itself ---------------------------------------

    def server_info(self) -> DiscoInfo:
        """The server's disco#info (no node): truthful to the router's services."""
        features = set(_ROUTER_FEATURES) | self.server.server_features()
        return DiscoInfo(self.identities, tuple(sorted(features)), self.forms)

    def account_info(self) -> DiscoInfo:
        """What the server says on behalf of an account's bare JID (XEP-0030 §3.1)."""
        features = self.server.account_features()
        identities = (Identity("account", "registered"), *self.account_identities)
        return DiscoInfo(identities, tuple(sorted(features)))

    def caps_ver(self, hash: str = "sha-1") -> str:
        """The server's XEP-0115 §5.1 verification string, for the stream
        feature ``<c/>`` (XEP-0115 §6.3)."""
        return caps_ver(self.server_info(), hash)

    def caps_element(self, hash: str = "sha-1") -> Element:
        """The XEP-0115 §6.3 stream feature ``<c hash node ver/>`` for the server."""
        return caps_element(self.caps_node, self.caps_ver(hash), hash)

    def caps2_hashes(self) -> dict[str, str]:
        """The server's XEP-0390 hash set (algorithm -> Base64 value)."""
        return caps2_hashes(self.server_info(), self.caps2_algos)

    def caps2_element(self) -> Element:
        """The XEP-0390 §5.2 stream feature ``<c xmlns='urn:xmpp:caps'/>``."""
        return caps2_element(self.caps2_hashes())

    def _is_caps_node(self, info: DiscoInfo, node: str) -> bool:
        """Whether ``node`` names ``info`` by one of its capability hashes:
        ``caps_node#ver`` for any supported hash function (XEP-0115 §6.2) or a
        XEP-0390 hash node (§4.3)."""
        prefix = f"{self.caps_node}#"
        if node.startswith(prefix):
            ver = node[len(prefix) :]
            return any(caps_ver(info, algo) == ver for algo in CAPS_HASHES)
        hashes = caps2_hashes(info, self.caps2_algos)
        return node in {caps2_node(algo, value) for algo, value in hashes.items()}

    # -- handle ---------------------------------------------------------------------

    def handle_iq(self, ctx: Context, iq: Iq, to: JID | None) -> list[Outcome] | None:
        payload = iq.payload
        if payload is None or payload.tag not in (_INFO_QUERY, _ITEMS_QUERY):
            return None
        if not iq.is_request:
            return None
        if iq.type is IqType.SET:
            return [Bounce(iq.element, StanzaErrorCondition.BAD_REQUEST)]
        node = payload.get("node")
        if to is None:
            if payload.tag == _INFO_QUERY:
                return self._server_disco_info(iq, node)
            return self._server_disco_items(iq, node)
        if not self._may_see(iq.from_, to):
            # XEP-0030 §8: the same answer as the router's for an account that
            # does not exist, so that neither reveals which accounts exist.
            return [Bounce(iq.element, StanzaErrorCondition.SERVICE_UNAVAILABLE)]
        if node is not None:
            return [Bounce(iq.element, StanzaErrorCondition.ITEM_NOT_FOUND)]
        if payload.tag == _INFO_QUERY:
            return self._reply(iq, build_disco_info(self.account_info()))
        # No items for accounts (XEP-0030 §7: an empty result, not an error).
        return self._reply(iq, build_disco_items(DiscoItems()))

    def _reply(self, iq: Iq, payload: Element) -> list[Outcome]:
        return [Reply(iq_result(iq.element, payload))]

    def _server_disco_info(self, iq: Iq, node: str | None) -> list[Outcome]:
        info = self.server_info()
        if node is not None and not self._is_caps_node(info, node):
            return [Bounce(iq.element, StanzaErrorCondition.ITEM_NOT_FOUND)]
        return self._reply(iq, build_disco_info(info.with_node(node)))

    def _server_disco_items(self, iq: Iq, node: str | None) -> list[Outcome]:
        if node is not None:
            return [Bounce(iq.element, StanzaErrorCondition.ITEM_NOT_FOUND)]
        items = (*self.server.service_items(), *self.extra_items)
        return self._reply(iq, build_disco_items(DiscoItems(items)))

    def _may_see(self, requester: JID | None, account: JID) -> bool:
        """XEP-0030 §8 rule 1.2: may ``requester`` get disco#info for ``account``?"""
        if requester is None:
            return False
        if requester.bare == account.bare:
            return True
        if (
            requester.local is None
            and requester.resource is None
            and self.server.is_local(requester.domain)
        ):
            return True  # the server itself
        return self._presence_authorized is not None and self._presence_authorized(
            requester.bare, account.bare
        )
