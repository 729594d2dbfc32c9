"""Hypothesis state machine over a client and a server connection with Stream
Management (XEP-0198).

Random stanzas go both ways, acks and ack requests are sent at random, the
bytes in flight are delivered in random chunks, counters may start just below
the 2**32 wrap, and the transport may break at any moment (the bytes in
flight are lost) and the session be resumed on new connections.

Invariants:

* neither side ever raises (no stream error between two correct peers);
* what each side received is, in order, a prefix of what the other sent: no
  stanza is lost, duplicated or reordered, across any number of resumptions;
* each side's ``h`` is exactly the number of stanzas it received, and its
  outbound counter the number it sent (mod 2**32);
* a queue never holds more than was sent, and what it holds is exactly the
  stanzas the peer has not acknowledged: the peer's ``h`` is never below the
  acknowledged count;
* after a final flush and ack exchange, everything sent was received and
  both queues are empty.

``FUZZ_EXAMPLES`` sets the number of examples (default 300).
"""

from __future__ import annotations

import os
import secrets
import xml.etree.ElementTree as ET

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from xmpp_sansio.jid import JID
from xmpp_sansio.sm import MODULUS, AckRequestPolicy, SMState
from xmpp_sansio.stream.config import ClientConfig, ServerConfig
from xmpp_sansio.stream.connection import ClientConnection, ServerConnection, State
from xmpp_sansio.stream.events import Event, ResumeRequested, StanzaReceived, StreamResumed
from xmpp_sansio.testing import ConnectionPair, make_credentials

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "300"))
LOOKUP = make_credentials({"juliet": "pw"})
JULIET = JID.parse("juliet@example.com/balcony")
ROMEO = "romeo@example.com/orchard"


def body(stanza: ET.Element) -> str:
    return stanza.findtext("{jabber:client}body") or ""


def message(text: str, **attrs: str) -> ET.Element:
    msg = ET.Element("{jabber:client}message", attrs)
    ET.SubElement(msg, "{jabber:client}body").text = text
    return msg


