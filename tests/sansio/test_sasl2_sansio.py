"""XEP-0388 SASL2 on the server stream, sans I/O, with the XEP's element
shapes: the ``<authentication/>`` feature (only with ``ServerConfig.sasl2``),
``<authenticate/>`` with ``<initial-response/>`` and ``<user-agent/>``,
challenges and responses, ``<success/>`` with ``<additional-data/>`` and
``<authorization-identifier/>`` followed by the post-authentication features
without a restart (§2.6.1), ``<failure/>`` carrying RFC 6120's condition
(§2.6.2), ``<abort/>``, and counting toward ``max_auth_attempts``."""

from __future__ import annotations

import base64
from xml.etree.ElementTree import fromstring

import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_auth_counters_sansio import HEADER, drain

from xmpp_sansio.errors import RemoteProtocolError
from xmpp_sansio.jid import JID
from xmpp_sansio.sasl import ChannelBinding, create_client_mechanism
from xmpp_sansio.stream.config import ServerConfig
from xmpp_sansio.stream.connection import ServerConnection, TLSInfo
from xmpp_sansio.stream.events import (
    Authenticated,
    AuthenticationFailed,
    CredentialsRequested,
    DerivationRequested,
    Event,
    ResourceBound,
)
from xmpp_sansio.stream.features.sasl2 import UserAgent, parse_user_agent
from xmpp_sansio.testing import derive, framed, make_credentials, seeded_rng

SASL2 = "urn:xmpp:sasl:2"
SASL = "urn:ietf:params:xml:ns:xmpp-sasl"
PASSWORD = "r0m30myr0m30"
# XEP-0388 §2.3, "An authentication request"
USER_AGENT = (
    "<user-agent id='d4565fa7-4d72-4749-b3d3-740edbf87770'>"
    "<software>AwesomeXMPP</software><device>Kiva's Phone</device></user-agent>"
)

LOOKUP = make_credentials({"juliet": PASSWORD})

pytestmark = pytest.mark.usefixtures("any_framing")


def answer_all(conn: ServerConnection) -> list[Event]:
    """Drain, answering look-ups and derivations as the I/O layer does."""
    seen: list[Event] = []
    while events := drain(conn):
        seen += events
        for event in events:
            if isinstance(event, CredentialsRequested):
                conn.provide_credentials(LOOKUP(event.username, event.hash_name))
            elif isinstance(event, DerivationRequested):
                conn.provide_derived(derive(event))
    return seen


def server(*, sasl2: bool = True) -> ServerConnection:
    config = ServerConfig(
        rng=seeded_rng(0),
        domains=frozenset({"capulet.example"}),
        decoy_iterations=4096,
        sasl2=sasl2,
    )
    tls = TLSInfo(channel_binding=ChannelBinding("tls-server-end-point", b"\x01" * 32))
    conn = framed(ServerConnection(config, tls_active=True, tls_info=tls))
    conn.receive_data(HEADER)
    drain(conn)
    return conn


def authenticate(mechanism: str, initial: bytes | None, extra: str = USER_AGENT) -> bytes:
    response = (
        ""
        if initial is None
        else f"<initial-response>{base64.b64encode(initial).decode()}</initial-response>"
    )
    return f"<authenticate xmlns='{SASL2}' mechanism='{mechanism}'>{response}{extra}</authenticate>".encode()


def test_authentication_is_offered_only_when_configured() -> None:
    out = server().data_to_send()
    assert f'<authentication xmlns="{SASL2}">'.encode() in out or b"urn:xmpp:sasl:2" in out
    assert b"<mechanism>SCRAM-SHA-256-PLUS</mechanism>" in out
    assert b"urn:xmpp:sasl:2" not in server(sasl2=False).data_to_send()


