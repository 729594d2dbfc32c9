"""The stream state tables: every state change of both roles lives here.

Theory of operation
-------------------
A connection is in one :class:`State`. Something happens to it: the peer sends
a header, an element, its footer or end of file; the I/O layer answers a
request (``tls_established``, ``provide_credentials`` ...); or a negotiation
step the connection ran itself reaches an outcome (credentials needed, SASL
succeeded). Each of these is an :class:`Input`. The role's table maps
``(state, input)`` to ``(action, next state)``; the connection's driver
(``_Connection._fire``) is the only code that assigns the state, and it runs
the :class:`Action` the table names (restart the stream, let stanzas flow,
close our side).

A pair missing from the table is a protocol error (h2's rule): a peer input
queues a stream error and moves to :attr:`State.ERROR` (RFC 6120 §4.9); a
local input raises :class:`~xmpp_sansio.errors.LocalProtocolError` and
changes nothing. The tables do not know which side is local: they are data,
rendered in docs/architecture.md by :func:`render_table`, and swept pair by
pair in tests/sansio/test_stream_state.py.

One :class:`State` enum serves both roles (each table uses its own subset) so
that ``conn.state is State.READY`` keeps working for every caller.
"""

from __future__ import annotations

from enum import Enum, auto
from typing import Final

__all__ = [
    "CLIENT_TRANSITIONS",
    "COMPONENT_CLIENT_TRANSITIONS",
    "COMPONENT_SERVER_TRANSITIONS",
    "ENDED",
    "READY",
    "SERVER_TRANSITIONS",
    "TERMINAL",
    "TLS_PENDING",
    "Action",
    "Input",
    "State",
    "render_table",
]


class State(Enum):
    """Where a stream connection is (both roles share the names)."""

    AWAIT_HEADER = auto()  #: waiting for the peer's stream header
    AWAIT_FEATURES = auto()  #: client: header received, features not yet
    NEGOTIATING = auto()  #: features exchanged, a negotiation step may come
    TLS_PENDING = auto()  #: the I/O layer must do the TLS handshake
    SASL = auto()  #: a SASL exchange is running
    AWAIT_CREDENTIALS = auto()  #: server: the I/O layer is looking up credentials
    AWAIT_DERIVATION = auto()  #: server: the I/O layer is running PBKDF2 (PLAIN)
    AWAIT_REGISTRATION = auto()  #: server: the I/O layer is creating an account
    AWAIT_BIND = auto()  #: server: the I/O layer decides whether a resource may be bound
    BINDING = auto()  #: client: bind request sent
    RESUMING = auto()  #: client: ``<resume/>`` sent (XEP-0198 §5)
    AWAIT_RESUME = auto()  #: server: the I/O layer is looking up the session to resume
    READY = auto()  #: stanzas flow
    CLOSING = auto()  #: we sent ``</stream:stream>``, waiting for the peer's
    CLOSED = auto()  #: both directions are done
    ERROR = auto()  #: a stream error ended the stream

    # Members are singletons compared by identity: hash them the same way
    # (Enum's own __hash__ is Python code, and the tables and the parser loop
    # look states up on every element).
    __hash__ = object.__hash__


