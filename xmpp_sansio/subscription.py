"""The presence subscription state machine of RFC 6121 Appendix A, as a table.

Theory
------
Between a user and one contact there are two independent presence
subscriptions: the user's to the contact's presence ("to") and the contact's
to the user's ("from"). Each is either granted, requested and not yet
answered ("pending"), or absent. Seen from the user's server, RFC 6121
Appendix A.1 reduces the combinations to nine defined states:
:class:`SubState`. "Pending Out" (the user asked the contact) is shown to
clients as ``ask='subscribe'``; "Pending In" (the contact asked the user) is
server-side only, and the server has to remember the request to redeliver it
(RFC 6121 §3.1.3).

The state changes on the four subscription presence types, which the user's
server sees in two directions (:class:`SubInput`): *outbound*, sent by the
user to the contact (Appendix A.2), and *inbound*, sent by the contact to the
user (Appendix A.3). For each (state, input) pair the RFC gives the new state
and whether the stanza goes on: routed to the contact (A.2, "ROUTE?") or
delivered to the user (A.3, "DELIVER?"). :data:`TRANSITIONS` is exactly those
eight tables, 72 rows, including the "no state change" ones.

The table is the only source of truth here, in the style of h11's
``_state.py``: the code that applies it (:func:`step`) adds nothing but the
pre-approval flag of RFC 6121 §3.4, which lives alongside the state rather
than in it:

* an outbound ``subscribed`` in a state with no pending inbound request and
  no "from" subscription ("None", "None + Pending Out", "To") sets
  ``approved`` instead of being routed (§3.4.2, A.2.3 "MUST NOT route");
* an outbound ``unsubscribed`` in those states cancels a pre-approval
  (§3.2.2, §3.4; A.2.4 "MUST NOT route");
* an inbound ``subscribe`` while ``approved`` is answered by the server with
  ``subscribed``, not delivered, and grants the subscription: "None" becomes
  "From", "None + Pending Out" becomes "From + Pending Out", "To" becomes
  "Both" (§3.4.2, §3.1.3), clearing the flag.

So ``approved`` only ever accompanies "None", "None + Pending Out" and "To"
(:data:`PRE_APPROVABLE`).

The RFC's prose in §3.3.3 and §3.2.3 delivers inbound ``unsubscribe`` /
``unsubscribed`` in fewer states than the tables do (a known ambiguity,
XMPP Standards list, 2020-05, "RFC 6121 ambiguous stanza processing rules");
this module follows the tables, which are normative too.

Source: RFC 6121 Appendix A.2.1-A.2.4 (outbound) and A.3.1-A.3.4 (inbound);
§3.1.3 for the "SHOULD auto-reply" footnote of A.3.1; §3.4 for pre-approval.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from types import MappingProxyType
from typing import Final

from xmpp_sansio.roster import RosterItem, Subscription
from xmpp_sansio.stanza import PresenceType

__all__ = [
    "PRE_APPROVABLE",
    "TRANSITIONS",
    "Step",
    "SubInput",
    "SubState",
    "Transition",
    "state_of",
    "step",
    "with_state",
]


class SubState(Enum):
    """The nine defined subscription states of RFC 6121 Appendix A.1; the value
    is the RFC's name for the state."""

    NONE = "None"
    NONE_PENDING_OUT = "None + Pending Out"
    NONE_PENDING_IN = "None + Pending In"
    NONE_PENDING_OUT_IN = "None + Pending Out+In"
    TO = "To"
    TO_PENDING_IN = "To + Pending In"
    FROM = "From"
    FROM_PENDING_OUT = "From + Pending Out"
    BOTH = "Both"

    @property
    def subscription(self) -> Subscription:
        """The roster ``subscription`` attribute for this state (A.1)."""
        return _FLAGS[self][0]

    @property
    def pending_out(self) -> bool:
        """Whether the user's request awaits the contact: ``ask='subscribe'`` (A.1)."""
        return _FLAGS[self][1]

    @property
    def pending_in(self) -> bool:
        """Whether the contact's request awaits the user (server-side only, A.1)."""
        return _FLAGS[self][2]

    @classmethod
    def of(cls, subscription: Subscription, pending_out: bool, pending_in: bool) -> SubState:
        """The state with these flags. A flag that cannot go with
        ``subscription`` (pending out with "to"/"both", pending in with
        "from"/"both": that subscription already exists) is ignored;
        ``remove`` counts as ``none``."""
        if subscription is Subscription.REMOVE:
            subscription = Subscription.NONE
        if subscription in (Subscription.TO, Subscription.BOTH):
            pending_out = False
        if subscription in (Subscription.FROM, Subscription.BOTH):
            pending_in = False
        return _BY_FLAGS[subscription, pending_out, pending_in]


