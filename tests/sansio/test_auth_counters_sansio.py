"""The server connection's side of issue 10 items 6, 11 and 14, sans I/O.

* Every SASL failure counts toward ``max_auth_attempts`` (RFC 6120 §6.4.5),
  ``<abort/>`` included; :class:`AuthenticationFailed` says whether a
  credential was checked (what the I/O layer's back-off counts).
* PLAIN never derives: it emits :class:`DerivationRequested` and waits in
  ``AWAIT_DERIVATION`` for ``provide_derived``; unknown and known users ask
  for the same derivation.
* The SCRAM decoy's first challenge has the configured iterations and a salt
  as long as a real one, stable per username for one ``decoy_key``.
"""

from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xmpp_sansio.errors import LocalProtocolError, RemoteProtocolError, StreamErrorCondition
from xmpp_sansio.sasl import ChannelBinding
from xmpp_sansio.stream.config import Limits, ServerConfig
from xmpp_sansio.stream.connection import ServerConnection, State, TLSInfo
from xmpp_sansio.stream.events import (
    Authenticated,
    AuthenticationFailed,
    CredentialsRequested,
    DerivationRequested,
    Event,
)
from xmpp_sansio.testing import derive, framed, make_credentials, seeded_rng

ITERATIONS = 64
LOOKUP = make_credentials({"juliet": "r0m30myr0m30"}, iterations=ITERATIONS)
HEADER = (
    b"<?xml version='1.0'?><stream:stream to='capulet.example' version='1.0' "
    b"xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>"
)
SASL = "urn:ietf:params:xml:ns:xmpp-sasl"
ABORT = f"<abort xmlns='{SASL}'/>".encode()

# Every transcript runs over TCP and RFC 7395 WebSocket framing.
pytestmark = pytest.mark.usefixtures("any_framing")


def auth(mechanism: str, data: bytes | None = None) -> bytes:
    payload = b"" if data is None else (base64.b64encode(data) or b"=")
    return f"<auth xmlns='{SASL}' mechanism='{mechanism}'>".encode() + payload + b"</auth>"


def server(**kw: object) -> ServerConnection:
    config = ServerConfig(
        rng=seeded_rng(0),
        domains=frozenset({"capulet.example"}),
        decoy_key=b"fixed decoy key",
        decoy_iterations=ITERATIONS,
        **kw,  # type: ignore[arg-type]
    )
    binding = ChannelBinding("tls-server-end-point", b"\x01" * 32)
    conn = framed(
        ServerConnection(config, tls_active=True, tls_info=TLSInfo(channel_binding=binding))
    )
    conn.receive_data(HEADER)
    drain(conn)
    conn.data_to_send()
    return conn


def drain(conn: ServerConnection) -> list[Event]:
    return list(iter(conn.next_event, None))


def answer_all(conn: ServerConnection) -> list[Event]:
    """Drain, answering credential look-ups and derivations like an I/O layer."""
    seen: list[Event] = []
    while events := drain(conn):
        for event in events:
            seen.append(event)
            if isinstance(event, CredentialsRequested):
                conn.provide_credentials(LOOKUP(event.username, event.hash_name))
            elif isinstance(event, DerivationRequested):
                conn.provide_derived(derive(event))
    return seen


def failures(events: list[Event]) -> list[AuthenticationFailed]:
    return [e for e in events if isinstance(e, AuthenticationFailed)]


# -- the per-stream attempt counter --------------------------------------------------


def test_abort_counts_toward_max_auth_attempts() -> None:
    conn = server(limits=Limits(max_auth_attempts=2))
    conn.receive_data(auth("PLAIN") + ABORT)
    assert failures(drain(conn)) == [AuthenticationFailed("aborted", None, None)]
    assert conn.auth_failures == 1 and not conn.should_close
    conn.receive_data(auth("PLAIN") + ABORT)
    with pytest.raises(RemoteProtocolError) as info:
        drain(conn)
    assert info.value.condition is StreamErrorCondition.POLICY_VIOLATION


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                auth("X-UNKNOWN", b"x"),
                auth("PLAIN") + ABORT,
                auth("PLAIN", b"no nuls"),
                auth("SCRAM-SHA-256", b"y,,n=juliet,r=abc"),
                auth("PLAIN", b"\0juliet\0wrong"),
                f"<response xmlns='{SASL}'/>".encode(),
            ]
        ),
        min_size=1,
        max_size=8,
    ),
    st.integers(min_value=1, max_value=6),
)
def test_every_failure_counts_and_the_limit_ends_the_stream(
    attempts: list[bytes], limit: int
) -> None:
    """Any mix of failed attempts: each sends one ``<failure/>`` and counts; the
    stream ends with policy-violation exactly at ``max_auth_attempts``."""
    conn = server(limits=Limits(max_auth_attempts=limit))
    sent = b""
    for n, attempt in enumerate(attempts, start=1):
        conn.receive_data(attempt)
        try:
            answer_all(conn)
        except RemoteProtocolError as exc:
            assert exc.condition is StreamErrorCondition.POLICY_VIOLATION
            assert n == limit
            break
        sent += conn.data_to_send()
        assert conn.auth_failures == n == sent.count(b"<failure ")
    else:
        assert len(attempts) < limit