class Input(Enum):
    """What can happen to a stream. ``PEER_*`` inputs come from the peer's
    bytes, ``LOCAL_*`` from the I/O layer's calls, the rest are outcomes of a
    negotiation step the connection itself ran."""

    PEER_HEADER = auto()  #: a valid stream header (RFC 6120 §4.7)
    PEER_FEATURES = auto()  #: client: ``<stream:features/>`` (§4.3.2)
    PEER_FOOTER = auto()  #: ``</stream:stream>`` (§4.4)
    PEER_STREAM_ERROR = auto()  #: ``<stream:error/>`` (§4.9)
    PEER_EOF = auto()  #: the transport ended
    PROTOCOL_ERROR = auto()  #: we queued a stream error (peer fault, timeout, local close)
    LOCAL_CLOSE = auto()  #: the I/O layer closes cleanly (§4.4)
    LOCAL_TLS_ESTABLISHED = auto()  #: the TLS handshake is done (§5.4.3.3)
    LOCAL_CREDENTIALS = auto()  #: server: credentials provided or refused
    LOCAL_DERIVED = auto()  #: server: the PBKDF2 result arrived
    LOCAL_REGISTRATION_RESULT = auto()  #: server: account created or not (XEP-0077)
    LOCAL_BIND_REFUSED = auto()  #: server: the I/O layer refused the resource
    LOCAL_RESUME_FAILED = auto()  #: server: no session to resume (XEP-0198 §5)
    TLS_STARTED = auto()  #: ``<proceed/>`` sent (server) or received (client) (§5.4.2.3)
    TLS_REFUSED = auto()  #: server: ``<failure/>`` sent for ``<starttls/>`` (§5.4.2.2)
    SASL_STARTED = auto()  #: ``<auth/>`` accepted (server) or sent (client) (§6.4.2)
    NEED_CREDENTIALS = auto()  #: server: the mechanism needs stored credentials
    NEED_DERIVATION = auto()  #: server: PLAIN needs the password derived
    SASL_SUCCEEDED = auto()  #: ``<success/>`` sent or received: restart (§6.4.6)
    SASL_FAILED = auto()  #: ``<failure/>`` sent or received (§6.4.5)
    SASL2_SUCCEEDED = auto()  #: server: SASL2 ``<success/>`` sent, no restart (XEP-0388)
    REGISTRATION_REQUESTED = auto()  #: server: a valid XEP-0077 set
    BIND_REQUESTED = auto()  #: server: ``ask_before_bind`` asks the I/O layer (§7)
    BIND_STARTED = auto()  #: client: bind request sent (§7.6)
    BOUND = auto()  #: a resource is bound (§7.6.1)
    RESUME_REQUESTED = auto()  #: server: ``<resume/>`` received (XEP-0198 §5)
    RESUME_STARTED = auto()  #: client: ``<resume/>`` sent
    RESUMED = auto()  #: ``<resumed/>`` sent or received
    NEGOTIATION_FAILED = auto()  #: client: nothing acceptable offered; we close
    HANDSHAKE_SUCCEEDED = auto()  #: component: ``<handshake/>`` accepted (XEP-0114 §3)
    S2S_AUTHENTICATED = auto()  #: s2s: a domain pair is authenticated (XEP-0220, §13.7 of RFC 6120)

    __hash__ = object.__hash__  # as State.__hash__


class Action(Enum):
    """What the driver does on a transition, after setting the next state."""

    NONE = auto()  #: nothing beyond the new state
    RESTART = auto()  #: start a new stream on this connection (RFC 6120 §4.3.3)
    GO_LIVE = auto()  #: stanzas flow: the parser stops holding, timers end
    CLOSE = auto()  #: queue our ``</stream:stream>`` unless sent


#: States after which no input changes anything but end of file.
TERMINAL: Final = frozenset({State.CLOSED, State.ERROR})

# The states the per-stanza paths test, as module globals: in Python 3.11
# ``State.READY`` is looked up through the slot of ``EnumType.__getattr__``
# (~1,000 instructions, callgrind), a global in ~100 (fixed in 3.12).
READY: Final = State.READY
TLS_PENDING: Final = State.TLS_PENDING
#: :data:`TERMINAL` as a tuple (``in`` by identity, no hashing).
ENDED: Final = (State.CLOSED, State.ERROR)

_S = State
_I = Input
_A = Action
Transitions = dict[tuple[State, Input], tuple[Action, State]]


def _shared(states: frozenset[State], live: frozenset[State]) -> Transitions:
    """The inputs every role handles the same way: footer, stream error, end
    of file, a stream error we send, and a clean local close."""
    table: Transitions = {}
    for state in State:
        if state in states and state not in TERMINAL:
            table[state, _I.PROTOCOL_ERROR] = (_A.NONE, _S.ERROR)
            table[state, _I.PEER_EOF] = (_A.NONE, _S.CLOSED)
            table[state, _I.LOCAL_CLOSE] = (_A.CLOSE, _S.CLOSING)
        if state in live:
            table[state, _I.PEER_FOOTER] = (_A.CLOSE, _S.CLOSED)
            table[state, _I.PEER_STREAM_ERROR] = (_A.CLOSE, _S.CLOSED)
    table[_S.CLOSED, _I.PEER_EOF] = (_A.NONE, _S.CLOSED)
    table[_S.CLOSED, _I.LOCAL_CLOSE] = (_A.CLOSE, _S.CLOSED)
    table[_S.CLOSED, _I.PROTOCOL_ERROR] = (_A.NONE, _S.ERROR)  # close(condition) after EOF
    table[_S.ERROR, _I.PEER_EOF] = (_A.NONE, _S.ERROR)
    return table


