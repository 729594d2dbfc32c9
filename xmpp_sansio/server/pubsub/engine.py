"""The node engine: every XEP-0060 use case on the nodes of one service,
sans-IO (XEP-0060 §6-§8).

:meth:`PubSubEngine.handle` takes a pubsub iq (``pubsub`` or
``pubsub#owner`` payload) for a *service* (the pubsub host's domain, or an
account's bare JID for PEP) and returns an :class:`Answer`: the result
payload, the store operations to commit (``Persist`` effects) and the
notifications to send (:class:`NodeEvent`, whose recipients the caller
chooses: subscribers at the pubsub host, subscribers and contacts with
``+notify`` for PEP). A refused request raises
:class:`~.protocol.PubSubError`, which the caller answers with
:func:`~.protocol.error_element`.

The engine reads a service's nodes from storage once (:meth:`nodes`) and
keeps them as the working copy; :meth:`forget` drops a service's copy (a
failed commit: the next request reads storage again). ``now`` and the
entropy for item ids, instant node names and SubIDs come from the
:class:`~xmpp_sansio.server.stages.Context`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final
from xml.etree.ElementTree import Element, SubElement

from ...errors import StanzaErrorCondition
from ...forms import Form, FormError, FormType, build_form, parse_form
from ...jid import JID, InvalidJID
from ...stanza import Iq, IqType
from .access import Affiliation, Relations, check_access, check_publish
from .config import (
    AccessModel,
    NodeConfig,
    SendLast,
    apply_form,
    check_preconditions,
    config_form,
    preconditioned,
)
from .node import Item, Node, Subscription, SubState, node_from_stored, payload_bytes
from .paging import page
from .protocol import (
    NS_OWNER,
    NS_PUBSUB,
    NS_RSM,
    PubSubError,
    configuration_event,
    delete_event,
    items_event,
    purge_event,
    retract_event,
    subscription_event,
    unsupported,
)
from .store import (
    PubSubAffiliationSave,
    PubSubItemDelete,
    PubSubItemSave,
    PubSubNodeDelete,
    PubSubNodeSave,
    PubSubOp,
    PubSubPurge,
    PubSubStorage,
    PubSubSubscriptionSave,
)

if TYPE_CHECKING:
    from ..stages import Context

__all__ = ["Answer", "NodeEvent", "PubSubEngine", "PubSubLimits"]

_P: Final = f"{{{NS_PUBSUB}}}"
_O: Final = f"{{{NS_OWNER}}}"
_X_DATA: Final = "{jabber:x:data}x"
_BAD = StanzaErrorCondition.BAD_REQUEST
_NOT_FOUND = StanzaErrorCondition.ITEM_NOT_FOUND
_FORBIDDEN = StanzaErrorCondition.FORBIDDEN


@dataclass(frozen=True, slots=True)
class PubSubLimits:
    """The engine's limits (each configurable, see docs/pubsub.md):
    ``max_item_size`` bytes of one serialised payload (``payload-too-big``),
    ``max_items`` per node (also what ``max_items=max`` means),
    ``max_nodes`` per service (``max-nodes-exceeded``), ``max_subscriptions``
    per node (``resource-constraint``), ``max_page`` items per retrieval."""

    max_item_size: int = 64 * 1024
    max_items: int = 256
    max_nodes: int = 128
    max_subscriptions: int = 1000
    max_page: int = 256

    def __post_init__(self) -> None:
        if min(self.max_item_size, self.max_items, self.max_nodes, self.max_subscriptions) < 1:
            raise ValueError("pubsub limits must be positive")
        if self.max_page < 1:
            raise ValueError("pubsub limits must be positive")


@dataclass(slots=True)
class NodeEvent:
    """A notification about ``node``: the ``<event/>`` element ``event``.
    ``to``: for that one JID only (the last item on subscribe, a
    subscription approved); else for the node's subscribers (and, for PEP,
    the contacts with ``+notify``). ``item``: the item it carries, if any (its
    stamp goes in a ``<delay/>`` for a last item)."""

    node: Node
    event: Element
    to: JID | None = None
    item: Item | None = None
    owners: bool = False


@dataclass(slots=True)
class Answer:
    """What a request did: the iq result's payload (``None``: an empty
    result), the store operations and the notifications."""

    payload: Element | None = None
    ops: list[PubSubOp] = field(default_factory=list)
    events: list[NodeEvent] = field(default_factory=list)


def _hex(ctx: Context, n: int = 8) -> str:
    return ctx.rng(n).hex()


def _form_in(parent: Element | None) -> Form | None:
    if parent is None:
        return None
    x = parent.find(_X_DATA)
    if x is None:
        return None
    try:
        return parse_form(x)
    except FormError as exc:
        raise PubSubError(_BAD, text=str(exc)) from None


def _jid_attr(el: Element, name: str = "jid") -> JID | None:
    raw = el.get(name)
    if raw is None:
        return None
    try:
        return JID.parse(raw)
    except InvalidJID:
        raise PubSubError(StanzaErrorCondition.JID_MALFORMED) from None


class PubSubEngine:
    """Nodes, items, affiliations and subscriptions of many services.

    ``pep``: services are accounts (XEP-0163): the account (``owner`` in
    :meth:`handle`) owns every node, only it creates, publishes and
    configures; a publish to a missing node creates it. ``defaults`` is the
    configuration of a new node (before its create or publish options);
    ``may_create(requester)`` whether a JID may create nodes at a
    non-PEP service."""

    def __init__(
        self,
        storage: PubSubStorage,
        relations: Relations,
        *,
        limits: PubSubLimits | None = None,
        defaults: NodeConfig | None = None,
        pep: bool = False,
    ) -> None:
        self.storage = storage
        self.relations = relations
        self.limits = limits or PubSubLimits()
        self.defaults = defaults or NodeConfig()
        self.pep = pep
        self._services: dict[str, dict[str, Node]] = {}

    # -- the working copy ---------------------------------------------------------

    def nodes(self, service: str) -> dict[str, Node]:
        """The nodes of ``service`` (read from storage on first use)."""
        found = self._services.get(service)
        if found is None:
            found = {
                stored.name: node_from_stored(stored, self.defaults)
                for stored in self.storage.load(service)
            }
            self._services[service] = found
        return found

    def forget(self, service: str | None = None) -> None:
        """Drop the working copy of ``service`` (all: ``None``)."""
        if service is None:
            self._services.clear()
        else:
            self._services.pop(service, None)

    def _node(self, service: str, name: str | None) -> Node:
        if not name:
            raise PubSubError(_BAD, "nodeid-required")
        node = self.nodes(service).get(name)
        if node is None:
            raise PubSubError(_NOT_FOUND)
        return node

    def _affiliation(self, node: Node, who: JID, owner: JID | None) -> Affiliation:
        if owner is not None and who.bare == owner:
            return Affiliation.OWNER
        return node.affiliation(who)

    def _owners(self, node: Node, owner: JID | None) -> list[JID]:
        return [owner] if owner is not None else node.owners

    # -- dispatch ---------------------------------------------------------------------

    def handle(
        self, ctx: Context, service: str, owner: JID | None, iq: Iq, *, may_create: bool = True
    ) -> Answer:
        """Carry out the pubsub request ``iq`` at ``service``; ``owner`` is the
        PEP account (``None`` at the pubsub host). ``may_create``: the
        requester may create nodes here."""
        payload = iq.payload
        requester = iq.from_
        if payload is None or requester is None or not iq.is_request:
            raise PubSubError(_BAD)
        children = list(payload)
        if not children:
            raise PubSubError(_BAD)
        action = children[0]
        get = iq.type is IqType.GET
        if payload.tag == _P + "pubsub":
            return self._pubsub(ctx, service, owner, requester, payload, action, get, may_create)
        if payload.tag == _O + "pubsub":
            return self._owner(ctx, service, owner, requester, action, get)
        raise PubSubError(StanzaErrorCondition.SERVICE_UNAVAILABLE)

    def _pubsub(
        self,
        ctx: Context,
        service: str,
        owner: JID | None,
        requester: JID,
        payload: Element,
        action: Element,
        get: bool,
        may_create: bool,
    ) -> Answer:
        tag = action.tag
        if get:
            if tag == _P + "items":
                return self._items(
                    service, owner, requester, action, payload.find(f"{{{NS_RSM}}}set")
                )
            if tag == _P + "subscriptions":
                return self._own_subscriptions(service, requester, action.get("node"))
            if tag == _P + "affiliations":
                return self._own_affiliations(service, owner, requester, action.get("node"))
            if tag in (_P + "options", _P + "default"):
                raise unsupported("subscription-options")
            raise PubSubError(_BAD)
        if tag == _P + "publish":
            options = payload.find(_P + "publish-options")
            return self._publish(
                ctx, service, owner, requester, action, _form_in(options), may_create
            )
        if tag == _P + "create":
            form = _form_in(payload.find(_P + "configure"))
            return self._create(
                ctx, service, owner, requester, action.get("node"), form, may_create
            )
        if tag == _P + "retract":
            return self._retract(service, owner, requester, action)
        if tag == _P + "subscribe":
            _form_in(payload.find(_P + "options"))  # checked, then ignored (docs/pubsub.md)
            return self._subscribe(ctx, service, owner, requester, action)
        if tag == _P + "unsubscribe":
            return self._unsubscribe(service, owner, requester, action)
        if tag == _P + "options":
            raise unsupported("subscription-options")
        raise PubSubError(_BAD)

    def _owner(
        self,
        ctx: Context,
        service: str,
        owner: JID | None,
        requester: JID,
        action: Element,
        get: bool,
    ) -> Answer:
        tag = action.tag
        if tag == _O + "default":
            if not get:
                raise PubSubError(_BAD)
            container = Element(_O + "pubsub")
            default = SubElement(container, _O + "default")
            default.append(build_form(self._form(self.defaults)))
            return Answer(container)
        node = self._node(service, action.get("node"))
        if self._affiliation(node, requester, owner) is not Affiliation.OWNER:
            raise PubSubError(_FORBIDDEN)
        if tag == _O + "configure":
            return self._configure(service, owner, node, action, get)
        if tag == _O + "subscriptions":
            return self._subscriptions(ctx, service, owner, node, action, get)
        if tag == _O + "affiliations":
            return self._affiliations(service, owner, node, action, get)
        if get:
            raise PubSubError(_BAD)
        if tag == _O + "delete":
            return self._delete(service, node, action)
        if tag == _O + "purge":
            return self._purge(service, node)
        raise PubSubError(_BAD)

    # -- owner: create, configure, delete, purge (XEP-0060 §8.1-§8.5) --------------

    def _form(self, config: NodeConfig) -> Form:
        return config_form(config, max_items_limit=self.limits.max_items)

    def new_node(
        self,
        ctx: Context,
        service: str,
        owner: JID | None,
        requester: JID,
        name: str,
        config: NodeConfig,
        answer: Answer,
    ) -> Node:
        """Create ``name`` at ``service`` with ``config``, its store operation
        in ``answer``; ``requester`` owns it unless the service has an
        ``owner`` (PEP). Raises ``max-nodes-exceeded`` at the limit."""
        nodes = self.nodes(service)
        if len(nodes) >= self.limits.max_nodes:
            raise PubSubError(StanzaErrorCondition.NOT_ALLOWED, "max-nodes-exceeded")
        node = Node(name, config)
        nodes[name] = node
        answer.ops.append(PubSubNodeSave(service, name, config.pairs()))
        if owner is None:
            node.affiliations[requester.bare] = Affiliation.OWNER
            answer.ops.append(
                PubSubAffiliationSave(service, name, str(requester.bare), Affiliation.OWNER.value)
            )
        return node

    def _may_create(self, owner: JID | None, requester: JID, may_create: bool) -> None:
        if (owner is not None and requester.bare != owner) or not may_create:
            raise PubSubError(_FORBIDDEN)

    def _create(
        self,
        ctx: Context,
        service: str,
        owner: JID | None,
        requester: JID,
        name: str | None,
        form: Form | None,
        may_create: bool,
    ) -> Answer:
        self._may_create(owner, requester, may_create)
        instant = not name
        if not name:
            name = _hex(ctx)
        if name in self.nodes(service):
            raise PubSubError(StanzaErrorCondition.CONFLICT)
        config = self.defaults
        if form is not None and form.type is not FormType.CANCEL:
            config = apply_form(config, form, max_items_limit=self.limits.max_items)
        answer = Answer()
        self.new_node(ctx, service, owner, requester, name, config, answer)
        if instant:
            container = Element(_P + "pubsub")
            SubElement(container, _P + "create", {"node": name})
            answer.payload = container
        return answer

    def _configure(
        self, service: str, owner: JID | None, node: Node, action: Element, get: bool
    ) -> Answer:
        if get:
            container = Element(_O + "pubsub")
            configure = SubElement(container, _O + "configure", {"node": node.name})
            configure.append(build_form(self._form(node.config)))
            return Answer(container)
        form = _form_in(action)
        if form is None:
            raise PubSubError(_BAD)
        if form.type is FormType.CANCEL:
            return Answer()
        config = apply_form(node.config, form, max_items_limit=self.limits.max_items)
        answer = Answer(ops=[PubSubNodeSave(service, node.name, config.pairs())])
        node.config = config
        self.trim(service, node, answer)
        if config.notify_config:
            form_el = build_form(self._form(config)) if config.deliver_payloads else None
            answer.events.append(NodeEvent(node, configuration_event(node.name, form_el)))
        return answer

    def _delete(self, service: str, node: Node, action: Element) -> Answer:
        redirect = action.find(_O + "redirect")
        uri = None if redirect is None else redirect.get("uri")
        del self.nodes(service)[node.name]
        answer = Answer(ops=[PubSubNodeDelete(service, node.name)])
        if node.config.notify_delete:
            answer.events.append(NodeEvent(node, delete_event(node.name, uri)))
        return answer

    def _purge(self, service: str, node: Node) -> Answer:
        node.items.clear()
        answer = Answer(ops=[PubSubPurge(service, node.name)])
        if node.config.notify_retract:
            answer.events.append(NodeEvent(node, purge_event(node.name)))
        return answer

    # -- owner: subscriptions and affiliations (XEP-0060 §8.8, §8.9) -----------------

    def _subscriptions(
        self,
        ctx: Context,
        service: str,
        owner: JID | None,
        node: Node,
        action: Element,
        get: bool,
    ) -> Answer:
        if get:
            container = Element(_O + "pubsub")
            listing = SubElement(container, _O + "subscriptions", {"node": node.name})
            for sub in node.subscriptions.values():
                SubElement(
                    listing,
                    _O + "subscription",
                    {
                        "jid": str(sub.jid),
                        "subscription": sub.state.value,
                        "subid": sub.subid,
                    },
                )
            return Answer(container)
        answer = Answer()
        for entry in action.findall(_O + "subscription"):
            jid = _jid_attr(entry)
            try:
                state = SubState(entry.get("subscription", ""))
            except ValueError:
                raise PubSubError(_BAD) from None
            if jid is None:
                raise PubSubError(_BAD, "jid-required")
            self._set_subscription(ctx, service, node, jid, state, answer)
        return answer

    def _set_subscription(
        self, ctx: Context, service: str, node: Node, jid: JID, state: SubState, answer: Answer
    ) -> None:
        existing = node.subscriptions.get(jid)
        if state is SubState.NONE:
            if existing is not None:
                del node.subscriptions[jid]
                answer.ops.append(
                    PubSubSubscriptionSave(service, node.name, str(jid), existing.subid, "none")
                )
                answer.events.append(
                    NodeEvent(
                        node,
                        subscription_event(node.name, str(jid), "none", existing.subid),
                        to=jid,
                    )
                )
            return
        if existing is None:
            existing = self._add_subscription(ctx, service, node, jid, state, answer)
            approved = False
        else:
            approved = existing.state is SubState.PENDING and state is SubState.SUBSCRIBED
            existing.state = state
            answer.ops.append(
                PubSubSubscriptionSave(service, node.name, str(jid), existing.subid, state.value)
            )
        if approved:
            # XEP-0060 §8.6.2: the subscriber learns its subscription was approved.
            answer.events.append(
                NodeEvent(
                    node,
                    subscription_event(node.name, str(jid), state.value, existing.subid),
                    to=jid,
                )
            )
            self._last_item_to(node, jid, answer)

    def _add_subscription(
        self, ctx: Context, service: str, node: Node, jid: JID, state: SubState, answer: Answer
    ) -> Subscription:
        """A new subscription of ``jid`` with a fresh SubID (XEP-0060 §6.1.6),
        within ``max_subscriptions`` (else ``resource-constraint``)."""
        if len(node.subscriptions) >= self.limits.max_subscriptions:
            raise PubSubError(StanzaErrorCondition.RESOURCE_CONSTRAINT)
        sub = node.subscriptions[jid] = Subscription(jid, _hex(ctx), state)
        answer.ops.append(
            PubSubSubscriptionSave(service, node.name, str(jid), sub.subid, state.value)
        )
        return sub

    def _affiliations(
        self, service: str, owner: JID | None, node: Node, action: Element, get: bool
    ) -> Answer:
        if get:
            container = Element(_O + "pubsub")
            listing = SubElement(container, _O + "affiliations", {"node": node.name})
            entries = dict(node.affiliations)
            if owner is not None:
                entries[owner] = Affiliation.OWNER
            for member, aff in entries.items():
                SubElement(
                    listing, _O + "affiliation", {"jid": str(member), "affiliation": aff.value}
                )
            return Answer(container)
        changes: dict[JID, Affiliation] = {}
        for entry in action.findall(_O + "affiliation"):
            jid = _jid_attr(entry)
            if jid is None:
                raise PubSubError(_BAD, "jid-required")
            try:
                changes[jid.bare] = Affiliation(entry.get("affiliation", ""))
            except ValueError:
                raise PubSubError(_BAD) from None
        after = {**node.affiliations, **changes}
        if owner is not None:
            if changes.get(owner, Affiliation.OWNER) is not Affiliation.OWNER:
                raise PubSubError(StanzaErrorCondition.NOT_ACCEPTABLE)
        elif not any(a is Affiliation.OWNER for a in after.values()):
            # XEP-0060 §8.9.2.4: a node keeps at least one owner.
            raise PubSubError(StanzaErrorCondition.NOT_ACCEPTABLE)
        answer = Answer()
        for jid, aff in changes.items():
            if owner is not None and jid == owner:
                continue
            if aff is Affiliation.NONE:
                node.affiliations.pop(jid, None)
            else:
                node.affiliations[jid] = aff
            answer.ops.append(PubSubAffiliationSave(service, node.name, str(jid), aff.value))
            if aff is Affiliation.OUTCAST:
                for sub_jid in [j for j in node.subscriptions if j.bare == jid]:
                    self._set_subscription_none(service, node, sub_jid, answer)
        return answer

    def _set_subscription_none(self, service: str, node: Node, jid: JID, answer: Answer) -> None:
        sub = node.subscriptions.pop(jid)
        answer.ops.append(PubSubSubscriptionSave(service, node.name, str(jid), sub.subid, "none"))

    # -- publisher: publish and retract (XEP-0060 §7) ------------------------------------

    def _publish(
        self,
        ctx: Context,
        service: str,
        owner: JID | None,
        requester: JID,
        action: Element,
        options: Form | None,
        may_create: bool,
    ) -> Answer:
        name = action.get("node")
        if not name:
            raise PubSubError(_BAD, "nodeid-required")
        items = action.findall(_P + "item")
        if len(items) > 1 or len(items) != len(action):
            raise PubSubError(_BAD, "invalid-payload")
        answer = Answer()
        node = self.nodes(service).get(name)
        if node is None:
            # XEP-0060 §7.1.4 auto-create; §7.1.5: with the preconditions as options.
            self._may_create(owner, requester, may_create)
            config = self.defaults
            if options is not None:
                config = preconditioned(config, options, max_items_limit=self.limits.max_items)
            node = self.new_node(ctx, service, owner, requester, name, config, answer)
        else:
            affiliation = self._affiliation(node, requester, owner)
            check_publish(node.config, affiliation, subscribed=node.subscribed(requester))
            if options is not None:
                check_preconditions(node.config, options, max_items_limit=self.limits.max_items)
        config = node.config
        persistent = config.persist_items or config.deliver_payloads
        if not items:
            # XEP-0060 §7.1.3.6: every node here keeps or delivers items.
            raise PubSubError(_BAD, "item-required")
        item_el = items[0]
        payloads = list(item_el)
        if len(payloads) > 1:
            raise PubSubError(_BAD, "invalid-payload")
        payload = payloads[0] if payloads else None
        if payload is None and persistent:
            raise PubSubError(_BAD, "payload-required")
        if payload is not None and len(payload_bytes(payload)) > self.limits.max_item_size:
            raise PubSubError(StanzaErrorCondition.NOT_ACCEPTABLE, "payload-too-big")
        item_id = item_el.get("id") or _hex(ctx)
        item = Item(item_id, payload, str(requester.bare), ctx.now, node.next_seq())
        if config.persist_items:
            node.items.pop(item_id, None)
            node.items[item_id] = item
            answer.ops.append(PubSubItemSave(service, name, item.stored()))
            self.trim(service, node, answer)
        else:
            # Not persisted: only the last item is kept, in memory (send_last_published_item).
            node.items.clear()
            node.items[item_id] = item
        if config.deliver_notifications:
            delivered = payload if config.deliver_payloads else None
            publisher = item.publisher if config.itemreply == "publisher" else None
            event = items_event(name, [(item_id, delivered, publisher)])
            answer.events.append(NodeEvent(node, event, item=item))
        container = Element(_P + "pubsub")
        published = SubElement(container, _P + "publish", {"node": name})
        SubElement(published, _P + "item", {"id": item_id})
        answer.payload = container
        return answer

    def trim(self, service: str, node: Node, answer: Answer) -> None:
        """Drop the oldest items beyond the node's ``max_items``."""
        limit = node.config.max_items or self.limits.max_items
        limit = min(limit, self.limits.max_items)
        while len(node.items) > limit:
            oldest = next(iter(node.items))
            del node.items[oldest]
            answer.ops.append(PubSubItemDelete(service, node.name, oldest))

    def _retract(self, service: str, owner: JID | None, requester: JID, action: Element) -> Answer:
        node = self._node(service, action.get("node"))
        ids = [el.get("id") for el in action.findall(_P + "item")]
        if not ids or any(not i for i in ids):
            raise PubSubError(_BAD, "item-required")
        affiliation = self._affiliation(node, requester, owner)
        answer = Answer()
        retracted: list[str] = []
        for item_id in ids:
            assert item_id is not None
            item = node.items.get(item_id)
            if item is None:
                raise PubSubError(_NOT_FOUND)
            if affiliation not in (Affiliation.OWNER, Affiliation.PUBLISHER) and (
                item.publisher != str(requester.bare)
            ):
                raise PubSubError(_FORBIDDEN)
            retracted.append(item_id)
        for item_id in retracted:
            del node.items[item_id]
            answer.ops.append(PubSubItemDelete(service, node.name, item_id))
        notify = action.get("notify") in ("1", "true")
        if notify or node.config.notify_retract:
            answer.events.append(NodeEvent(node, retract_event(node.name, retracted)))
        return answer

    # -- subscriber: subscribe, unsubscribe, retrieve (XEP-0060 §6) ------------------------

    def _subscribe(
        self, ctx: Context, service: str, owner: JID | None, requester: JID, action: Element
    ) -> Answer:
        node = self._node(service, action.get("node"))
        jid = _jid_attr(action)
        if jid is None:
            raise PubSubError(_BAD, "jid-required")
        if jid.bare != requester.bare:
            raise PubSubError(_BAD, "invalid-jid")
        affiliation = self._affiliation(node, requester, owner)
        existing = node.subscriptions.get(jid)
        answer = Answer()
        if existing is None:
            authorize = node.config.access_model is AccessModel.AUTHORIZE
            if not authorize or affiliation is Affiliation.OUTCAST:
                check_access(
                    node.config,
                    requester.bare,
                    self._owners(node, owner),
                    affiliation,
                    self.relations,
                    subscribed=False,
                )
            pending = authorize and affiliation not in (
                Affiliation.OWNER,
                Affiliation.PUBLISHER,
                Affiliation.MEMBER,
            )
            state = SubState.PENDING if pending else SubState.SUBSCRIBED
            existing = self._add_subscription(ctx, service, node, jid, state, answer)
            if pending:
                # XEP-0060 §8.6: the owners are asked to approve.
                answer.events.append(
                    NodeEvent(
                        node,
                        subscription_event(node.name, str(jid), "pending", existing.subid),
                        owners=True,
                    )
                )
            else:
                self._last_item_to(node, jid, answer)
        container = Element(_P + "pubsub")
        SubElement(
            container,
            _P + "subscription",
            {
                "node": node.name,
                "jid": str(jid),
                "subid": existing.subid,
                "subscription": existing.state.value,
            },
        )
        answer.payload = container
        return answer

    def _last_item_to(self, node: Node, jid: JID, answer: Answer) -> None:
        """XEP-0060 §6.1.7: the last item goes to a new subscriber."""
        last = node.last_item()
        if last is None or node.config.send_last_published_item is SendLast.NEVER:
            return
        payload = last.payload if node.config.deliver_payloads else None
        answer.events.append(
            NodeEvent(node, items_event(node.name, [(last.id, payload, None)]), to=jid, item=last)
        )

    def _unsubscribe(
        self, service: str, owner: JID | None, requester: JID, action: Element
    ) -> Answer:
        node = self._node(service, action.get("node"))
        jid = _jid_attr(action)
        if jid is None:
            raise PubSubError(_BAD, "jid-required")
        if jid.bare != requester.bare and self._affiliation(node, requester, owner) is not (
            Affiliation.OWNER
        ):
            raise PubSubError(_FORBIDDEN)
        sub = node.subscriptions.get(jid)
        if sub is None:
            raise PubSubError(StanzaErrorCondition.UNEXPECTED_REQUEST, "not-subscribed")
        subid = action.get("subid")
        if subid is not None and subid != sub.subid:
            raise PubSubError(StanzaErrorCondition.NOT_ACCEPTABLE, "invalid-subid")
        answer = Answer()
        self._set_subscription_none(service, node, jid, answer)
        return answer

    def _items(
        self,
        service: str,
        owner: JID | None,
        requester: JID,
        action: Element,
        rsm: Element | None,
    ) -> Answer:
        node = self._node(service, action.get("node"))
        affiliation = self._affiliation(node, requester, owner)
        check_access(
            node.config,
            requester.bare,
            self._owners(node, owner),
            affiliation,
            self.relations,
            subscribed=node.subscribed(requester),
        )
        wanted = [el.get("id") for el in action.findall(_P + "item")]
        items = list(node.items.values())
        set_el: Element | None = None
        if wanted:
            items = [node.items[i] for i in wanted if i is not None and i in node.items]
        else:
            raw_max = action.get("max_items")
            if raw_max is not None:
                try:
                    count = int(raw_max)
                except ValueError:
                    raise PubSubError(_BAD) from None
                if count < 1:
                    raise PubSubError(_BAD)
                items = items[-count:]
            if rsm is not None:
                items, set_el = page(items, rsm, self.limits.max_page)
            items = items[-self.limits.max_page :]
        container = Element(_P + "pubsub")
        listing = SubElement(container, _P + "items", {"node": node.name})
        for item in items:
            item_el = SubElement(listing, _P + "item", {"id": item.id})
            if item.payload is not None:
                item_el.append(item.payload)
        if set_el is not None:
            container.append(set_el)
        return Answer(container)

    def _own_subscriptions(self, service: str, requester: JID, name: str | None) -> Answer:
        container = Element(_P + "pubsub")
        listing = SubElement(container, _P + "subscriptions")
        nodes = self.nodes(service)
        if name:
            nodes = {name: self._node(service, name)}
            listing.set("node", name)
        for node in nodes.values():
            for sub in node.subscriptions.values():
                if sub.jid.bare == requester.bare:
                    SubElement(
                        listing,
                        _P + "subscription",
                        {
                            "node": node.name,
                            "jid": str(sub.jid),
                            "subid": sub.subid,
                            "subscription": sub.state.value,
                        },
                    )
        return Answer(container)

    def _own_affiliations(
        self, service: str, owner: JID | None, requester: JID, name: str | None
    ) -> Answer:
        container = Element(_P + "pubsub")
        listing = SubElement(container, _P + "affiliations")
        nodes = self.nodes(service)
        if name:
            nodes = {name: self._node(service, name)}
            listing.set("node", name)
        for node in nodes.values():
            aff = self._affiliation(node, requester, owner)
            if aff is not Affiliation.NONE:
                SubElement(
                    listing, _P + "affiliation", {"node": node.name, "affiliation": aff.value}
                )
        return Answer(container)