# -- what the back-off may count ------------------------------------------------------------


@pytest.mark.parametrize(
    ("attempt", "condition", "checked"),
    [
        (auth("PLAIN", b"\0juliet\0wrong"), "not-authorized", True),
        (auth("PLAIN", b"\0nobody\0wrong"), "not-authorized", True),
        (auth("X-UNKNOWN", b"x"), "invalid-mechanism", False),
        (auth("PLAIN", b"no nuls"), "malformed-request", False),
        (auth("PLAIN") + ABORT, "aborted", False),
        (auth("SCRAM-SHA-256", b"y,,n=juliet,r=abc"), "not-authorized", False),  # downgrade
        (auth("SCRAM-SHA-256-PLUS", b"p=tls-unique,,n=juliet,r=abc"), "not-authorized", False),
    ],
    ids=["wrong-password", "unknown-user", "mechanism", "malformed", "abort", "downgrade", "cb"],
)
def test_failures_say_whether_a_credential_was_checked(
    attempt: bytes, condition: str, checked: bool
) -> None:
    conn = server()
    conn.receive_data(attempt)
    (failure,) = failures(answer_all(conn))
    assert (failure.condition, failure.credentials_checked) == (condition, checked)


def test_back_off_refusal_is_not_a_checked_failure() -> None:
    conn = server()
    conn.receive_data(auth("PLAIN", b"\0juliet\0r0m30myr0m30"))
    (request,) = drain(conn)
    assert isinstance(request, CredentialsRequested)
    conn.refuse_credentials()
    (failure,) = failures(drain(conn))
    assert failure.condition == "temporary-auth-failure" and not failure.credentials_checked


# -- PLAIN asks for its derivation ----------------------------------------------------------


def plain_derivation(
    username: str, password: str = "wrong"
) -> tuple[ServerConnection, DerivationRequested]:
    conn = server()
    conn.receive_data(auth("PLAIN", f"\0{username}\0{password}".encode()))
    (request,) = drain(conn)
    assert isinstance(request, CredentialsRequested)
    conn.provide_credentials(LOOKUP(request.username, request.hash_name))
    (derivation,) = drain(conn)
    assert isinstance(derivation, DerivationRequested)
    assert conn.state is State.AWAIT_DERIVATION
    assert conn.data_to_send() == b""  # nothing is said before the check
    return conn, derivation


def test_plain_waits_for_the_derivation_and_then_succeeds() -> None:
    conn, derivation = plain_derivation("juliet", "r0m30myr0m30")
    assert "r0m30myr0m30" not in repr(derivation)  # the password is kept out of logs
    conn.provide_derived(derive(derivation))
    assert b"<success " in conn.data_to_send()
    assert any(isinstance(e, Authenticated) for e in drain(conn))


def test_unknown_and_known_users_ask_for_the_same_derivation() -> None:
    _, known = plain_derivation("juliet")
    _, unknown = plain_derivation("nobody")
    assert (unknown.hash_name, unknown.iterations) == (known.hash_name, known.iterations)
    assert len(unknown.salt) == 16


def test_provide_derived_without_a_request_is_local_misuse() -> None:
    conn = server()
    with pytest.raises(LocalProtocolError):
        conn.provide_derived(b"x" * 32)


def test_input_waits_while_the_derivation_runs() -> None:
    """An ``<abort/>`` sent meanwhile is handled after the answer, in order."""
    conn, derivation = plain_derivation("juliet")
    conn.receive_data(ABORT)
    assert drain(conn) == []
    conn.provide_derived(derive(derivation))
    events = failures(drain(conn))
    assert [e.condition for e in events] == ["not-authorized", "malformed-request"]


# -- the SCRAM decoy ------------------------------------------------------------------------------


def first_challenge(username: str) -> dict[str, str]:
    conn = server()
    conn.receive_data(auth("SCRAM-SHA-256", f"n,,n={username},r=abc".encode()))
    (request,) = drain(conn)
    assert isinstance(request, CredentialsRequested)
    conn.provide_credentials(LOOKUP(request.username, request.hash_name))
    text = conn.data_to_send().decode()
    message = base64.b64decode(text.split(">", 1)[1].split("<", 1)[0]).decode()
    return dict(part.split("=", 1) for part in message.split(","))


def test_scram_decoy_has_the_configured_iterations_and_a_stable_salt() -> None:
    known, unknown = first_challenge("juliet"), first_challenge("nobody")
    assert unknown["i"] == known["i"] == str(ITERATIONS)
    assert len(base64.b64decode(unknown["s"])) == 16
    assert first_challenge("nobody")["s"] == unknown["s"]
    assert first_challenge("somebody")["s"] != unknown["s"]


def test_decoy_iterations_must_be_positive() -> None:
    with pytest.raises(ValueError, match="decoy_iterations"):
        ServerConfig(rng=seeded_rng(0), domains=frozenset({"x"}), decoy_iterations=0)
