"""Hypothesis: whitespace between top-level elements changes no negotiation outcome.

RFC 6120 §11.7 allows whitespace between top-level elements; §5.3.3 and
§6.3.5 tell senders not to put any inside STARTTLS and SASL negotiation, but
clients do (go-sendxmpp writes ``<starttls/>\\n`` and ``</auth>\\n``). A client
and a server connection (``ConnectionPair``, simulated TLS) negotiate while
XML whitespace (space, tab, CR, LF) is inserted, both ways, at drawn top-level
element boundaries (also right after ``<starttls/>``, ``<proceed/>``,
``</auth>`` and ``<success/>``, ahead of the restarted stream's header), and
the bytes are fed in drawn chunks. The events, the final states, the bound JID
and the errors must be those of the same negotiation without whitespace.
``FUZZ_EXAMPLES`` sets the number of examples (default 300).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xmpp_sansio.jid import JID
from xmpp_sansio.sasl import ChannelBinding
from xmpp_sansio.stream.config import ClientConfig, ServerConfig
from xmpp_sansio.stream.connection import ClientConnection, ServerConnection, State, TLSInfo
from xmpp_sansio.testing import ConnectionPair, make_credentials
from xmpp_sansio.xml.parser import StreamEnd, StreamParser

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "300"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
LOOKUP = make_credentials({"juliet": "pw"})
SPACE = st.text(alphabet=" \t\r\n", min_size=1, max_size=3).map(str.encode)


def boundaries(parser: StreamParser, data: bytes) -> list[int]:
    """Offsets in ``data`` where a top-level element or a stream header ends,
    found by feeding ``parser`` (hold mode) up to one ``>`` at a time."""
    found = []
    start = 0
    while (end := data.find(b">", start)) >= 0:
        parser.feed(data[start : end + 1])
        start = end + 1
        ended = False
        while (event := parser.next_event()) is not None:
            found.append(start)
            ended |= isinstance(event, StreamEnd)
        if ended:
            break
    return found


@dataclass
class SpacedPair(ConnectionPair):
    """A pair whose bytes get whitespace at drawn top-level boundaries:
    ``space()`` says what to insert at each (``None``: nothing)."""

    space: Callable[[], bytes | None] = lambda: None
    observers: dict[int, StreamParser] = field(default_factory=dict)
    started: set[int] = field(default_factory=set)

    def _feed(self, conn: ClientConnection | ServerConnection, data: bytes) -> None:
        key = id(conn)
        if data.startswith((b"<?xml", b"<stream:stream")) or key not in self.observers:
            self.observers[key] = StreamParser(max_stanza_size=1 << 20, hold=True)
        cuts = boundaries(self.observers[key], data)
        if key in self.started:
            cuts.insert(0, 0)  # after the last element of the previous write
        self.started.add(key)
        spaced = bytearray()
        last = 0
        for cut in cuts:
            spaced += data[last:cut]
            last = cut
            space = self.space()
            if space:
                spaced += space
        spaced += data[last:]
        super()._feed(conn, bytes(spaced))


def negotiate(
    mechanism: str, direct_tls: bool, chunk: int | None, space: Callable[[], bytes | None]
) -> tuple[object, ...]:
    # Direct TLS: the channel binding data a real TLS session would give both.
    tls = TLSInfo(channel_binding=ChannelBinding("tls-server-end-point", b"\x01" * 32))
    client = ClientConnection(
        ClientConfig(
            rng=secrets.token_bytes,
            jid=JID.parse("juliet@example.com/a"),
            password="pw",
            mechanisms=(mechanism,),
        ),
        tls_active=direct_tls,
        tls_info=tls if direct_tls else None,
    )
    server = ServerConnection(
        ServerConfig(rng=secrets.token_bytes, domains=frozenset({"example.com"})),
        tls_active=direct_tls,
        tls_info=tls if direct_tls else None,
    )
    pair = SpacedPair(client, server, LOOKUP, chunk=chunk, space=space)
    client.start()
    pair.pump()

    def kinds(events: list[object]) -> list[str]:
        return [type(e).__name__ for e in events]

    return (
        kinds(pair.client_events),  # type: ignore[arg-type]
        kinds(pair.server_events),  # type: ignore[arg-type]
        client.state,
        server.state,
        str(client.jid),
        pair.client_error and pair.client_error.condition,
        pair.server_error and pair.server_error.condition,
    )


@FUZZ
@given(
    st.sampled_from(["PLAIN", "SCRAM-SHA-1", "SCRAM-SHA-256-PLUS"]),
    st.booleans(),
    st.one_of(st.none(), st.integers(1, 64)),
    st.data(),
)
def test_whitespace_between_top_level_elements_changes_no_negotiation_outcome(
    mechanism: str, direct_tls: bool, chunk: int | None, data: st.DataObject
) -> None:
    expected = negotiate(mechanism, direct_tls, None, lambda: None)
    assert expected[2:5] == (State.READY, State.READY, "juliet@example.com/a")

    def space() -> bytes | None:
        return data.draw(st.one_of(st.none(), SPACE))

    assert negotiate(mechanism, direct_tls, chunk, space) == expected