_S = SubState
_FLAGS: Final[dict[SubState, tuple[Subscription, bool, bool]]] = {
    _S.NONE: (Subscription.NONE, False, False),
    _S.NONE_PENDING_OUT: (Subscription.NONE, True, False),
    _S.NONE_PENDING_IN: (Subscription.NONE, False, True),
    _S.NONE_PENDING_OUT_IN: (Subscription.NONE, True, True),
    _S.TO: (Subscription.TO, False, False),
    _S.TO_PENDING_IN: (Subscription.TO, False, True),
    _S.FROM: (Subscription.FROM, False, False),
    _S.FROM_PENDING_OUT: (Subscription.FROM, True, False),
    _S.BOTH: (Subscription.BOTH, False, False),
}
_BY_FLAGS: Final = {flags: state for state, flags in _FLAGS.items()}

#: The states in which a pre-approval can be recorded and kept (RFC 6121 §3.4.2).
PRE_APPROVABLE: Final = frozenset({_S.NONE, _S.NONE_PENDING_OUT, _S.TO})


class SubInput(Enum):
    """A subscription stanza as the user's server sees it: ``OUT_*`` the user
    sent to the contact (RFC 6121 Appendix A.2), ``IN_*`` the contact sent to
    the user (Appendix A.3)."""

    OUT_SUBSCRIBE = "outbound subscribe"
    OUT_SUBSCRIBED = "outbound subscribed"
    OUT_UNSUBSCRIBE = "outbound unsubscribe"
    OUT_UNSUBSCRIBED = "outbound unsubscribed"
    IN_SUBSCRIBE = "inbound subscribe"
    IN_SUBSCRIBED = "inbound subscribed"
    IN_UNSUBSCRIBE = "inbound unsubscribe"
    IN_UNSUBSCRIBED = "inbound unsubscribed"

    @property
    def outbound(self) -> bool:
        """True for what the user sends (A.2)."""
        return self.name.startswith("OUT_")

    @property
    def presence_type(self) -> PresenceType:
        """The presence ``type`` of the stanza."""
        return PresenceType(self.value.partition(" ")[2])

    @classmethod
    def of(cls, type_: PresenceType, *, outbound: bool) -> SubInput:
        """The input for a subscription presence ``type_``; ValueError for any
        other presence type."""
        if not type_.is_subscription:
            raise ValueError(f"not a subscription presence type: {type_}")
        return cls(f"{'outbound' if outbound else 'inbound'} {type_.value}")


@dataclass(frozen=True, slots=True)
class Transition:
    """One row of an Appendix A table.

    ``forward`` is the "ROUTE?" column for outbound input (route the stanza to
    the contact) and the "DELIVER?" column for inbound input (deliver it to
    the user). ``auto_reply`` is the stanza the user's server answers the
    contact with on its own (A.3.1's footnote: "SHOULD auto-reply with
    'subscribed'").
    """

    new_state: SubState
    forward: bool
    auto_reply: PresenceType | None = None

    @property
    def route(self) -> bool:
        """Alias of :attr:`forward` for outbound rows."""
        return self.forward

    @property
    def deliver(self) -> bool:
        """Alias of :attr:`forward` for inbound rows."""
        return self.forward