_SERVER_STATES: Final = frozenset(State) - {
    _S.AWAIT_FEATURES,
    _S.BINDING,
    _S.RESUMING,
}
_CLIENT_STATES: Final = frozenset(State) - {
    _S.AWAIT_CREDENTIALS,
    _S.AWAIT_DERIVATION,
    _S.AWAIT_REGISTRATION,
    _S.AWAIT_BIND,
    _S.AWAIT_RESUME,
}
# States in which the parser runs, so a footer or a stream error can arrive.
_SERVER_LIVE: Final = frozenset({_S.AWAIT_HEADER, _S.NEGOTIATING, _S.SASL, _S.READY, _S.CLOSING})
_CLIENT_LIVE: Final = frozenset(
    {_S.AWAIT_HEADER, _S.AWAIT_FEATURES, _S.NEGOTIATING, _S.SASL, _S.BINDING}
    | {_S.RESUMING, _S.READY, _S.CLOSING}
)

#: The receiving entity of a client-to-server stream (RFC 6120, XEP-0077,
#: XEP-0198). The server NEGOTIATING state spans the pre- and post-
#: authentication features; ``authenticated_jid`` tells them apart.
SERVER_TRANSITIONS: Final[Transitions] = {
    **_shared(_SERVER_STATES, _SERVER_LIVE),
    (_S.AWAIT_HEADER, _I.PEER_HEADER): (_A.NONE, _S.NEGOTIATING),
    (_S.NEGOTIATING, _I.TLS_STARTED): (_A.NONE, _S.TLS_PENDING),
    (_S.NEGOTIATING, _I.TLS_REFUSED): (_A.CLOSE, _S.CLOSING),
    (_S.TLS_PENDING, _I.LOCAL_TLS_ESTABLISHED): (_A.RESTART, _S.AWAIT_HEADER),
    (_S.NEGOTIATING, _I.SASL_STARTED): (_A.NONE, _S.SASL),
    (_S.SASL, _I.NEED_CREDENTIALS): (_A.NONE, _S.AWAIT_CREDENTIALS),
    (_S.SASL, _I.NEED_DERIVATION): (_A.NONE, _S.AWAIT_DERIVATION),
    (_S.AWAIT_CREDENTIALS, _I.LOCAL_CREDENTIALS): (_A.NONE, _S.SASL),
    (_S.AWAIT_DERIVATION, _I.LOCAL_DERIVED): (_A.NONE, _S.SASL),
    (_S.SASL, _I.SASL_SUCCEEDED): (_A.RESTART, _S.AWAIT_HEADER),
    (_S.SASL, _I.SASL2_SUCCEEDED): (_A.NONE, _S.NEGOTIATING),  # XEP-0388 §2.6.1
    # A failure before the exchange (bad mechanism), during it, or instead of
    # answering the I/O layer's lookup (refuse_credentials, <abort/>).
    (_S.NEGOTIATING, _I.SASL_FAILED): (_A.NONE, _S.NEGOTIATING),
    (_S.SASL, _I.SASL_FAILED): (_A.NONE, _S.NEGOTIATING),
    (_S.AWAIT_CREDENTIALS, _I.SASL_FAILED): (_A.NONE, _S.NEGOTIATING),
    (_S.AWAIT_DERIVATION, _I.SASL_FAILED): (_A.NONE, _S.NEGOTIATING),
    (_S.NEGOTIATING, _I.REGISTRATION_REQUESTED): (_A.NONE, _S.AWAIT_REGISTRATION),
    (_S.AWAIT_REGISTRATION, _I.LOCAL_REGISTRATION_RESULT): (_A.NONE, _S.NEGOTIATING),
    (_S.NEGOTIATING, _I.BIND_REQUESTED): (_A.NONE, _S.AWAIT_BIND),
    (_S.NEGOTIATING, _I.BOUND): (_A.GO_LIVE, _S.READY),
    (_S.AWAIT_BIND, _I.BOUND): (_A.GO_LIVE, _S.READY),
    (_S.AWAIT_BIND, _I.LOCAL_BIND_REFUSED): (_A.NONE, _S.NEGOTIATING),
    (_S.NEGOTIATING, _I.RESUME_REQUESTED): (_A.NONE, _S.AWAIT_RESUME),
    (_S.AWAIT_RESUME, _I.RESUMED): (_A.GO_LIVE, _S.READY),
    (_S.AWAIT_RESUME, _I.LOCAL_RESUME_FAILED): (_A.NONE, _S.NEGOTIATING),
}