class StreamManagementMachine(RuleBasedStateMachine):
    """A client and a server that exchange stanzas through a lossy pipe."""

    def __init__(self) -> None:
        super().__init__()
        self.client_sent: list[str] = []
        self.server_sent: list[str] = []
        self.client_received: list[str] = []  # by the client, from the server
        self.server_received: list[str] = []
        self.c2s = b""
        self.s2c = b""
        self.start = 0
        self.resumptions = 0

    # -- setup ----------------------------------------------------------------------

    def _pair(self, sm_state: SMState | None = None) -> ConnectionPair:
        client = ClientConnection(
            ClientConfig(
                rng=secrets.token_bytes,
                jid=JULIET,
                password="pw",
                sm_ack_requests=self.client_policy,
            ),
            tls_active=True,
            sm_state=sm_state,
        )
        server = ServerConnection(
            ServerConfig(
                rng=secrets.token_bytes,
                domains=frozenset({"example.com"}),
                sm_resume_timeout=60,
                sm_ack_requests=self.server_policy,
                sm_max_unacked=100_000,
            ),
            tls_active=True,
        )
        pair = ConnectionPair(client, server, LOOKUP)
        client.start()
        pair.pump()
        return pair

    @initialize(
        client_every=st.integers(1, 8),
        client_on_flush=st.booleans(),
        server_every=st.integers(1, 8),
        server_on_flush=st.booleans(),
        start=st.sampled_from([0, 0, MODULUS - 3]),
    )
    def connect(
        self,
        client_every: int,
        client_on_flush: bool,
        server_every: int,
        server_on_flush: bool,
        start: int,
    ) -> None:
        self.client_policy = AckRequestPolicy(every=client_every, on_flush=client_on_flush)
        self.server_policy = AckRequestPolicy(every=server_every, on_flush=server_on_flush)
        pair = self._pair()
        assert pair.client.sm_enabled and pair.server.sm_enabled
        self.client, self.server = pair.client, pair.server
        assert self.client.sm is not None and self.server.sm is not None
        self.start = start
        for state in (self.client.sm, self.server.sm):  # quiet: queues are empty
            state.inbound = state.outbound = state.requested = start

    # -- helpers ----------------------------------------------------------------------

    def _record(self, events: list[Event], received: list[str]) -> None:
        for event in events:
            if isinstance(event, StanzaReceived):
                received.append(body(event.element))

    def _drain(self, conn: ClientConnection | ServerConnection) -> list[Event]:
        events: list[Event] = []
        while (event := conn.next_event()) is not None:  # must never raise
            events.append(event)
        return events

    # -- rules ----------------------------------------------------------------------

    @rule()
    def client_sends(self) -> None:
        text = f"c{len(self.client_sent)}"
        self.client.send(message(text, to=ROMEO))
        self.client_sent.append(text)

    @rule()
    def server_sends(self) -> None:
        text = f"s{len(self.server_sent)}"
        self.server.send(message(text, **{"from": ROMEO}))
        self.server_sent.append(text)

    @rule(request=st.booleans())
    def client_acks(self, request: bool) -> None:
        if request:
            self.client.request_ack()
        else:
            self.client.send_ack()

    @rule(request=st.booleans())
    def server_acks(self, request: bool) -> None:
        if request:
            self.server.request_ack()
        else:
            self.server.send_ack()

    @rule()
    def client_flushes(self) -> None:
        self.c2s += self.client.data_to_send()

    @rule()
    def server_flushes(self) -> None:
        self.s2c += self.server.data_to_send()

    @precondition(lambda self: bool(self.c2s))
    @rule(size=st.integers(1, 400))
    def deliver_to_server(self, size: int) -> None:
        chunk, self.c2s = self.c2s[:size], self.c2s[size:]
        self.server.receive_data(chunk)
        self._record(self._drain(self.server), self.server_received)

    @precondition(lambda self: bool(self.s2c))
    @rule(size=st.integers(1, 400))
    def deliver_to_client(self, size: int) -> None:
        chunk, self.s2c = self.s2c[:size], self.s2c[size:]
        self.client.receive_data(chunk)
        self._record(self._drain(self.client), self.client_received)

    @precondition(lambda self: self.resumptions < 3)
    @rule()
    def transport_breaks_and_session_resumes(self) -> None:
        """Bytes in flight are lost; both sides see EOF; a new connection resumes."""
        self.c2s = self.s2c = b""
        self.client.receive_eof()
        self.server.receive_eof()
        self._drain(self.client)
        self._drain(self.server)
        assert self.server.sm_resumable
        client_state, server_state = self.client.sm, self.server.sm
        assert client_state is not None and server_state is not None
        pair = self._pair(client_state)
        (request,) = [e for e in pair.server_events if isinstance(e, ResumeRequested)]
        assert request.previd == server_state.id
        pair.server.resume_accepted(server_state)
        pair.pump()
        assert pair.client_error is None and pair.server_error is None
        assert any(isinstance(e, StreamResumed) for e in pair.client_events)
        assert pair.client.state is State.READY and pair.server.state is State.READY
        self._record(pair.client_events, self.client_received)
        self._record(pair.server_events, self.server_received)
        self.client, self.server = pair.client, pair.server
        self.resumptions += 1

    # -- invariants ---------------------------------------------------------------------

    @invariant()
    def received_is_a_prefix_of_sent(self) -> None:
        assert self.server_received == self.client_sent[: len(self.server_received)]
        assert self.client_received == self.server_sent[: len(self.client_received)]

    @invariant()
    def counters_count_what_was_sent_and_received(self) -> None:
        c, s = self.client.sm, self.server.sm
        assert c is not None and s is not None
        assert c.outbound == (self.start + len(self.client_sent)) % MODULUS
        assert s.outbound == (self.start + len(self.server_sent)) % MODULUS
        assert s.inbound == (self.start + len(self.server_received)) % MODULUS
        assert c.inbound == (self.start + len(self.client_received)) % MODULUS

    @invariant()
    def queues_hold_exactly_the_unacknowledged(self) -> None:
        for state, sent, peer_received in (
            (self.client.sm, self.client_sent, self.server_received),
            (self.server.sm, self.server_sent, self.client_received),
        ):
            assert state is not None
            assert len(state.queue) <= len(sent)
            acked = len(sent) - len(state.queue)
            assert acked <= len(peer_received)  # nobody acknowledges what it did not get
            assert [body(s) for s in state.queue] == sent[acked:]

    def teardown(self) -> None:
        if not hasattr(self, "client"):
            return
        # The final flush and ack exchange over a reliable pipe.
        self.client.request_ack()
        self.server.request_ack()
        for _ in range(10):
            self.c2s += self.client.data_to_send()
            self.s2c += self.server.data_to_send()
            if not self.c2s and not self.s2c:
                break
            if self.c2s:
                self.deliver_to_server(len(self.c2s))
            if self.s2c:
                self.deliver_to_client(len(self.s2c))
        assert not self.c2s and not self.s2c
        assert self.server_received == self.client_sent
        assert self.client_received == self.server_sent
        assert self.client.sm is not None and self.server.sm is not None
        assert not self.client.sm.queue and not self.server.sm.queue
        self.counters_count_what_was_sent_and_received()


StreamManagementMachine.TestCase.settings = settings(
    max_examples=EXAMPLES,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
test_stream_management = StreamManagementMachine.TestCase