_I = SubInput
_T = Transition
_SUBSCRIBED = PresenceType.SUBSCRIBED

#: RFC 6121 Appendix A, all eight tables: (state, input) -> row.
TRANSITIONS: Final[Mapping[tuple[SubState, SubInput], Transition]] = MappingProxyType(
    {
        # A.2.1 Subscribe (outbound): always routed, for resynchronisation.
        (_S.NONE, _I.OUT_SUBSCRIBE): _T(_S.NONE_PENDING_OUT, True),
        (_S.NONE_PENDING_OUT, _I.OUT_SUBSCRIBE): _T(_S.NONE_PENDING_OUT, True),
        (_S.NONE_PENDING_IN, _I.OUT_SUBSCRIBE): _T(_S.NONE_PENDING_OUT_IN, True),
        (_S.NONE_PENDING_OUT_IN, _I.OUT_SUBSCRIBE): _T(_S.NONE_PENDING_OUT_IN, True),
        (_S.TO, _I.OUT_SUBSCRIBE): _T(_S.TO, True),
        (_S.TO_PENDING_IN, _I.OUT_SUBSCRIBE): _T(_S.TO_PENDING_IN, True),
        (_S.FROM, _I.OUT_SUBSCRIBE): _T(_S.FROM_PENDING_OUT, True),
        (_S.FROM_PENDING_OUT, _I.OUT_SUBSCRIBE): _T(_S.FROM_PENDING_OUT, True),
        (_S.BOTH, _I.OUT_SUBSCRIBE): _T(_S.BOTH, True),
        # A.2.2 Unsubscribe (outbound): always routed.
        (_S.NONE, _I.OUT_UNSUBSCRIBE): _T(_S.NONE, True),
        (_S.NONE_PENDING_OUT, _I.OUT_UNSUBSCRIBE): _T(_S.NONE, True),
        (_S.NONE_PENDING_IN, _I.OUT_UNSUBSCRIBE): _T(_S.NONE_PENDING_IN, True),
        (_S.NONE_PENDING_OUT_IN, _I.OUT_UNSUBSCRIBE): _T(_S.NONE_PENDING_IN, True),
        (_S.TO, _I.OUT_UNSUBSCRIBE): _T(_S.NONE, True),
        (_S.TO_PENDING_IN, _I.OUT_UNSUBSCRIBE): _T(_S.NONE_PENDING_IN, True),
        (_S.FROM, _I.OUT_UNSUBSCRIBE): _T(_S.FROM, True),
        (_S.FROM_PENDING_OUT, _I.OUT_UNSUBSCRIBE): _T(_S.FROM, True),
        (_S.BOTH, _I.OUT_UNSUBSCRIBE): _T(_S.FROM, True),
        # A.2.3 Subscribed (outbound): routed only when it answers a pending request.
        (_S.NONE, _I.OUT_SUBSCRIBED): _T(_S.NONE, False),
        (_S.NONE_PENDING_OUT, _I.OUT_SUBSCRIBED): _T(_S.NONE_PENDING_OUT, False),
        (_S.NONE_PENDING_IN, _I.OUT_SUBSCRIBED): _T(_S.FROM, True),
        (_S.NONE_PENDING_OUT_IN, _I.OUT_SUBSCRIBED): _T(_S.FROM_PENDING_OUT, True),
        (_S.TO, _I.OUT_SUBSCRIBED): _T(_S.TO, False),
        (_S.TO_PENDING_IN, _I.OUT_SUBSCRIBED): _T(_S.BOTH, True),
        (_S.FROM, _I.OUT_SUBSCRIBED): _T(_S.FROM, False),
        (_S.FROM_PENDING_OUT, _I.OUT_SUBSCRIBED): _T(_S.FROM_PENDING_OUT, False),
        (_S.BOTH, _I.OUT_SUBSCRIBED): _T(_S.BOTH, False),
        # A.2.4 Unsubscribed (outbound): routed when it denies or cancels something.
        (_S.NONE, _I.OUT_UNSUBSCRIBED): _T(_S.NONE, False),
        (_S.NONE_PENDING_OUT, _I.OUT_UNSUBSCRIBED): _T(_S.NONE_PENDING_OUT, False),
        (_S.NONE_PENDING_IN, _I.OUT_UNSUBSCRIBED): _T(_S.NONE, True),
        (_S.NONE_PENDING_OUT_IN, _I.OUT_UNSUBSCRIBED): _T(_S.NONE_PENDING_OUT, True),
        (_S.TO, _I.OUT_UNSUBSCRIBED): _T(_S.TO, False),
        (_S.TO_PENDING_IN, _I.OUT_UNSUBSCRIBED): _T(_S.TO, True),
        (_S.FROM, _I.OUT_UNSUBSCRIBED): _T(_S.NONE, True),
        (_S.FROM_PENDING_OUT, _I.OUT_UNSUBSCRIBED): _T(_S.NONE_PENDING_OUT, True),
        (_S.BOTH, _I.OUT_UNSUBSCRIBED): _T(_S.TO, True),
        # A.3.1 Subscribe (inbound); "*": the server SHOULD auto-reply "subscribed".
        (_S.NONE, _I.IN_SUBSCRIBE): _T(_S.NONE_PENDING_IN, True),
        (_S.NONE_PENDING_OUT, _I.IN_SUBSCRIBE): _T(_S.NONE_PENDING_OUT_IN, True),
        (_S.NONE_PENDING_IN, _I.IN_SUBSCRIBE): _T(_S.NONE_PENDING_IN, False),
        (_S.NONE_PENDING_OUT_IN, _I.IN_SUBSCRIBE): _T(_S.NONE_PENDING_OUT_IN, False),
        (_S.TO, _I.IN_SUBSCRIBE): _T(_S.TO_PENDING_IN, True),
        (_S.TO_PENDING_IN, _I.IN_SUBSCRIBE): _T(_S.TO_PENDING_IN, False),
        (_S.FROM, _I.IN_SUBSCRIBE): _T(_S.FROM, False, _SUBSCRIBED),
        (_S.FROM_PENDING_OUT, _I.IN_SUBSCRIBE): _T(_S.FROM_PENDING_OUT, False, _SUBSCRIBED),
        (_S.BOTH, _I.IN_SUBSCRIBE): _T(_S.BOTH, False, _SUBSCRIBED),
        # A.3.2 Unsubscribe (inbound).
        (_S.NONE, _I.IN_UNSUBSCRIBE): _T(_S.NONE, False),
        (_S.NONE_PENDING_OUT, _I.IN_UNSUBSCRIBE): _T(_S.NONE_PENDING_OUT, False),
        (_S.NONE_PENDING_IN, _I.IN_UNSUBSCRIBE): _T(_S.NONE, True),
        (_S.NONE_PENDING_OUT_IN, _I.IN_UNSUBSCRIBE): _T(_S.NONE_PENDING_OUT, True),
        (_S.TO, _I.IN_UNSUBSCRIBE): _T(_S.TO, False),
        (_S.TO_PENDING_IN, _I.IN_UNSUBSCRIBE): _T(_S.TO, True),
        (_S.FROM, _I.IN_UNSUBSCRIBE): _T(_S.NONE, True),
        (_S.FROM_PENDING_OUT, _I.IN_UNSUBSCRIBE): _T(_S.NONE_PENDING_OUT, True),
        (_S.BOTH, _I.IN_UNSUBSCRIBE): _T(_S.TO, True),
        # A.3.3 Subscribed (inbound): delivered only when it answers the user's request.
        (_S.NONE, _I.IN_SUBSCRIBED): _T(_S.NONE, False),
        (_S.NONE_PENDING_OUT, _I.IN_SUBSCRIBED): _T(_S.TO, True),
        (_S.NONE_PENDING_IN, _I.IN_SUBSCRIBED): _T(_S.NONE_PENDING_IN, False),
        (_S.NONE_PENDING_OUT_IN, _I.IN_SUBSCRIBED): _T(_S.TO_PENDING_IN, True),
        (_S.TO, _I.IN_SUBSCRIBED): _T(_S.TO, False),
        (_S.TO_PENDING_IN, _I.IN_SUBSCRIBED): _T(_S.TO_PENDING_IN, False),
        (_S.FROM, _I.IN_SUBSCRIBED): _T(_S.FROM, False),
        (_S.FROM_PENDING_OUT, _I.IN_SUBSCRIBED): _T(_S.BOTH, True),
        (_S.BOTH, _I.IN_SUBSCRIBED): _T(_S.BOTH, False),
        # A.3.4 Unsubscribed (inbound).
        (_S.NONE, _I.IN_UNSUBSCRIBED): _T(_S.NONE, False),
        (_S.NONE_PENDING_OUT, _I.IN_UNSUBSCRIBED): _T(_S.NONE, True),
        (_S.NONE_PENDING_IN, _I.IN_UNSUBSCRIBED): _T(_S.NONE_PENDING_IN, False),
        (_S.NONE_PENDING_OUT_IN, _I.IN_UNSUBSCRIBED): _T(_S.NONE_PENDING_IN, True),
        (_S.TO, _I.IN_UNSUBSCRIBED): _T(_S.NONE, True),
        (_S.TO_PENDING_IN, _I.IN_UNSUBSCRIBED): _T(_S.NONE_PENDING_IN, True),
        (_S.FROM, _I.IN_UNSUBSCRIBED): _T(_S.FROM, False),
        (_S.FROM_PENDING_OUT, _I.IN_UNSUBSCRIBED): _T(_S.FROM, True),
        (_S.BOTH, _I.IN_UNSUBSCRIBED): _T(_S.FROM, True),
    }
)