#: The initiating entity of a client-to-server stream.
CLIENT_TRANSITIONS: Final[Transitions] = {
    **_shared(_CLIENT_STATES, _CLIENT_LIVE),
    (_S.AWAIT_HEADER, _I.PEER_HEADER): (_A.NONE, _S.AWAIT_FEATURES),
    (_S.AWAIT_FEATURES, _I.PEER_FEATURES): (_A.NONE, _S.NEGOTIATING),
    (_S.NEGOTIATING, _I.TLS_STARTED): (_A.NONE, _S.TLS_PENDING),
    (_S.TLS_PENDING, _I.LOCAL_TLS_ESTABLISHED): (_A.RESTART, _S.AWAIT_HEADER),
    (_S.NEGOTIATING, _I.SASL_STARTED): (_A.NONE, _S.SASL),
    (_S.SASL, _I.SASL_SUCCEEDED): (_A.RESTART, _S.AWAIT_HEADER),
    (_S.SASL, _I.SASL_FAILED): (_A.CLOSE, _S.CLOSING),  # the client gives up
    # XEP-0388 §2.6.1: no restart; the post-authentication features follow
    (_S.SASL, _I.SASL2_SUCCEEDED): (_A.NONE, _S.AWAIT_FEATURES),
    (_S.NEGOTIATING, _I.RESUME_STARTED): (_A.NONE, _S.RESUMING),
    (_S.RESUMING, _I.RESUMED): (_A.GO_LIVE, _S.READY),
    (_S.NEGOTIATING, _I.BIND_STARTED): (_A.NONE, _S.BINDING),
    (_S.RESUMING, _I.BIND_STARTED): (_A.NONE, _S.BINDING),  # after <failed/>
    (_S.BINDING, _I.BOUND): (_A.GO_LIVE, _S.READY),
    (_S.NEGOTIATING, _I.NEGOTIATION_FAILED): (_A.CLOSE, _S.CLOSED),
    (_S.RESUMING, _I.NEGOTIATION_FAILED): (_A.CLOSE, _S.CLOSED),
    (_S.BINDING, _I.NEGOTIATION_FAILED): (_A.CLOSE, _S.CLOSED),
}


# A component stream (XEP-0114) has no features, TLS, SASL or restarts: the
# header, then one <handshake/> exchange, then stanzas.
_COMPONENT_STATES: Final = frozenset(
    {_S.AWAIT_HEADER, _S.NEGOTIATING, _S.READY, _S.CLOSING, _S.CLOSED, _S.ERROR}
)
_COMPONENT_LIVE: Final = frozenset({_S.AWAIT_HEADER, _S.NEGOTIATING, _S.READY, _S.CLOSING})

#: The server side of a component stream (``jabber:component:accept``,
#: XEP-0114 §3): NEGOTIATING waits for the component's ``<handshake/>``.
COMPONENT_SERVER_TRANSITIONS: Final[Transitions] = {
    **_shared(_COMPONENT_STATES, _COMPONENT_LIVE),
    (_S.AWAIT_HEADER, _I.PEER_HEADER): (_A.NONE, _S.NEGOTIATING),
    (_S.NEGOTIATING, _I.HANDSHAKE_SUCCEEDED): (_A.GO_LIVE, _S.READY),
}

#: The component side: NEGOTIATING has sent ``<handshake/>`` and waits for
#: the server's empty one.
COMPONENT_CLIENT_TRANSITIONS: Final[Transitions] = {
    **_shared(_COMPONENT_STATES, _COMPONENT_LIVE),
    (_S.AWAIT_HEADER, _I.PEER_HEADER): (_A.NONE, _S.NEGOTIATING),
    (_S.NEGOTIATING, _I.HANDSHAKE_SUCCEEDED): (_A.GO_LIVE, _S.READY),
}


def is_peer_input(item: Input) -> bool:
    """Inputs caused by the peer's bytes: a missing pair is the peer's fault."""
    return item.name.startswith("PEER_")


def is_local_input(item: Input) -> bool:
    """Inputs caused by an I/O layer call: a missing pair is its misuse."""
    return item.name.startswith("LOCAL_")


def render_table(table: Transitions) -> str:
    """The table as Markdown rows (state, input, action, next state), for the docs."""
    rows = ["| state | input | action | next state |", "|---|---|---|---|"]
    order = {s: i for i, s in enumerate(State)}
    inputs = {s: i for i, s in enumerate(Input)}
    for (state, item), (action, target) in sorted(
        table.items(), key=lambda kv: (order[kv[0][0]], inputs[kv[0][1]])
    ):
        rows.append(f"| {state.name} | {item.name} | {action.name} | {target.name} |")
    return "\n".join(rows) + "\n"