def test_scram_login_succeeds_without_restart_and_binds() -> None:
    conn = server()
    conn.data_to_send()
    client = create_client_mechanism(
        "SCRAM-SHA-256", username="juliet", password=PASSWORD, nonce=b"n" * 18
    )
    conn.receive_data(authenticate("SCRAM-SHA-256", client.initial_response()))
    answer_all(conn)
    out = conn.data_to_send()
    challenge = fromstring(out)
    assert challenge.tag == f"{{{SASL2}}}challenge"
    final = client.challenge(base64.b64decode(challenge.text or ""))
    conn.receive_data(
        f"<response xmlns='{SASL2}'>{base64.b64encode(final).decode()}</response>".encode()
    )
    [authenticated] = answer_all(conn)
    assert authenticated == Authenticated(
        JID.parse("juliet@capulet.example"),
        "SCRAM-SHA-256",
        UserAgent("d4565fa7-4d72-4749-b3d3-740edbf87770", "AwesomeXMPP", "Kiva's Phone"),
    )
    out = conn.data_to_send()
    end = out.index(b"</success>") + len(b"</success>")
    success = fromstring(out[:end])
    assert success.tag == f"{{{SASL2}}}success"
    additional = success.findtext(f"{{{SASL2}}}additional-data") or ""
    client.success(base64.b64decode(additional))  # the server signature verifies
    assert success.findtext(f"{{{SASL2}}}authorization-identifier") == "juliet@capulet.example"
    # §2.6.1: the features follow at once, no new stream header.
    rest = out[end:]
    assert b"<stream:stream" not in rest and b"features" in rest
    assert b"urn:ietf:params:xml:ns:xmpp-bind" in rest
    conn.receive_data(
        b"<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
        b"<resource>balcony</resource></bind></iq>"
    )
    [bound] = [e for e in answer_all(conn) if isinstance(e, ResourceBound)]
    assert str(bound.jid) == "juliet@capulet.example/balcony"


def test_plain_with_an_empty_initial_response_element_and_a_wrong_password() -> None:
    conn = server()
    conn.data_to_send()
    conn.receive_data(authenticate("PLAIN", b"\x00juliet\x00wrong"))
    [failed] = [e for e in answer_all(conn) if isinstance(e, AuthenticationFailed)]
    assert failed.condition == "not-authorized" and failed.counted
    failure = fromstring(conn.data_to_send())
    assert failure.tag == f"{{{SASL2}}}failure"
    assert failure.find(f"{{{SASL}}}not-authorized") is not None
    # §2.2: an empty <initial-response/> is an empty message, not a missing one.
    conn.receive_data(authenticate("PLAIN", b""))
    answer_all(conn)
    failure = fromstring(conn.data_to_send())
    assert failure.find(f"{{{SASL}}}malformed-request") is not None


def test_abort_and_unknown_mechanism_fail_in_the_sasl2_namespace_and_count() -> None:
    conn = server()
    conn.data_to_send()
    conn.receive_data(authenticate("PLAIN", None))  # no initial response: empty challenge
    assert fromstring(conn.data_to_send()).tag == f"{{{SASL2}}}challenge"
    conn.receive_data(f"<abort xmlns='{SASL2}'/>".encode())
    failure = fromstring(conn.data_to_send())
    assert failure.tag == f"{{{SASL2}}}failure"
    assert failure.find(f"{{{SASL}}}aborted") is not None
    conn.receive_data(authenticate("BLURDYBLOOP", b"x"))
    failure = fromstring(conn.data_to_send())
    assert failure.find(f"{{{SASL}}}invalid-mechanism") is not None
    assert conn.auth_failures == 2
    with pytest.raises(RemoteProtocolError, match="policy-violation"):
        conn.receive_data(f"<response xmlns='{SASL2}'>eA==</response>".encode())
        drain(conn)
    assert b"policy-violation" in conn.data_to_send()


def test_user_agent_of_the_xep_example_is_parsed_and_a_bad_id_refused() -> None:
    el = fromstring(authenticate("PLAIN", b"x"))
    assert parse_user_agent(el) == UserAgent(
        "d4565fa7-4d72-4749-b3d3-740edbf87770", "AwesomeXMPP", "Kiva's Phone"
    )
    assert parse_user_agent(fromstring(authenticate("PLAIN", b"x", extra=""))) is None
    conn = server()
    conn.data_to_send()
    conn.receive_data(authenticate("PLAIN", b"\x00juliet\x00x", "<user-agent id='phone'/>"))
    [failed] = drain(conn)
    assert isinstance(failed, AuthenticationFailed) and failed.condition == "malformed-request"
    assert fromstring(conn.data_to_send()).tag == f"{{{SASL2}}}failure"


def test_sasl2_elements_inside_a_classic_exchange_are_malformed() -> None:
    conn = server()
    conn.data_to_send()
    conn.receive_data(f"<auth xmlns='{SASL}' mechanism='PLAIN'/>".encode())
    conn.data_to_send()
    conn.receive_data(f"<response xmlns='{SASL2}'>eA==</response>".encode())
    [failed] = drain(conn)
    assert isinstance(failed, AuthenticationFailed) and failed.condition == "malformed-request"


@given(st.text(max_size=40))
def test_any_user_agent_id_parses_or_raises_value_error(agent_id: str) -> None:
    el = fromstring(f"<authenticate xmlns='{SASL2}'><user-agent/></authenticate>")
    user_agent = el[0]
    user_agent.set("id", agent_id)
    try:
        parsed = parse_user_agent(el)
    except ValueError:
        return
    assert parsed is not None and parsed.id is not None and len(parsed.id) == 36
