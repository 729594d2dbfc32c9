"""The stream state tables (xmpp_sansio/stream/state.py) and their driver.

Every (state, input) pair of each role is driven: a pair in the table moves to
its next state; a missing pair from the peer is a stream error; a missing pair
from the I/O layer raises LocalProtocolError and changes nothing (h2's sweep).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xmpp_sansio.errors import LocalProtocolError, RemoteProtocolError, StreamErrorCondition
from xmpp_sansio.jid import JID
from xmpp_sansio.stream.component import ComponentClientConnection, ComponentServerConnection
from xmpp_sansio.stream.config import (
    ClientConfig,
    ComponentClientConfig,
    ComponentServerConfig,
    ServerConfig,
)
from xmpp_sansio.stream.connection import ClientConnection, ServerConnection, State
from xmpp_sansio.stream.events import StreamErrorReceived
from xmpp_sansio.stream.s2s import S2SInitiatingConnection, S2SReceivingConnection
from xmpp_sansio.stream.s2s_events import S2SConfig
from xmpp_sansio.stream.s2s_state import S2S_INITIATING_TRANSITIONS, S2S_RECEIVING_TRANSITIONS
from xmpp_sansio.stream.state import (
    CLIENT_TRANSITIONS,
    COMPONENT_CLIENT_TRANSITIONS,
    COMPONENT_SERVER_TRANSITIONS,
    SERVER_TRANSITIONS,
    Input,
    Transitions,
    is_local_input,
    is_peer_input,
    render_table,
)
from xmpp_sansio.testing import seeded_rng

ROOT = Path(__file__).resolve().parents[2]
ROLES = {
    "server": SERVER_TRANSITIONS,
    "client": CLIENT_TRANSITIONS,
    "component-server": COMPONENT_SERVER_TRANSITIONS,
    "component-client": COMPONENT_CLIENT_TRANSITIONS,
    "s2s-receiving": S2S_RECEIVING_TRANSITIONS,
    "s2s-initiating": S2S_INITIATING_TRANSITIONS,
}
Conn = (
    ServerConnection
    | ClientConnection
    | ComponentServerConnection
    | ComponentClientConnection
    | S2SReceivingConnection
    | S2SInitiatingConnection
)


def new(role: str) -> Conn:
    if role == "server":
        return ServerConnection(ServerConfig(rng=seeded_rng(0), domains=frozenset({"example.com"})))
    if role == "component-server":
        return ComponentServerConnection(
            ComponentServerConfig(secrets={"c.example.com": "s"}, rng=seeded_rng(0))
        )
    if role.startswith("s2s-"):
        config = S2SConfig(domains=frozenset({"a.example"}), secret=b"s", rng=seeded_rng(0))
        if role == "s2s-receiving":
            return S2SReceivingConnection(config)
        return S2SInitiatingConnection(config, "a.example", "b.example")
    if role == "component-client":
        return ComponentClientConnection(ComponentClientConfig(domain="c.example.com", secret="s"))
    return ClientConnection(
        ClientConfig(rng=seeded_rng(0), jid=JID.parse("juliet@example.com"), password="pw")
    )


def states_of(table: Transitions) -> list[State]:
    return sorted({s for s, _ in table} | {t for _, t in table.values()}, key=lambda s: s.value)


ALL_PAIRS = [
    (role, state, item)
    for role, table in ROLES.items()
    for state in states_of(table)
    for item in Input
]


def drive(conn: Conn, state: State, item: Input) -> None:
    conn._state = state  # test-only: place the machine in the state under test
    conn._fire(item)


@pytest.mark.parametrize(("role", "state", "item"), ALL_PAIRS)
def test_every_state_input_pair_transitions_or_is_a_protocol_error(
    role: str, state: State, item: Input
) -> None:
    conn = new(role)
    step = ROLES[role].get((state, item))
    if step is not None:
        drive(conn, state, item)
        # A restart that feeds nothing stays where the table says.
        assert conn.state is step[1]
    elif is_peer_input(item) and state is State.ERROR:
        drive(conn, state, item)  # the stream already failed: nothing more is sent
        assert conn.state is State.ERROR and conn.next_event() is None
    elif is_peer_input(item):
        drive(conn, state, item)
        assert conn.state is State.ERROR
        with pytest.raises(RemoteProtocolError) as info:
            while conn.next_event() is not None:
                pass
        assert info.value.condition is StreamErrorCondition.UNSUPPORTED_STANZA_TYPE
        assert b"unsupported-stanza-type" in conn.data_to_send()
    else:
        with pytest.raises(LocalProtocolError):
            drive(conn, state, item)
        assert conn.state is state


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted(ROLES)), st.lists(st.sampled_from(list(Input)), max_size=12))
def test_any_input_sequence_follows_the_table(role: str, items: list[Input]) -> None:
    """From the initial state, each input moves exactly as the table says, or
    is refused: the machine never reaches a state the table does not name."""
    conn = new(role)
    table = ROLES[role]
    for item in items:
        before = conn.state
        step = table.get((before, item))
        if step is None and not is_peer_input(item):
            with pytest.raises(LocalProtocolError):
                conn._fire(item)
            assert conn.state is before
            continue
        conn._fire(item)
        if step is None:
            assert conn.state is State.ERROR
        elif conn.state is not step[1]:
            # Only a restart may move on, by feeding what followed its trigger.
            assert item in (Input.LOCAL_TLS_ESTABLISHED, Input.SASL_SUCCEEDED)


def test_every_input_is_peer_local_or_an_outcome() -> None:
    assert not any(is_peer_input(i) and is_local_input(i) for i in Input)


@pytest.mark.parametrize("role", sorted(ROLES))
def test_terminal_states_only_accept_end_of_file_and_close(role: str) -> None:
    table = ROLES[role]
    for (state, item), (_, target) in table.items():
        if state is State.ERROR:
            assert item is Input.PEER_EOF and target is State.ERROR


def test_no_state_is_assigned_outside_the_table_driver() -> None:
    """Issue 13: the driver (``_Connection._fire``) is the only writer."""
    offenders = []
    for path in sorted((ROOT / "xmpp_sansio" / "stream").rglob("*.py")):
        for lineno, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(r"self\.state\s*=[^=]", line) or (
                re.search(r"self\._state\s*=[^=]", line)
                and "then only _fire() assigns it" not in line
                and "= step" not in line
            ):
                offenders.append(f"{path.name}:{lineno}: {line.strip()}")
    base = (ROOT / "xmpp_sansio" / "stream" / "base.py").read_text()
    assert base.count("action, self._state = step") == 1
    assert offenders == []


@pytest.mark.parametrize("role", sorted(ROLES))
def test_the_tables_render_for_the_docs(role: str) -> None:
    rendered = render_table(ROLES[role])
    assert rendered.count("\n") == len(ROLES[role]) + 2
    assert "| AWAIT_HEADER | PEER_HEADER |" in rendered


def test_docs_show_the_current_tables() -> None:
    docs = (ROOT / "docs" / "architecture.md").read_text()
    for table in ROLES.values():
        assert render_table(table) in docs


def test_a_received_stream_error_with_an_unknown_condition_is_undefined_condition() -> None:
    """RFC 6120 §4.9.3.21: an unknown condition is treated as undefined-condition;
    the text is kept and application-specific children are ignored."""
    client = new("client")
    assert isinstance(client, ClientConnection)
    client.start()
    client.receive_data(
        b"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'"
        b" from='example.com' id='s1' version='1.0'>"
        b"<stream:error><text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>hm</text>"
        b"<gremlins xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
        b"<app xmlns='urn:example'/></stream:error>"
    )
    events = []
    while (event := client.next_event()) is not None:
        events.append(event)
    assert StreamErrorReceived(StreamErrorCondition.UNDEFINED_CONDITION, "hm") in events
    assert client.state is State.CLOSED
