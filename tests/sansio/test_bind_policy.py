"""The server asks its I/O layer before binding (``ask_before_bind``, RFC 6120
§7.6.2.1 resource-constraint) and may refuse credentials without looking them
up (``refuse_credentials``, RFC 6120 §6.4.5, §6.5.12 temporary-auth-failure)."""

from __future__ import annotations

import pytest

from xmpp_sansio.errors import (
    LocalProtocolError,
    RemoteProtocolError,
    StanzaErrorCondition,
    StreamErrorCondition,
)
from xmpp_sansio.jid import JID
from xmpp_sansio.sasl import SASLCondition
from xmpp_sansio.stream.config import Limits, ServerConfig
from xmpp_sansio.stream.connection import ServerConnection, State
from xmpp_sansio.stream.events import (
    Authenticated,
    AuthenticationFailed,
    BindRequested,
    CredentialsRequested,
    DerivationRequested,
    Event,
    ResourceBound,
    StanzaReceived,
)
from xmpp_sansio.testing import derive, make_credentials, seeded_rng

PASSWORDS = {"juliet": "r0m30myr0m30"}
LOOKUP = make_credentials(PASSWORDS)
HEADER = (
    b"<?xml version='1.0'?><stream:stream to='capulet.example' version='1.0' "
    b"xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>"
)
AUTH_RIGHT = (
    b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>"
    b"AGp1bGlldAByMG0zMG15cjBtMzA=</auth>"
)
AUTH_WRONG = b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGp1bGlldAB4</auth>"
JULIET = JID.parse("juliet@capulet.example")


def bind(iq_id: str, resource: str | None = None) -> bytes:
    inner = f"<resource>{resource}</resource>" if resource is not None else ""
    return (
        f"<iq type='set' id='{iq_id}'>"
        f"<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>{inner}</bind></iq>"
    ).encode()


def make_server(**kw: object) -> ServerConnection:
    config = ServerConfig(rng=seeded_rng(0), domains=frozenset({"capulet.example"}), **kw)  # type: ignore[arg-type]
    return ServerConnection(config, tls_active=True)


def state(server: ServerConnection) -> State:
    """The state, read through a call so that mypy does not narrow it."""
    return server.state


def drain(server: ServerConnection) -> list[Event]:
    return list(iter(server.next_event, None))


def provide(server: ServerConnection, request: CredentialsRequested) -> None:
    """Answer the credentials look-up and, for PLAIN, the derivation that follows."""
    server.provide_credentials(LOOKUP(request.username, request.hash_name))
    if server.state is State.AWAIT_DERIVATION:
        (derivation,) = drain(server)
        assert isinstance(derivation, DerivationRequested)
        server.provide_derived(derive(derivation))


def authenticated(**kw: object) -> ServerConnection:
    """A server stream past SASL and the restart, waiting for a bind request."""
    server = make_server(**kw)
    server.receive_data(HEADER + AUTH_RIGHT)
    (_, request) = drain(server)
    assert isinstance(request, CredentialsRequested)
    provide(server, request)
    assert any(isinstance(e, Authenticated) for e in drain(server))
    server.receive_data(HEADER)
    drain(server)
    server.data_to_send()
    assert state(server) is State.NEGOTIATING
    return server


# -- asking before binding --------------------------------------------------------------


def test_bind_without_the_flag_is_answered_at_once() -> None:
    server = authenticated()
    server.receive_data(bind("b1", "balcony"))
    assert drain(server) == [ResourceBound(JULIET.with_resource("balcony"))]
    assert b'type="result"' in server.data_to_send()
    assert state(server) is State.READY


def test_bind_request_waits_for_the_io_layer_then_is_accepted() -> None:
    server = authenticated(ask_before_bind=True)
    # A stanza pipelined after the bind request waits until the bind is decided.
    server.receive_data(bind("b1", "balcony") + b"<message to='romeo@capulet.example'/>")
    assert drain(server) == [BindRequested(JULIET.with_resource("balcony"))]
    assert state(server) is State.AWAIT_BIND
    assert server.data_to_send() == b""
    assert server.jid is None
    server.bind_accepted()
    out = server.data_to_send()
    assert b'<iq type="result" id="b1">' in out
    assert b"<jid>juliet@capulet.example/balcony</jid>" in out
    events = drain(server)
    assert events[0] == ResourceBound(JULIET.with_resource("balcony"))
    assert isinstance(events[1], StanzaReceived)
    assert state(server) is State.READY
    assert server.jid == JULIET.with_resource("balcony")


def test_a_generated_resource_is_asked_for_too() -> None:
    server = authenticated(ask_before_bind=True)
    server.receive_data(bind("b1"))
    (event,) = drain(server)
    assert isinstance(event, BindRequested)
    assert event.jid.bare == JULIET and event.jid.resource
    server.bind_accepted()
    assert drain(server) == [ResourceBound(event.jid)]


def test_an_invalid_resource_is_bad_request_without_asking() -> None:
    server = authenticated(ask_before_bind=True)
    server.receive_data(bind("b1", "x" * 1100))  # RFC 7622 §3.4: at most 1023 bytes
    events = drain(server)
    assert not any(isinstance(e, BindRequested) for e in events)
    assert b"bad-request" in server.data_to_send()
    assert state(server) is State.NEGOTIATING


