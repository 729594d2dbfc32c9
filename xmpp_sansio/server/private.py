"""Private XML Storage (XEP-0049): arbitrary XML a user keeps on the server.

Behaviour, by XEP-0049 (version 1.2) section:

* §2.3 Elements: an IQ-set holds, in ``<query xmlns='jabber:iq:private'/>``,
  one or more elements each "scoped by its own namespace" ("an IQ set or
  result MAY contain multiple elements qualified by the same namespace");
  each is stored under its (namespace, local name), replacing what was
  there. An IQ-get holds exactly one such element ("a client MUST NOT query
  for more than one namespace in a single IQ get request") and the result
  holds the stored element, or the requested element, empty, when nothing
  is stored under that name (what existing servers answer, so that clients
  see "nothing stored" rather than an error).
* §2.3: "At least one child element with a proper namespace MUST be
  included; otherwise the server MUST respond with a 'Not Acceptable'
  error": a query without a child element, or with a child in no namespace
  or in ``jabber:client``, ``jabber:server`` or ``jabber:iq:private`` (which
  cannot be a fragment's "own" namespace), gets ``not-acceptable``. (The
  "Bad Format" the same section mentions for an empty get is not an RFC 6120
  stanza error condition.) Rejecting the other reserved namespaces
  (``jabber:*``, ``http://jabber.org/*``, ``vcard-temp``) is OPTIONAL in
  §2.3 and is not done, so no client that stores data there breaks. A get
  naming several elements gets ``bad-request`` (RFC 6120 §8.3.3.1).
* §2.3 and §3: data belongs to the sending account only. A get or set
  addressed to the server's domain gets ``forbidden`` ("Forbidden or Service
  Unavailable ... the former is preferable"); one addressed to another
  account gets ``service-unavailable``, the answer for a missing account
  (RFC 6121 §8.5.1), so existing accounts cannot be told apart. §4
  (Security Considerations) forbids any other entity to touch the data.

An element whose serialised form is larger than ``max_size`` bytes is
refused with ``not-acceptable`` (RFC 6120 §8.3.3.9: the request "does not
meet criteria defined by the recipient or server"), and so is a set after
which the account would keep more than ``max_items`` elements or more than
``max_total`` bytes in all (a per-account quota; replacing an element with a
smaller one frees its bytes). A set is stored in one transaction, all or
nothing. The XEP defines no
service discovery feature, so the service advertises none.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar, Final, Protocol
from xml.etree.ElementTree import Element

from ..errors import StanzaErrorCondition
from ..jid import JID
from ..stanza import Iq, IqType, error_reply, iq_result
from ..xml import ns
from ..xml.element import split_tag
from ..xml.parser import parse_fragment
from ..xml.writer import serialize
from .effects import Persist, PrivateDelete, PrivatePut, Reply, StoreOp
from .overlay import Overlay
from .service import IqService
from .stages import (
    Abandoned,
    AccountRemoved,
    Committed,
    Context,
    Event,
)

if TYPE_CHECKING:
    from .effects import Outcome

__all__ = [
    "DEFAULT_MAX_SIZE",
    "PRIVATE",
    "MemoryPrivateStorage",
    "PrivateService",
    "PrivateStorage",
]

#: The XEP-0049 namespace.
PRIVATE: Final = "jabber:iq:private"
_QUERY_TAG: Final = f"{{{PRIVATE}}}query"

DEFAULT_MAX_SIZE: Final = 65536
"""Largest serialised element stored, in bytes (per element)."""
DEFAULT_MAX_ITEMS: Final = 100
"""Most elements stored per account."""
DEFAULT_MAX_TOTAL: Final = 1 << 20
"""Most bytes stored per account, all elements together."""

#: Namespaces that cannot be a stored fragment's own namespace (§2.3).
_REFUSED_NAMESPACES: Final = frozenset({"", ns.CLIENT, ns.SERVER, PRIVATE})


class PrivateStorage(Protocol):
    """Where :class:`PrivateService` keeps private XML.

    Keyed by the account's bare JID and the stored element's namespace and
    local name; ``data`` is the element serialised, returned byte for byte.
    A mutating method must not return before the change is durable.
    :class:`PrivateService` writes only through :meth:`apply`.

    The contract a backend implements; ``tests/test_store_contract.py`` checks it
    for every backend.
    """

    def get(self, user: JID, namespace: str, local: str) -> bytes | None:
        """The element stored by ``user`` (a bare JID) under that name, or ``None``."""
        ...

    def put(self, user: JID, namespace: str, local: str, data: bytes) -> None:
        """Store (replace) the element of ``user`` under that name."""
        ...

    def put_many(self, user: JID, items: Sequence[tuple[str, str, bytes]]) -> None:
        """Store (replace) several ``(namespace, local, data)`` elements of
        ``user`` at once: all or nothing, one commit."""
        ...

    def sizes(self, user: JID) -> dict[tuple[str, str], int]:
        """The size in bytes of each element ``user`` stored, by (namespace, local name)."""
        ...

    def delete(self, user: JID) -> None:
        """Forget everything ``user`` stored (e.g. its account was removed)."""
        ...

    def apply(self, ops: Sequence[StoreOp]) -> None:
        """Carry out ``ops`` (:class:`PrivatePut`, :class:`PrivateDelete`) in
        order, all or nothing."""
        ...


@dataclass(slots=True)
class MemoryPrivateStorage:
    """:class:`PrivateStorage` in a dict (tests, ephemeral servers)."""

    data: dict[tuple[JID, str, str], bytes] = field(default_factory=dict)

    def get(self, user: JID, namespace: str, local: str) -> bytes | None:
        return self.data.get((user.bare, namespace, local))

    def put(self, user: JID, namespace: str, local: str, data: bytes) -> None:
        self.data[(user.bare, namespace, local)] = bytes(data)

    def put_many(self, user: JID, items: Sequence[tuple[str, str, bytes]]) -> None:
        for namespace, local, data in items:
            self.put(user, namespace, local, data)

    def sizes(self, user: JID) -> dict[tuple[str, str], int]:
        bare = user.bare
        return {(k[1], k[2]): len(v) for k, v in self.data.items() if k[0] == bare}

    def delete(self, user: JID) -> None:
        bare = user.bare
        for key in [key for key in self.data if key[0] == bare]:
            del self.data[key]

    def apply(self, ops: Sequence[StoreOp]) -> None:
        data = dict(self.data)
        for op in ops:
            match op:
                case PrivatePut():
                    for namespace, local, item in op.items:
                        data[(op.user.bare, namespace, local)] = bytes(item)
                case PrivateDelete():
                    data = {k: v for k, v in data.items() if k[0] != op.user.bare}
                case _:
                    raise TypeError(f"not a private XML op: {op!r}")
        self.data = data


@dataclass(frozen=True, slots=True)
class _Pending:
    """An account's private XML writes not committed yet: ``cleared``, the
    stored elements are deleted first; ``items``, by (namespace, local name)."""

    cleared: bool
    items: Mapping[tuple[str, str], bytes]


class PrivateService(IqService):
    """XEP-0049 private XML storage over a :class:`PrivateStorage`
    (see the module docstring)."""

    def __init__(
        self,
        storage: PrivateStorage,
        max_size: int = DEFAULT_MAX_SIZE,
        *,
        max_items: int = DEFAULT_MAX_ITEMS,
        max_total: int = DEFAULT_MAX_TOTAL,
    ) -> None:
        if max_size < 1 or max_items < 1 or max_total < 1:
            raise ValueError("max_size, max_items and max_total must be positive")
        self.storage = storage
        self.max_size = max_size
        self.max_items = max_items
        self.max_total = max_total
        # Writes returned as Persist, not yet committed, by account.
        self._overlay: Overlay[JID, _Pending] = Overlay()

    observes: ClassVar[tuple[type[Event], ...]] = (AccountRemoved, Committed, Abandoned)

    def observe(self, ctx: Context, event: Event) -> list[Outcome]:
        match event:
            case AccountRemoved():
                return self._account_removed(event.account)
            case Committed():
                self._overlay.settle(event.ops)
            case Abandoned():
                self._overlay.keep_only(event.pending)
        return []

    # -- reads through the pending writes -------------------------------------

    def stored(self, user: JID, namespace: str, local: str) -> bytes | None:
        """What :meth:`PrivateStorage.get` returns once the pending writes are committed."""
        pending = self._overlay.pending(user)
        if pending is not None:
            data = pending.items.get((namespace, local))
            if data is not None or pending.cleared:
                return data
        return self.storage.get(user, namespace, local)

    def _sizes(self, user: JID) -> dict[tuple[str, str], int]:
        pending = self._overlay.pending(user)
        if pending is None:
            return self.storage.sizes(user)
        sizes = {} if pending.cleared else self.storage.sizes(user)
        sizes.update((key, len(data)) for key, data in pending.items.items())
        return sizes

    def _write(self, op: PrivatePut | PrivateDelete, request: Element | None = None) -> Persist:
        before = self._overlay.pending(op.user)
        if isinstance(op, PrivateDelete):
            pending = _Pending(True, {})
        else:
            items = {} if before is None else dict(before.items)
            items.update(((namespace, local), data) for namespace, local, data in op.items)
            pending = _Pending(before is not None and before.cleared, items)
        self._overlay.write(op.user, pending, op)
        then = () if request is None else (Reply(iq_result(request)),)
        return Persist(op, request, then)

    def handle_iq(self, ctx: Context, iq: Iq, to: JID | None) -> list[Outcome] | None:
        query = iq.payload
        if query is None or query.tag != _QUERY_TAG or not iq.is_request:
            return None
        sender = iq.from_
        if (
            sender is None
            or sender.local is None
            or not self.server.is_local(sender.domain)
            or (to is None and iq.to is not None)  # the server's domain
        ):
            # XEP-0049 §2.3, §3: not the sender's own data.
            return self._error(iq.element, StanzaErrorCondition.FORBIDDEN)
        if to is not None and to != sender.bare:
            # Another account: "Service Unavailable" (§3 allows it), the answer
            # for a missing account too (RFC 6121 §8.5.1).
            return self._error(iq.element, StanzaErrorCondition.SERVICE_UNAVAILABLE)
        own = sender.bare
        children = list(query)
        if not children or any(_namespace(c) in _REFUSED_NAMESPACES for c in children):
            # §2.3: "at least one child element with a proper namespace MUST be included".
            return self._error(
                iq.element,
                StanzaErrorCondition.NOT_ACCEPTABLE,
                "the query needs a child element in its own namespace",
            )
        if iq.type is IqType.SET:
            return self._set(iq.element, own, children)
        if len(children) > 1:
            # §2.3: "a client MUST NOT query for more than one namespace".
            return self._error(
                iq.element, StanzaErrorCondition.BAD_REQUEST, "get one element at a time"
            )
        return self._get(iq.element, own, children[0])

    def _account_removed(self, account: JID) -> list[Outcome]:
        """Delete everything a removed account stored (XEP-0077 §3.2)."""
        return [self._write(PrivateDelete(account.bare))]

    # ------------------------------------------------------------------

    def _get(self, request: Element, own: JID, wanted: Element) -> list[Outcome]:
        namespace, local = split_tag(wanted.tag)
        try:
            stored = self.stored(own, namespace, local)
            found = Element(wanted.tag) if stored is None else parse_fragment(stored)
        except ValueError:
            return self._error(request, StanzaErrorCondition.INTERNAL_SERVER_ERROR)
        query = Element(_QUERY_TAG)
        query.append(found)
        return [Reply(iq_result(request, query))]

    def _set(self, request: Element, own: JID, children: list[Element]) -> list[Outcome]:
        items: list[tuple[str, str, bytes]] = []
        for child in children:
            namespace, local = split_tag(child.tag)
            try:
                data = serialize(child)
            except ValueError:
                return self._error(request, StanzaErrorCondition.BAD_REQUEST)
            if len(data) > self.max_size:
                return self._error(
                    request,
                    StanzaErrorCondition.NOT_ACCEPTABLE,
                    f"<{local} xmlns='{namespace}'/> is {len(data)} bytes;"
                    f" at most {self.max_size} are stored",
                )
            items.append((namespace, local, data))
        sizes = self._sizes(own)
        for namespace, local, data in items:
            sizes[(namespace, local)] = len(data)
        if len(sizes) > self.max_items or sum(sizes.values()) > self.max_total:
            return self._error(
                request,
                StanzaErrorCondition.NOT_ACCEPTABLE,
                f"at most {self.max_items} elements and {self.max_total} bytes are stored"
                " per account",
            )
        # Everything is checked before anything is stored, in one commit;
        # the result goes out once it is committed (not at all if that fails).
        return [self._write(PrivatePut(own, tuple(items)), request)]

    def _error(
        self, request: Element, condition: StanzaErrorCondition, text: str | None = None
    ) -> list[Outcome]:
        return [Reply(error_reply(request, condition, text=text))]


def _namespace(el: Element) -> str:
    return split_tag(el.tag)[0]
