"""One answer style: ``conn.send(answer)`` (stream/answers.py) does exactly what
the bespoke answer methods do, byte for byte and event for event; the methods
stay as aliases for now."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from xmpp_sansio.errors import LocalProtocolError, StanzaErrorCondition
from xmpp_sansio.jid import JID
from xmpp_sansio.sasl import SASLCondition
from xmpp_sansio.sm import SMState
from xmpp_sansio.stream.answers import (
    Answer,
    BindAccepted,
    BindRefused,
    CredentialsProvided,
    CredentialsRefused,
    DerivationProvided,
    RegistrationAnswered,
    ResumeAccepted,
    ResumeRejected,
    TLSEstablished,
    TLSInfo,
)
from xmpp_sansio.stream.config import ClientConfig, ServerConfig
from xmpp_sansio.stream.connection import ClientConnection, ServerConnection
from xmpp_sansio.stream.events import (
    CredentialsRequested,
    DerivationRequested,
    Event,
)
from xmpp_sansio.testing import derive, make_credentials, seeded_rng

LOOKUP = make_credentials({"juliet": "r0m30myr0m30"})
HEADER = (
    b"<?xml version='1.0'?><stream:stream to='capulet.example' version='1.0' "
    b"xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>"
)
AUTH = (
    b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>"
    b"AGp1bGlldAByMG0zMG15cjBtMzA=</auth>"
)
BIND = b"<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>"
REGISTER = (
    b"<iq type='set' id='r1'><query xmlns='jabber:iq:register'>"
    b"<username>romeo</username><password>s3cr3t-p4ss</password></query></iq>"
)
RESUME = b"<resume xmlns='urn:xmpp:sm:3' previd='old' h='0'/>"
STARTTLS = b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"
FULL = JID.parse("juliet@capulet.example/balcony")


def session() -> SMState:
    return SMState(id="old", resume=True, max=60, jid=FULL)


# (server config, tls_active, input before the request, the request's answer as a
# method call, the same answer as a value, input after it)
Method = Callable[[ServerConnection, Event], None]
CASES: dict[
    str, tuple[dict[str, object], bool, bytes, Method, Callable[[Event], Answer], bytes]
] = {
    "credentials": (
        {},
        True,
        HEADER + AUTH,
        lambda s, e: s.provide_credentials(LOOKUP("juliet", "sha256")),
        lambda e: CredentialsProvided(LOOKUP("juliet", "sha256")),
        b"",
    ),
    "refused": (
        {},
        True,
        HEADER + AUTH,
        lambda s, e: s.refuse_credentials(SASLCondition.TEMPORARY_AUTH_FAILURE),
        lambda e: CredentialsRefused(),
        b"",
    ),
    "bind-accepted": (
        {"ask_before_bind": True},
        True,
        HEADER + AUTH + HEADER + BIND,
        lambda s, e: s.bind_accepted(),
        lambda e: BindAccepted(),
        b"",
    ),
    "bind-refused": (
        {"ask_before_bind": True},
        True,
        HEADER + AUTH + HEADER + BIND,
        lambda s, e: s.bind_refused(StanzaErrorCondition.CONFLICT),
        lambda e: BindRefused(StanzaErrorCondition.CONFLICT),
        BIND,
    ),
    "registration": (
        {"allow_registration": True},
        True,
        HEADER + REGISTER,
        lambda s, e: s.registration_result(None),
        lambda e: RegistrationAnswered(),
        b"",
    ),
    "registration-conflict": (
        {"allow_registration": True},
        True,
        HEADER + REGISTER,
        lambda s, e: s.registration_result(StanzaErrorCondition.CONFLICT),
        lambda e: RegistrationAnswered(StanzaErrorCondition.CONFLICT),
        b"",
    ),
    "resume-accepted": (
        {"sm_resume_timeout": 60.0},
        True,
        HEADER + AUTH + HEADER + RESUME,
        lambda s, e: s.resume_accepted(session()),
        lambda e: ResumeAccepted(session()),
        b"",
    ),
    "resume-rejected": (
        {"sm_resume_timeout": 60.0},
        True,
        HEADER + AUTH + HEADER + RESUME,
        lambda s, e: s.resume_failed(),
        lambda e: ResumeRejected(),
        BIND,
    ),
    "tls": (
        {},
        False,
        HEADER + STARTTLS,
        lambda s, e: s.tls_established(TLSInfo()),
        lambda e: TLSEstablished(TLSInfo()),
        HEADER,
    ),
}


def run(name: str, *, by_value: bool) -> list[object]:
    config_kw, tls, before, method, value, after = CASES[name]
    config = ServerConfig(
        domains=frozenset({"capulet.example"}),
        rng=seeded_rng(7),
        **config_kw,  # type: ignore[arg-type]
    )
    server = ServerConnection(config, tls_active=tls)
    transcript: list[object] = []

    def pump(data: bytes) -> Event | None:
        """Feed ``data``; answer credentials and derivations on the way; return
        the first other request."""
        if data:
            server.receive_data(data)
        while (event := server.next_event()) is not None:
            transcript.append(event)
            if isinstance(event, CredentialsRequested) and name not in ("credentials", "refused"):
                server.provide_credentials(LOOKUP(event.username, event.hash_name))
            elif isinstance(event, DerivationRequested):
                server.provide_derived(derive(event))
            elif type(event).__name__.endswith("Requested"):
                return event
        return None

    request = pump(before)
    assert request is not None, transcript
    transcript.append(server.data_to_send())
    if by_value:
        server.send(value(request))
    else:
        method(server, request)
    transcript.append(server.data_to_send())
    pump(after)
    transcript += [server.data_to_send(), server.state]
    assert server.state.name not in ("AWAIT_CREDENTIALS", "AWAIT_RESUME", "ERROR", "CLOSED")
    return transcript


@pytest.mark.parametrize("name", sorted(CASES))
def test_send_answer_does_what_the_bespoke_method_does(name: str) -> None:
    by_method = run(name, by_value=False)
    assert run(name, by_value=True) == by_method


def test_derivation_answer_matches_provide_derived() -> None:
    outputs = []
    for by_value in (False, True):
        config = ServerConfig(domains=frozenset({"capulet.example"}), rng=lambda n: b"\x07" * n)
        server = ServerConnection(config, tls_active=True)
        server.receive_data(HEADER + AUTH)
        events = list(iter(server.next_event, None))
        server.provide_credentials(LOOKUP("juliet", "sha256"))
        (request,) = list(iter(server.next_event, None))
        assert isinstance(request, DerivationRequested)
        if by_value:
            server.send(DerivationProvided(derive(request)))
        else:
            server.provide_derived(derive(request))
        outputs.append((events, server.data_to_send(), list(iter(server.next_event, None))))
    assert outputs[0] == outputs[1]
    assert b"<success" in outputs[0][1]


def test_an_answer_nobody_asked_for_is_a_local_protocol_error() -> None:
    server = ServerConnection(
        ServerConfig(rng=seeded_rng(0), domains=frozenset({"capulet.example"}))
    )
    with pytest.raises(LocalProtocolError):
        server.send(BindAccepted())
    client = ClientConnection(
        ClientConfig(rng=seeded_rng(0), jid=JID.parse("juliet@capulet.example"), password="x")
    )
    with pytest.raises(LocalProtocolError):
        client.send(CredentialsRefused())  # a server-side answer
    with pytest.raises(LocalProtocolError):
        client.send(TLSEstablished())  # no TLS negotiation pending


def test_seeded_rng_is_reproducible_and_seed_dependent() -> None:
    first, again, other = seeded_rng(7), seeded_rng(7), seeded_rng(8)
    assert [first(12), first(40)] == [again(12), again(40)]
    assert seeded_rng(7)(12) != other(12)
    assert len(first(100)) == 100 and first(16) != first(16)
