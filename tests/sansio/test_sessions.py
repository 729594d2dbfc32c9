"""The session lifecycle, sans-IO (xmpp_sansio.server.sessions): XEP-0198
detachment, resumption and expiry, XEP-0352 presence held while detached,
XEP-0199 idle pings, and ending an account's sessions, with a fake clock (``now``
is an argument) and client/server connections wired back to back."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from xmpp_sansio.errors import StreamErrorCondition
from xmpp_sansio.jid import JID
from xmpp_sansio.server import Deliver, Disconnect, Router
from xmpp_sansio.server.sessions import (
    CloseStream,
    Reroute,
    Resumed,
    SessionEffect,
    SessionManager,
    serialized_size,
)
from xmpp_sansio.sm import SMState
from xmpp_sansio.stream.config import ClientConfig, ServerConfig
from xmpp_sansio.stream.connection import ClientConnection, ServerConnection
from xmpp_sansio.stream.events import (
    ResourceBound,
    ResumeRequested,
    StanzaReceived,
    StreamManagementEnabled,
)
from xmpp_sansio.testing import ConnectionPair, make_credentials, seeded_rng

DOMAIN = "capulet.example"
PASSWORDS = {"juliet": "r0m30myr0m30", "nurse": "n0rs3"}
LOOKUP = make_credentials(PASSWORDS)
ROMEO = 100  # a session of another account, for routing
IDLE = 60.0
RESUME = 300.0
C = "{jabber:client}"


def message(body: str, to: str = f"juliet@{DOMAIN}/balcony", **attrs: str) -> ET.Element:
    msg = ET.Element(f"{C}message", {"type": "chat", "to": to, **attrs})
    ET.SubElement(msg, f"{C}body").text = body
    return msg


def bodies(elements: Sequence[ET.Element]) -> list[str]:
    return [e.findtext(f"{C}body") or "" for e in elements if e.tag == f"{C}message"]


@dataclass
class World:
    """A router, a session manager, a fake clock and connected client streams."""

    router: Router
    manager: SessionManager
    now: float = 0.0
    pairs: dict[int, ConnectionPair] = field(default_factory=dict)
    effects: list[SessionEffect] = field(default_factory=list)

    def carry_out(self, effects: Sequence[SessionEffect]) -> None:
        """The I/O layer's part: deliver to live streams, keep the rest; a
        stream closed by an effect loses its transport once the effects are
        carried out (unless another connection took its session over)."""
        closing: list[tuple[int, ConnectionPair]] = []
        self._carry_out(effects, closing)
        for session, pair in closing:
            if self.pairs.get(session) is pair:
                self.lose(session)

    def _carry_out(
        self, effects: Sequence[SessionEffect], closing: list[tuple[int, ConnectionPair]]
    ) -> None:
        for effect in effects:
            self.effects.append(effect)
            if isinstance(effect, Deliver) and effect.session in self.pairs:
                self.pairs[effect.session].server.send(effect.element)
            elif isinstance(effect, (Deliver, Disconnect)) and effect.session not in self.pairs:
                self._carry_out(self.manager.undeliverable(effect), closing)
            elif isinstance(effect, Resumed):
                self.pairs[effect.session] = self.pairs.pop(effect.transport)
            elif isinstance(effect, (CloseStream, Disconnect)):
                pair = self.pairs[effect.session]
                text = effect.text if isinstance(effect, CloseStream) else None
                pair.server.close(effect.condition, text)
                closing.append((effect.session, pair))

    def connect(
        self, session: int, resource: str = "balcony", sm_state: SMState | None = None
    ) -> ConnectionPair:
        """Open a stream as juliet/``resource`` (or resume ``sm_state``)."""
        client = ClientConnection(
            ClientConfig(
                rng=seeded_rng(0),
                jid=JID.parse(f"juliet@{DOMAIN}/{resource}"),
                password="r0m30myr0m30",
            ),
            sm_state=sm_state,
        )
        server = ServerConnection(
            ServerConfig(rng=seeded_rng(0), domains=frozenset({DOMAIN}), sm_resume_timeout=RESUME)
        )
        pair = ConnectionPair(client, server, LOOKUP)
        client.start()
        self.pairs[session] = pair
        self.pump(session)
        return pair

    def pump(self, session: int) -> None:
        pair = self.pairs[session]
        seen = len(pair.server_events)
        pair.pump()
        for event in pair.server_events[seen:]:
            if isinstance(event, ResourceBound):
                self.carry_out(self.manager.bind(session, pair.server, event.jid, self.now))
            elif isinstance(event, StreamManagementEnabled):
                self.manager.stream_management_enabled(session, event)
            elif isinstance(event, ResumeRequested):
                self.carry_out(self.manager.resume(session, pair.server, event, self.now))
                for sid, p in self.pairs.items():
                    if p is pair:
                        session = sid
                pair.pump()
            elif isinstance(event, StanzaReceived):
                self.manager.received(session, self.now)
                self.carry_out(self.router.route(session, event.element))
        pair.pump()

    def lose(self, session: int) -> SMState | None:
        """The transport of ``session`` breaks (no ``</stream:stream>``)."""
        pair = self.pairs.pop(session)
        self.carry_out(self.manager.transport_lost(session, self.now))
        return pair.client.sm

    def advance(self, seconds: float) -> list[SessionEffect]:
        self.now += seconds
        before = len(self.effects)
        deadline = self.manager.next_deadline()
        while deadline is not None and deadline <= self.now:
            self.carry_out(self.manager.handle_timer(self.now))
            after = self.manager.next_deadline()
            if after == deadline:
                break
            deadline = after
        return self.effects[before:]

    def romeo_says(self, element: ET.Element) -> None:
        self.carry_out(self.router.route(ROMEO, element))


def make_world(**kw: float) -> World:
    router = Router(
        [DOMAIN],
        rng=seeded_rng(0),
        account_exists=lambda local, domain: local in {"juliet", "romeo"},
    )
    manager = SessionManager(
        router,
        resume_timeout=kw.get("resume_timeout", RESUME),
        max_unacked=int(kw.get("max_unacked", 1000)),
        max_unacked_bytes=int(kw.get("max_unacked_bytes", 1 << 20)),
        idle_timeout=kw.get("idle_timeout", IDLE),
    )
    router.bind(ROMEO, JID.parse(f"romeo@{DOMAIN}/orchard"))
    return World(router, manager)


def received_bodies(pair: ConnectionPair) -> list[str]:
    return bodies([e.element for e in pair.client_events if isinstance(e, StanzaReceived)])


# -- binding and idle timers ----------------------------------------------------------------


def test_bound_session_is_in_the_table_and_the_router() -> None:
    world = make_world()
    world.connect(1)
    assert 1 in world.manager and not world.manager.is_detached(1)
    assert world.router.session_jid(1) == JID.parse(f"juliet@{DOMAIN}/balcony")
    assert world.manager.next_deadline() == IDLE / 2


def test_idle_stream_is_pinged_at_half_the_timeout_then_closed_with_connection_timeout() -> None:
    world = make_world()
    pair = world.connect(1)
    assert world.advance(IDLE / 2 - 1) == []
    (ping,) = world.advance(1)
    assert isinstance(ping, Deliver) and ping.session == 1
    assert (
        ping.element.get("type") == "get" and ping.element.find("{urn:xmpp:ping}ping") is not None
    )
    assert ping.element.get("to") == f"juliet@{DOMAIN}/balcony"
    assert world.advance(IDLE / 2 - 1) == []
    close, *ended = world.advance(1)
    assert close == CloseStream(1, StreamErrorCondition.CONNECTION_TIMEOUT, "no input")
    pair.pump()
    assert pair.server.should_close
    # The transport closes after the stream: the session ends (the unanswered
    # ping, unacknowledged, is routed again: to nobody).
    assert [type(e) for e in ended] == [Reroute] and 1 not in world.manager
    assert world.manager.next_deadline() is None


def test_input_postpones_the_idle_ping() -> None:
    world = make_world()
    world.connect(1)
    world.advance(IDLE / 2 - 1)
    world.manager.received(1, world.now)
    assert world.advance(IDLE / 2 - 1) == []
    (ping,) = world.advance(1)
    assert isinstance(ping, Deliver)


def test_answering_the_ping_keeps_the_stream_open() -> None:
    world = make_world()
    world.connect(1)
    for _ in range(5):
        effects = world.advance(IDLE / 2)
        assert [type(e) for e in effects] == [Deliver]
        world.manager.received(1, world.now)  # the client's pong
    assert not any(isinstance(e, CloseStream) for e in world.effects)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.floats(0.0, 2 * IDLE), st.booleans()), max_size=12))
def test_idle_timer_matches_its_model(steps: list[tuple[float, bool]]) -> None:
    """Whatever the input times: a ping goes out exactly when half the idle
    timeout passed without input, a close exactly when all of it did after a
    ping, and nothing else."""
    world = make_world()
    world.connect(1)
    last, pinged, closed = 0.0, False, False
    for delay, has_input in steps:
        target = world.now + delay
        # The model, in half-timeout steps up to target.
        expected: list[type] = []
        while not closed:
            due = last + (IDLE if pinged else IDLE / 2)
            if due > target:
                break
            expected.append(CloseStream if pinged else Deliver)
            closed = pinged
            pinged = True
        effects = world.advance(delay)
        assert [type(e) for e in effects if isinstance(e, (Deliver, CloseStream))] == expected
        if has_input and not closed:
            world.manager.received(1, world.now)
            last, pinged = world.now, False


# -- detachment, resumption, expiry --------------------------------------------------------


def test_lost_transport_detaches_a_resumable_session_and_queues_its_stanzas() -> None:
    world = make_world()
    world.connect(1)
    world.lose(1)
    assert world.manager.is_detached(1) and world.manager.detached() == [1]
    assert world.router.session_jid(1) is not None  # still bound, still available
    world.romeo_says(message("while away", **{"from": f"romeo@{DOMAIN}/orchard"}))
    assert world.manager.next_deadline() == RESUME


def test_resumption_retransmits_the_queue_then_the_held_presence() -> None:
    world = make_world()
    world.connect(1)
    state = world.lose(1)
    romeo = f"romeo@{DOMAIN}/orchard"
    for show in ("away", "xa"):
        pres = ET.Element(f"{C}presence", {"from": romeo, "to": f"juliet@{DOMAIN}/balcony"})
        ET.SubElement(pres, f"{C}show").text = show
        world.carry_out(world.manager.undeliverable(Deliver(1, pres)))
    world.romeo_says(message("queued", **{"from": romeo}))
    world.advance(RESUME - 1)
    pair = world.connect(2, sm_state=state)
    resumed = [e for e in world.effects if isinstance(e, Resumed)]
    assert resumed == [Resumed(2, 1)]
    assert 2 not in world.pairs and world.pairs[1] is pair
    assert received_bodies(pair) == ["queued"]
    presences = [e.element for e in pair.client_events if isinstance(e, StanzaReceived)]
    shows = [p.findtext(f"{C}show") for p in presences if p.tag == f"{C}presence"]
    assert shows == ["xa"]  # the latest per sender, after the queue (XEP-0352 §5.2)
    assert not world.manager.is_detached(1)
    assert world.manager.next_deadline() == world.now + IDLE / 2  # idle timer again


def test_resumption_by_another_account_fails() -> None:
    world = make_world()
    world.connect(1)
    state = world.lose(1)
    assert state is not None
    pair = ConnectionPair(
        ClientConnection(
            ClientConfig(
                rng=seeded_rng(0), jid=JID.parse(f"nurse@{DOMAIN}/x"), password=PASSWORDS["nurse"]
            ),
            sm_state=state,
        ),
        ServerConnection(
            ServerConfig(rng=seeded_rng(0), domains=frozenset({DOMAIN}), sm_resume_timeout=RESUME)
        ),
        LOOKUP,
    )
    pair.client.start()
    world.pairs[2] = pair
    world.pump(2)
    assert not any(isinstance(e, Resumed) for e in world.effects)
    assert world.manager.is_detached(1)  # XEP-0198 §10: only its owner may resume it


def test_resuming_a_live_session_closes_the_old_stream_with_conflict() -> None:
    world = make_world()
    old = world.connect(1)
    assert old.client.sm is not None
    state = old.client.sm
    world.connect(2, sm_state=state)
    closes = [e for e in world.effects if isinstance(e, CloseStream)]
    assert closes == [
        CloseStream(1, StreamErrorCondition.CONFLICT, "the session was resumed elsewhere")
    ]
    index = world.effects.index(closes[0])
    assert world.effects[index + 1] == Resumed(2, 1)


def test_session_not_resumed_in_time_is_unbound_and_its_messages_routed_again() -> None:
    world = make_world()
    world.connect(1)
    pair = world.pairs[1]
    romeo = f"romeo@{DOMAIN}/orchard"
    world.romeo_says(message("unacked", **{"from": romeo}))
    pres = ET.Element(f"{C}presence", {"from": romeo, "to": f"juliet@{DOMAIN}/balcony"})
    pair.server.send(pres)
    carbon = ET.Element(
        f"{C}message", {"from": f"juliet@{DOMAIN}", "to": f"juliet@{DOMAIN}/balcony"}
    )
    ET.SubElement(carbon, "{urn:xmpp:carbons:2}received")
    pair.server.send(carbon)
    world.lose(1)
    assert world.advance(RESUME - 1) == []
    effects = world.advance(1)
    assert 1 not in world.manager and world.router.session_jid(1) is None
    rerouted = [e for e in effects if isinstance(e, Reroute)]
    assert bodies([e.element for e in rerouted]) == ["unacked"]  # no presence, no carbon
    assert all(e.session == 1 for e in rerouted)


def test_stanza_with_a_receipt_is_not_routed_again() -> None:
    """An offline message (delivered with a receipt) stays stored: its sender
    delivers it again, so routing it again would duplicate it."""
    world = make_world()
    world.connect(1)
    world.lose(1)
    world.carry_out(world.manager.undeliverable(Deliver(1, message("stored"), receipt="r1")))
    world.carry_out(world.manager.undeliverable(Deliver(1, message("plain"))))
    effects = world.advance(RESUME)
    assert bodies([e.element for e in effects if isinstance(e, Reroute)]) == ["plain"]


def test_resume_time_is_the_shorter_of_the_limit_and_the_agreed_max() -> None:
    world = make_world(resume_timeout=30.0)
    world.connect(1)
    world.lose(1)
    assert world.manager.next_deadline() == 30.0


ROMEO_FULL = f"romeo@{DOMAIN}/orchard"
SIZE = serialized_size(message("m0 " + "x" * 100, **{"from": ROMEO_FULL}))


@pytest.mark.parametrize(
    "bound", [{"max_unacked": 2}, {"max_unacked_bytes": 2.5 * SIZE}], ids=["count", "bytes"]
)
def test_detached_session_over_its_bound_ends_at_once(bound: dict[str, float]) -> None:
    """The third stanza is one too many: the session ends before its resume
    time and all three are routed again."""
    world = make_world(**bound)
    world.connect(1)
    world.lose(1)
    for i in range(2):
        world.romeo_says(message(f"m{i} " + "x" * 100, **{"from": ROMEO_FULL}))
    assert world.manager.is_detached(1)
    world.romeo_says(message("m2 " + "x" * 100, **{"from": ROMEO_FULL}))
    assert 1 not in world.manager
    rerouted = [e for e in world.effects if isinstance(e, Reroute)]
    assert [b.split(" ")[0] for b in bodies([e.element for e in rerouted])] == ["m0", "m1", "m2"]


def test_clean_close_ends_the_session_at_once() -> None:
    world = make_world()
    pair = world.connect(1)
    pair.client.close()
    world.pump(1)
    world.lose(1)
    assert 1 not in world.manager and world.router.session_jid(1) is None


def test_replaced_detached_session_ends() -> None:
    """A new bind of the same full JID replaces a detached session
    (RFC 6120 §7.7.2.2): the Disconnect for it ends it."""
    world = make_world()
    world.connect(1)
    world.lose(1)
    world.connect(2)  # binds balcony again
    assert 1 not in world.manager and 2 in world.manager


# -- ending sessions, shutting down -------------------------------------------------------


def test_end_sessions_disconnects_live_sessions_and_ends_detached_ones() -> None:
    world = make_world()
    world.connect(1)
    world.connect(2, resource="chamber")
    world.lose(1)
    effects = world.manager.end_sessions(
        JID.parse(f"juliet@{DOMAIN}"), StreamErrorCondition.POLICY_VIOLATION
    )
    assert Disconnect(2, StreamErrorCondition.POLICY_VIOLATION) in effects
    assert not any(isinstance(e, Disconnect) and e.session == 1 for e in effects)
    assert 1 not in world.manager
    assert world.router.resources(JID.parse(f"juliet@{DOMAIN}")) == []


def test_end_sessions_keeps_the_asking_session() -> None:
    world = make_world()
    world.connect(1)
    world.connect(2, resource="chamber")
    effects = world.manager.end_sessions(
        JID.parse(f"juliet@{DOMAIN}"), StreamErrorCondition.RESET, keep=2
    )
    assert [e for e in effects if isinstance(e, Disconnect)] == [
        Disconnect(1, StreamErrorCondition.RESET)
    ]


def test_close_ends_detached_sessions_and_detaches_no_more() -> None:
    world = make_world()
    world.connect(1)
    world.connect(2, resource="chamber")
    world.lose(1)
    world.manager.close()
    assert 1 not in world.manager
    world.lose(2)
    assert 2 not in world.manager


def test_may_bind_counts_other_resources_only() -> None:
    world = make_world()
    world.connect(1)
    balcony, chamber = JID.parse(f"juliet@{DOMAIN}/balcony"), JID.parse(f"juliet@{DOMAIN}/c")
    assert world.manager.may_bind(balcony, 1)  # replaces itself
    assert not world.manager.may_bind(chamber, 1)
    assert world.manager.may_bind(chamber, 2)


def test_may_detach_only_a_resumable_live_stream() -> None:
    """A client that stops reading is detached if it may resume, else closed."""
    world = make_world()
    pair = world.connect(1)
    assert world.manager.may_detach(1)
    assert not world.manager.may_detach(2)  # not bound
    pair.client.close()
    world.pump(1)
    assert not world.manager.may_detach(1)  # ended cleanly


# -- the session table as a state machine ------------------------------------------------------


class SessionTable(RuleBasedStateMachine):
    """Random binds, transport losses, resumptions, deliveries, kicks and time:
    the table and the router agree, every session has a timer, a session is
    detached exactly when it has no stream, and nothing outlives its time."""

    def __init__(self) -> None:
        super().__init__()
        self.world = make_world()
        self.next_id = 1
        self.states: dict[int, SMState] = {}  # client SM state of detached sessions

    @rule(resource=st.sampled_from(["a", "b", "c"]))
    def connect(self, resource: str) -> None:
        self.world.connect(self.next_id, resource=resource)
        self.next_id += 1

    @rule(data=st.data())
    def lose_a_transport(self, data: st.DataObject) -> None:
        live = sorted(self.world.pairs)
        if live:
            session = data.draw(st.sampled_from(live))
            state = self.world.lose(session)
            if state is not None and self.world.manager.is_detached(session):
                self.states[session] = state

    @rule(data=st.data())
    def resume(self, data: st.DataObject) -> None:
        if self.states:
            session = data.draw(st.sampled_from(sorted(self.states)))
            state = self.states.pop(session)
            self.world.connect(self.next_id, sm_state=state)
            self.next_id += 1

    @rule(resource=st.sampled_from(["a", "b", "c"]), body=st.text("ab ", max_size=5))
    def romeo_writes(self, resource: str, body: str) -> None:
        to = f"juliet@{DOMAIN}/{resource}"
        self.world.romeo_says(message(body, to=to, **{"from": f"romeo@{DOMAIN}/orchard"}))

    @rule(seconds=st.floats(0, 2 * RESUME))
    def time_passes(self, seconds: float) -> None:
        self.world.advance(seconds)
        for session in list(self.world.pairs):
            self.world.manager.received(session, self.world.now)  # clients answer pings

    @rule()
    def kick(self) -> None:
        self.world.carry_out(
            self.world.manager.end_sessions(
                JID.parse(f"juliet@{DOMAIN}"), StreamErrorCondition.POLICY_VIOLATION
            )
        )
        self.states.clear()

    @invariant()
    def table_and_router_agree(self) -> None:
        manager, router = self.world.manager, self.world.router
        juliet = {s for _, s in router.resources(JID.parse(f"juliet@{DOMAIN}"))}
        in_table = {s for s in range(1, self.next_id) if s in manager}
        assert in_table == juliet
        for session in in_table:
            assert manager.is_detached(session) == (session not in self.world.pairs)
        if in_table:
            assert manager.next_deadline() is not None
        assert set(manager.detached()) <= {s for s in in_table if s not in self.world.pairs}

    def teardown(self) -> None:
        self.world.advance(RESUME + IDLE)
        assert self.world.manager.detached() == []


TestSessionTable = SessionTable.TestCase
TestSessionTable.settings = settings(max_examples=60, stateful_step_count=20, deadline=None)
