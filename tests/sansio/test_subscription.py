"""Tests for xmpp_sansio.subscription: the RFC 6121 Appendix A state machine.

The expected rows below are copied by hand from RFC 6121 Appendix A.2 and
A.3 (existing state, route/deliver, new state), not derived from the module.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from xmpp_sansio.jid import JID
from xmpp_sansio.roster import RosterItem, Subscription
from xmpp_sansio.stanza import PresenceType
from xmpp_sansio.subscription import (
    PRE_APPROVABLE,
    TRANSITIONS,
    SubInput,
    SubState,
    state_of,
    step,
    with_state,
)

YES, NO = True, False

# (existing state, ROUTE?/DELIVER?, new state), in the RFC's own words.
RFC_TABLES: dict[SubInput, list[tuple[str, bool, str]]] = {
    # A.2.1 Subscribe (outbound)
    SubInput.OUT_SUBSCRIBE: [
        ("None", YES, "None + Pending Out"),
        ("None + Pending Out", YES, "None + Pending Out"),
        ("None + Pending In", YES, "None + Pending Out+In"),
        ("None + Pending Out+In", YES, "None + Pending Out+In"),
        ("To", YES, "To"),
        ("To + Pending In", YES, "To + Pending In"),
        ("From", YES, "From + Pending Out"),
        ("From + Pending Out", YES, "From + Pending Out"),
        ("Both", YES, "Both"),
    ],
    # A.2.2 Unsubscribe (outbound)
    SubInput.OUT_UNSUBSCRIBE: [
        ("None", YES, "None"),
        ("None + Pending Out", YES, "None"),
        ("None + Pending In", YES, "None + Pending In"),
        ("None + Pending Out+In", YES, "None + Pending In"),
        ("To", YES, "None"),
        ("To + Pending In", YES, "None + Pending In"),
        ("From", YES, "From"),
        ("From + Pending Out", YES, "From"),
        ("Both", YES, "From"),
    ],
    # A.2.3 Subscribed (outbound)
    SubInput.OUT_SUBSCRIBED: [
        ("None", NO, "None"),
        ("None + Pending Out", NO, "None + Pending Out"),
        ("None + Pending In", YES, "From"),
        ("None + Pending Out+In", YES, "From + Pending Out"),
        ("To", NO, "To"),
        ("To + Pending In", YES, "Both"),
        ("From", NO, "From"),
        ("From + Pending Out", NO, "From + Pending Out"),
        ("Both", NO, "Both"),
    ],
    # A.2.4 Unsubscribed (outbound)
    SubInput.OUT_UNSUBSCRIBED: [
        ("None", NO, "None"),
        ("None + Pending Out", NO, "None + Pending Out"),
        ("None + Pending In", YES, "None"),
        ("None + Pending Out+In", YES, "None + Pending Out"),
        ("To", NO, "To"),
        ("To + Pending In", YES, "To"),
        ("From", YES, "None"),
        ("From + Pending Out", YES, "None + Pending Out"),
        ("Both", YES, "To"),
    ],
    # A.3.1 Subscribe (inbound)
    SubInput.IN_SUBSCRIBE: [
        ("None", YES, "None + Pending In"),
        ("None + Pending Out", YES, "None + Pending Out+In"),
        ("None + Pending In", NO, "None + Pending In"),
        ("None + Pending Out+In", NO, "None + Pending Out+In"),
        ("To", YES, "To + Pending In"),
        ("To + Pending In", NO, "To + Pending In"),
        ("From", NO, "From"),
        ("From + Pending Out", NO, "From + Pending Out"),
        ("Both", NO, "Both"),
    ],
    # A.3.2 Unsubscribe (inbound)
    SubInput.IN_UNSUBSCRIBE: [
        ("None", NO, "None"),
        ("None + Pending Out", NO, "None + Pending Out"),
        ("None + Pending In", YES, "None"),
        ("None + Pending Out+In", YES, "None + Pending Out"),
        ("To", NO, "To"),
        ("To + Pending In", YES, "To"),
        ("From", YES, "None"),
        ("From + Pending Out", YES, "None + Pending Out"),
        ("Both", YES, "To"),
    ],
    # A.3.3 Subscribed (inbound)
    SubInput.IN_SUBSCRIBED: [
        ("None", NO, "None"),
        ("None + Pending Out", YES, "To"),
        ("None + Pending In", NO, "None + Pending In"),
        ("None + Pending Out+In", YES, "To + Pending In"),
        ("To", NO, "To"),
        ("To + Pending In", NO, "To + Pending In"),
        ("From", NO, "From"),
        ("From + Pending Out", YES, "Both"),
        ("Both", NO, "Both"),
    ],
    # A.3.4 Unsubscribed (inbound)
    SubInput.IN_UNSUBSCRIBED: [
        ("None", NO, "None"),
        ("None + Pending Out", YES, "None"),
        ("None + Pending In", NO, "None + Pending In"),
        ("None + Pending Out+In", YES, "None + Pending In"),
        ("To", YES, "None"),
        ("To + Pending In", YES, "None + Pending In"),
        ("From", NO, "From"),
        ("From + Pending Out", YES, "From"),
        ("Both", YES, "From"),
    ],
}

# A.3.1's footnote: in these states the server SHOULD auto-reply "subscribed".
AUTO_SUBSCRIBED = {"From", "From + Pending Out", "Both"}

ROWS = [
    pytest.param(event, old, forward, new, id=f"{event.name}-{old}")
    for event, rows in RFC_TABLES.items()
    for old, forward, new in rows
]


@pytest.mark.parametrize(("event", "old", "forward", "new"), ROWS)
def test_table_row_matches_rfc_6121_appendix_a(
    event: SubInput, old: str, forward: bool, new: str
) -> None:
    row = TRANSITIONS[SubState(old), event]
    assert row.new_state is SubState(new)
    assert row.forward is forward
    assert (row.route if event.outbound else row.deliver) is forward
    expected_reply = (
        PresenceType.SUBSCRIBED
        if event is SubInput.IN_SUBSCRIBE and old in AUTO_SUBSCRIBED
        else None
    )
    assert row.auto_reply is expected_reply


def test_table_has_exactly_the_72_rows_of_the_rfc() -> None:
    assert len(TRANSITIONS) == 72 == len(ROWS)
    assert set(TRANSITIONS) == {(s, i) for s in SubState for i in SubInput}


@pytest.mark.parametrize(("event", "old", "forward", "new"), ROWS)
def test_step_without_pre_approval_follows_the_table_except_pre_approving_rows(
    event: SubInput, old: str, forward: bool, new: str
) -> None:
    result = step(SubState(old), False, event)
    if event is SubInput.OUT_SUBSCRIBED and old in {"None", "None + Pending Out", "To"}:
        # RFC 6121 §3.4.2: a "subscribed" with no request pending pre-approves.
        assert (result.state, result.approved, result.forward) == (SubState(old), True, False)
        return
    assert (result.state, result.approved, result.forward) == (SubState(new), False, forward)


# ---------------------------------------------------------------------------
# pre-approval (RFC 6121 §3.4)


@pytest.mark.parametrize("old", ["None", "None + Pending Out", "To"])
def test_outbound_subscribed_without_pending_request_records_pre_approval(old: str) -> None:
    result = step(SubState(old), False, SubInput.OUT_SUBSCRIBED)
    assert result.state is SubState(old)
    assert result.approved is True
    assert result.forward is False


@pytest.mark.parametrize("old", ["From", "From + Pending Out", "Both"])
def test_outbound_subscribed_when_contact_already_subscribed_is_ignored(old: str) -> None:
    result = step(SubState(old), False, SubInput.OUT_SUBSCRIBED)
    assert (result.state, result.approved, result.forward) == (SubState(old), False, False)


@pytest.mark.parametrize(
    ("old", "new"),
    [("None", "From"), ("None + Pending Out", "From + Pending Out"), ("To", "Both")],
)
def test_inbound_subscribe_when_pre_approved_is_answered_not_delivered(old: str, new: str) -> None:
    result = step(SubState(old), True, SubInput.IN_SUBSCRIBE)
    assert result.state is SubState(new)
    assert result.approved is False
    assert result.forward is False
    assert result.auto_reply is PresenceType.SUBSCRIBED


@pytest.mark.parametrize("old", ["None", "None + Pending Out", "To"])
def test_outbound_unsubscribed_cancels_pre_approval_without_routing(old: str) -> None:
    result = step(SubState(old), True, SubInput.OUT_UNSUBSCRIBED)
    assert (result.state, result.approved, result.forward) == (SubState(old), False, False)


def test_pre_approval_survives_own_subscription_request_and_its_approval() -> None:
    result = step(SubState.NONE, True, SubInput.OUT_SUBSCRIBE)
    assert (result.state, result.approved) == (SubState.NONE_PENDING_OUT, True)
    result = step(result.state, result.approved, SubInput.IN_SUBSCRIBED)
    assert (result.state, result.approved) == (SubState.TO, True)


def test_pre_approval_is_kept_when_the_contact_cancels_our_subscription() -> None:
    result = step(SubState.TO, True, SubInput.IN_UNSUBSCRIBED)
    assert (result.state, result.approved) == (SubState.NONE, True)


# ---------------------------------------------------------------------------
# states, inputs and roster items


@pytest.mark.parametrize(
    ("state", "subscription", "ask", "pending_in"),
    [
        ("None", "none", False, False),
        ("None + Pending Out", "none", True, False),
        ("None + Pending In", "none", False, True),
        ("None + Pending Out+In", "none", True, True),
        ("To", "to", False, False),
        ("To + Pending In", "to", False, True),
        ("From", "from", False, False),
        ("From + Pending Out", "from", True, False),
        ("Both", "both", False, False),
    ],
)
def test_state_flags_match_appendix_a_1(
    state: str, subscription: str, ask: bool, pending_in: bool
) -> None:
    s = SubState(state)
    assert (s.subscription, s.pending_out, s.pending_in) == (
        Subscription(subscription),
        ask,
        pending_in,
    )
    assert SubState.of(Subscription(subscription), ask, pending_in) is s
    item = RosterItem(JID.parse("romeo@example.net"), subscription=Subscription(subscription))
    item = RosterItem(item.jid, subscription=item.subscription, ask=ask)
    assert state_of(item, pending_in) is s
    assert with_state(RosterItem(item.jid, "Romeo"), s, False) == RosterItem(
        item.jid, "Romeo", Subscription(subscription), ask
    )


def test_impossible_flags_are_ignored() -> None:
    assert SubState.of(Subscription.BOTH, True, True) is SubState.BOTH
    assert SubState.of(Subscription.TO, True, True) is SubState.TO_PENDING_IN
    assert SubState.of(Subscription.FROM, True, True) is SubState.FROM_PENDING_OUT
    assert SubState.of(Subscription.REMOVE, False, False) is SubState.NONE


def test_no_roster_item_is_state_none() -> None:
    assert state_of(None) is SubState.NONE
    assert state_of(None, True) is SubState.NONE_PENDING_IN


def test_inputs_map_to_presence_types() -> None:
    for event in SubInput:
        assert SubInput.of(event.presence_type, outbound=event.outbound) is event
    assert SubInput.of(PresenceType.SUBSCRIBE, outbound=False) is SubInput.IN_SUBSCRIBE
    with pytest.raises(ValueError):
        SubInput.of(PresenceType.PROBE, outbound=True)


# ---------------------------------------------------------------------------
# properties

inputs = st.lists(st.tuples(st.sampled_from(list(SubInput)), st.booleans()), max_size=40)


@given(st.sampled_from(list(SubState)), inputs)
def test_any_input_sequence_only_visits_defined_states(
    start: SubState, events: list[tuple[SubInput, bool]]
) -> None:
    state, approved = start, False
    for event, _ in events:
        result = step(state, approved, event)
        assert result.state in SubState
        # a pre-approval only ever accompanies the three states of §3.4.2
        assert not result.approved or result.state in PRE_APPROVABLE
        state, approved = result.state, result.approved


def _deliver(
    states: dict[str, tuple[SubState, bool]], sender: str, event: SubInput
) -> list[tuple[str, SubInput]]:
    """Process ``event`` at ``sender``'s server; return what reaches the other side."""
    other = "contact" if sender == "user" else "user"
    state, approved = states[sender]
    result = step(state, approved, event)
    states[sender] = (result.state, result.approved)
    out: list[tuple[str, SubInput]] = []
    if result.forward and event.outbound:
        out.append((other, SubInput.of(event.presence_type, outbound=False)))
    if result.auto_reply is not None:
        out.append((other, SubInput.of(result.auto_reply, outbound=False)))
    return out


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["user", "contact"]),
            st.sampled_from([i for i in SubInput if i.outbound]),
        ),
        max_size=30,
    )
)
def test_two_servers_that_lose_nothing_stay_in_sync(actions: list[tuple[str, SubInput]]) -> None:
    """Whatever the two parties send, each side's view of the two
    subscriptions matches the other's once every stanza is processed."""
    states = {"user": (SubState.NONE, False), "contact": (SubState.NONE, False)}
    for who, event in actions:
        queue = _deliver(states, who, event)
        while queue:
            receiver, inbound = queue.pop(0)
            sender = "contact" if receiver == "user" else "user"
            state, approved = states[receiver]
            result = step(state, approved, inbound)
            states[receiver] = (result.state, result.approved)
            if result.auto_reply is not None:
                queue.append((sender, SubInput.of(result.auto_reply, outbound=False)))
        user, contact = states["user"][0], states["contact"][0]
        for a, b in ((user, contact), (contact, user)):
            assert (a.subscription in (Subscription.TO, Subscription.BOTH)) == (
                b.subscription in (Subscription.FROM, Subscription.BOTH)
            )
            assert a.pending_out == b.pending_in