_GRANT_ON_PRE_APPROVAL: Final = {
    _S.NONE: _S.FROM,
    _S.NONE_PENDING_OUT: _S.FROM_PENDING_OUT,
    _S.TO: _S.BOTH,
}


@dataclass(frozen=True, slots=True)
class Step:
    """The outcome of one input: the new state and pre-approval flag, and what
    to do with the stanza (see :class:`Transition`)."""

    state: SubState
    approved: bool
    forward: bool
    auto_reply: PresenceType | None = None


def step(state: SubState, approved: bool, event: SubInput) -> Step:
    """Apply ``event`` to ``(state, approved)``: the :data:`TRANSITIONS` row,
    with the pre-approval rules of RFC 6121 §3.4 (see the module docstring)."""
    if state in PRE_APPROVABLE:
        if event is SubInput.OUT_SUBSCRIBED:
            # §3.4.2: record the pre-approval; MUST NOT route the stanza.
            return Step(state, True, False)
        if event is SubInput.OUT_UNSUBSCRIBED and approved:
            # §3.2.2 / §3.4: cancel the pre-approval; nothing is routed.
            return Step(state, False, False)
        if event is SubInput.IN_SUBSCRIBE and approved:
            # §3.4.2: approve automatically instead of delivering the request.
            return Step(_GRANT_ON_PRE_APPROVAL[state], False, False, PresenceType.SUBSCRIBED)
    row = TRANSITIONS[state, event]
    return Step(
        row.new_state,
        approved and row.new_state in PRE_APPROVABLE,
        row.forward,
        row.auto_reply,
    )


def state_of(item: RosterItem | None, pending_in: bool = False) -> SubState:
    """The state of a roster item plus the server-side "Pending In" flag; no
    item is "None" (or "None + Pending In")."""
    if item is None:
        return SubState.of(Subscription.NONE, False, pending_in)
    return SubState.of(item.subscription, item.ask, pending_in)


def with_state(item: RosterItem, state: SubState, approved: bool) -> RosterItem:
    """``item`` with the client-visible part of ``state`` (``subscription``,
    ``ask``) and ``approved`` (RFC 6121 Appendix A.1, §2.1.2)."""
    return dataclasses.replace(
        item, subscription=state.subscription, ask=state.pending_out, approved=approved
    )
