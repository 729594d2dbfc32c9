"""vcard-temp (XEP-0054): every account's vCard, stored by the server.

Behaviour, by XEP-0054 (version 1.3.0) section:

* §3.1 Retrieving one's vCard: an IQ-get with no ``to`` (or ``to`` the
  user's own bare JID) returns the stored ``<vCard xmlns='vcard-temp'/>``.
  When none is stored the XEP allows a stanza error (SHOULD be
  ``item-not-found``) *or* an IQ-result with an empty ``<vCard/>``; this
  service returns the empty element, which every client understands and
  which does not look like a failure.
* §3.2 Updating one's vCard: an IQ-set with no ``to`` or ``to`` the own bare
  JID replaces the whole vCard (there are no partial updates). An IQ-set
  for the server's domain gets ``forbidden`` ("SHOULD be forbidden or
  not-allowed"); for another account ``service-unavailable``, the answer for
  a missing account (RFC 6121 §8.5.1), so existing accounts cannot be told
  apart.
* §3.3 Viewing another user's vCard: an IQ-get to another account's bare JID
  is answered by the server on that account's behalf (the router calls
  :meth:`VCardService.handle_iq` with that ``to``). When the account has no
  vCard the answer is ``service-unavailable``, the error the router already
  gives for a non-existent account, so the two cannot be told apart
  (§3.3: "the same error condition in both cases to help prevent directory
  harvesting attacks").
* §4 Determining support: the ``vcard-temp`` feature, for the server and for
  each account.

A get addressed to the server's own domain (``to='example.com'``) asks for the
*server's* vCard, which this server does not have: the service leaves it to
the router, which answers ``service-unavailable`` as for any entity without a
vCard (§3.3).

The vCard is stored as the bytes :func:`~xmpp_sansio.xml.writer.serialize`
writes (a self-contained element with its ``xmlns``) and parsed back with
:func:`parse_fragment`. A vCard whose serialised form is larger than
``max_size`` bytes is refused with ``not-acceptable`` (RFC 6120 §8.3.3.9: the
request "does not meet criteria defined by the recipient or server"; XEP-0054
names no condition for it).

XEP-0153 (the photo hash in presence) is not implemented.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar, Final, Protocol
from xml.etree.ElementTree import Element

from ..errors import StanzaErrorCondition
from ..jid import JID
from ..stanza import Iq, IqType, error_reply, iq_result
from ..xml.parser import parse_fragment
from ..xml.writer import serialize
from .effects import Persist, Reply, StoreOp, VCardDelete, VCardPut
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
    "VCARD",
    "MemoryVCardStorage",
    "VCardService",
    "VCardStorage",
    "parse_fragment",
]

#: The vcard-temp namespace and disco#info feature (XEP-0054 §4).
VCARD: Final = "vcard-temp"
_VCARD_TAG: Final = f"{{{VCARD}}}vCard"

DEFAULT_MAX_SIZE: Final = 65536
"""Largest serialised vCard accepted, in bytes."""


class VCardStorage(Protocol):
    """Where :class:`VCardService` keeps vCards, keyed by the account's bare JID.

    ``data`` is one serialised ``<vCard xmlns='vcard-temp'/>`` element,
    returned byte for byte. A mutating method must not return before the
    change is durable. :class:`VCardService` writes only through
    :meth:`apply` (its ``Persist`` effects).

    The contract a backend implements; ``tests/test_store_contract.py`` checks it
    for every backend.
    """

    def get(self, user: JID) -> bytes | None:
        """The stored vCard of ``user`` (a bare JID), or ``None``."""
        ...

    def put(self, user: JID, data: bytes) -> None:
        """Store (replace) the vCard of ``user``."""
        ...

    def delete(self, user: JID) -> None:
        """Forget the vCard of ``user`` (e.g. its account was removed); no-op if none."""
        ...

    def apply(self, ops: Sequence[StoreOp]) -> None:
        """Carry out ``ops`` (:class:`VCardPut`, :class:`VCardDelete`) in
        order, all or nothing."""
        ...


@dataclass(slots=True)
class MemoryVCardStorage:
    """:class:`VCardStorage` in a dict (tests, ephemeral servers)."""

    data: dict[JID, bytes] = field(default_factory=dict)

    def get(self, user: JID) -> bytes | None:
        return self.data.get(user.bare)

    def put(self, user: JID, data: bytes) -> None:
        self.data[user.bare] = bytes(data)

    def delete(self, user: JID) -> None:
        self.data.pop(user.bare, None)

    def apply(self, ops: Sequence[StoreOp]) -> None:
        data = dict(self.data)
        for op in ops:
            match op:
                case VCardPut():
                    data[op.user.bare] = bytes(op.data)
                case VCardDelete():
                    data.pop(op.user.bare, None)
                case _:
                    raise TypeError(f"not a vCard op: {op!r}")
        self.data = data


class VCardService(IqService):
    """XEP-0054 vcard-temp over a :class:`VCardStorage` (see the module docstring)."""

    server_features: ClassVar[tuple[str, ...]] = (VCARD,)
    account_features: ClassVar[tuple[str, ...]] = (VCARD,)

    def __init__(self, storage: VCardStorage, max_size: int = DEFAULT_MAX_SIZE) -> None:
        if max_size < 1:
            raise ValueError("max_size must be positive")
        self.storage = storage
        self.max_size = max_size
        # Writes returned as Persist, not yet committed: vCard (None: deleted) by account.
        self._overlay: Overlay[JID, bytes | None] = Overlay()

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

    def stored(self, user: JID) -> bytes | None:
        """``user``'s vCard as stored once the pending writes are committed."""
        return self._overlay.read(user, self.storage.get)

    def _write(self, op: VCardPut | VCardDelete, request: Element | None = None) -> Persist:
        self._overlay.write(op.user, op.data if isinstance(op, VCardPut) else None, op)
        then = () if request is None else (Reply(iq_result(request)),)
        return Persist(op, request, then)

    def handle_iq(self, ctx: Context, iq: Iq, to: JID | None) -> list[Outcome] | None:
        payload = iq.payload
        if payload is None or payload.tag != _VCARD_TAG or not iq.is_request:
            return None
        sender = iq.from_
        if sender is None:
            return None
        own = sender.bare
        # Whether the sender is a local account, the only ones with a vCard here.
        local_sender = sender.local is not None and self.server.is_local(sender.domain)
        addressed_to_server = to is None and iq.to is not None
        if iq.type is IqType.SET:
            if to is not None and to != own:
                # Another account: the answer for a missing one (RFC 6121
                # §8.5.1, RFC 6120 §8.3.3.19), not XEP-0054 §3.2's forbidden,
                # which would tell existing accounts apart.
                return self._error(iq.element, StanzaErrorCondition.SERVICE_UNAVAILABLE)
            if addressed_to_server or not local_sender:
                # XEP-0054 §3.2: only the sender's own bare JID.
                return self._error(iq.element, StanzaErrorCondition.FORBIDDEN)
            return self._set(iq.element, own, payload)
        if addressed_to_server or (to is None and not local_sender):
            return None  # no vCard of the server or of a remote sender: service-unavailable
        target = own if to is None else to.bare
        try:
            stored = self.stored(target)
            vcard = None if stored is None else parse_fragment(stored)
        except ValueError:
            return self._error(iq.element, StanzaErrorCondition.INTERNAL_SERVER_ERROR)
        if vcard is None:
            if target != own:
                # XEP-0054 §3.3: the same error as for a non-existent account.
                return self._error(iq.element, StanzaErrorCondition.SERVICE_UNAVAILABLE)
            vcard = Element(_VCARD_TAG)  # §3.1: an empty vCard
        return [Reply(iq_result(iq.element, vcard))]

    def _account_removed(self, account: JID) -> list[Outcome]:
        """Delete the vCard of a removed account (XEP-0077 §3.2)."""
        return [self._write(VCardDelete(account.bare))]

    # ------------------------------------------------------------------

    def _set(self, request: Element, own: JID, vcard: Element) -> list[Outcome]:
        try:
            data = serialize(vcard)
        except ValueError:
            return self._error(request, StanzaErrorCondition.BAD_REQUEST)
        if len(data) > self.max_size:
            return self._error(
                request,
                StanzaErrorCondition.NOT_ACCEPTABLE,
                f"the vCard is {len(data)} bytes; at most {self.max_size} are stored",
            )
        # The result goes out once the vCard is committed (not at all if that fails).
        return [self._write(VCardPut(own, data), request)]

    def _error(
        self, request: Element, condition: StanzaErrorCondition, text: str | None = None
    ) -> list[Outcome]:
        return [Reply(error_reply(request, condition, text=text))]