def test_refused_bind_is_resource_constraint_and_the_client_may_retry() -> None:
    server = authenticated(ask_before_bind=True)
    server.receive_data(bind("b1", "balcony"))
    drain(server)
    server.bind_refused()
    assert server.data_to_send() == (
        b'<iq type="error" id="b1"><error type="wait">'
        b'<resource-constraint xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/>'
        b"</error></iq>"
    )
    assert state(server) is State.NEGOTIATING
    assert server.jid is None
    assert drain(server) == []
    # Still in the binding stage: another attempt is asked about again.
    server.receive_data(bind("b2", "orchard"))
    assert drain(server) == [BindRequested(JULIET.with_resource("orchard"))]
    server.bind_accepted()
    assert b'<iq type="result" id="b2">' in server.data_to_send()
    assert drain(server) == [ResourceBound(JULIET.with_resource("orchard"))]
    assert state(server) is State.READY


def test_refusal_with_another_condition_uses_its_error_type() -> None:
    server = authenticated(ask_before_bind=True)
    server.receive_data(bind("b1", "balcony"))
    drain(server)
    server.bind_refused(StanzaErrorCondition.NOT_ALLOWED)
    out = server.data_to_send()
    assert b'<error type="cancel"><not-allowed ' in out
    assert state(server) is State.NEGOTIATING


def test_a_pipelined_retry_is_processed_after_the_refusal() -> None:
    server = authenticated(ask_before_bind=True)
    server.receive_data(bind("b1", "balcony") + bind("b2", "orchard"))
    assert drain(server) == [BindRequested(JULIET.with_resource("balcony"))]
    server.bind_refused()
    assert drain(server) == [BindRequested(JULIET.with_resource("orchard"))]
    server.bind_accepted()
    out = server.data_to_send()
    assert out.index(b'id="b1"') < out.index(b'<iq type="result" id="b2">')
    assert drain(server) == [ResourceBound(JULIET.with_resource("orchard"))]


def test_bind_answers_need_a_pending_request() -> None:
    server = authenticated(ask_before_bind=True)
    with pytest.raises(LocalProtocolError):
        server.bind_accepted()
    with pytest.raises(LocalProtocolError):
        server.bind_refused()
    server.receive_data(bind("b1", "balcony"))
    drain(server)
    server.bind_accepted()
    with pytest.raises(LocalProtocolError):
        server.bind_accepted()


def test_the_negotiation_deadline_still_runs_while_the_bind_is_pending() -> None:
    server = authenticated(ask_before_bind=True)
    server.start_timer(0.0, 30.0)
    server.receive_data(bind("b1", "balcony"))
    drain(server)
    server.handle_timer(30.0)
    assert b"connection-timeout" in server.data_to_send()
    assert server.should_close


# -- refusing credentials ------------------------------------------------------------------


def credentials_requested(**kw: object) -> ServerConnection:
    server = make_server(**kw)
    server.receive_data(HEADER + AUTH_RIGHT)
    (_, request) = drain(server)
    assert isinstance(request, CredentialsRequested)
    server.data_to_send()
    return server


def test_refuse_credentials_sends_temporary_auth_failure_and_the_stream_continues() -> None:
    server = credentials_requested()
    server.refuse_credentials()
    assert server.data_to_send() == (
        b'<failure xmlns="urn:ietf:params:xml:ns:xmpp-sasl"><temporary-auth-failure/></failure>'
    )
    assert drain(server) == [AuthenticationFailed("temporary-auth-failure", None, "juliet")]
    assert state(server) is State.NEGOTIATING
    assert server.auth_failures == 1
    assert not server.should_close
    # The client tries again on the same stream, and this time it is let in.
    server.receive_data(AUTH_RIGHT)
    (request,) = drain(server)
    assert isinstance(request, CredentialsRequested)
    provide(server, request)
    assert b"<success " in server.data_to_send()
    assert any(isinstance(e, Authenticated) for e in drain(server))


def test_refuse_credentials_with_another_condition() -> None:
    server = credentials_requested()
    server.refuse_credentials(SASLCondition.ACCOUNT_DISABLED)
    assert b"<account-disabled/>" in server.data_to_send()
    assert drain(server) == [AuthenticationFailed("account-disabled", None, "juliet")]


def test_refusals_count_toward_max_auth_attempts() -> None:
    # first attempt: a wrong password
    server = make_server(limits=Limits(max_auth_attempts=3))
    server.receive_data(HEADER + AUTH_WRONG)
    (_, request) = drain(server)
    assert isinstance(request, CredentialsRequested)
    provide(server, request)
    assert drain(server) == [
        AuthenticationFailed("not-authorized", None, "juliet", credentials_checked=True)
    ]
    # second: refused
    server.receive_data(AUTH_RIGHT)
    drain(server)
    server.refuse_credentials()
    assert server.auth_failures == 2 and not server.should_close
    drain(server)
    # third: refused again, which uses up the attempts
    server.receive_data(AUTH_RIGHT)
    drain(server)
    server.refuse_credentials()
    assert server.auth_failures == 3
    with pytest.raises(RemoteProtocolError) as info:
        drain(server)
    assert info.value.condition is StreamErrorCondition.POLICY_VIOLATION
    out = server.data_to_send()
    assert b"<temporary-auth-failure/>" in out and b"<policy-violation " in out
    assert server.should_close


def test_refuse_credentials_needs_a_pending_request() -> None:
    server = make_server()
    server.receive_data(HEADER)
    drain(server)
    with pytest.raises(LocalProtocolError):
        server.refuse_credentials()
    server = credentials_requested()
    with pytest.raises(LocalProtocolError):
        server.refuse_credentials(SASLCondition.ABORTED)
    assert state(server) is State.AWAIT_CREDENTIALS
