"""FAST (XEP-0484) on the server stream, sans I/O, with the XEP's element
shapes: ``<fast/>`` offered inline with the HT mechanisms the connection can
bind, ``<request-token/>`` answered by ``<token/>`` in ``<success/>``, a token
login in one round trip with no credential look-up or derivation, the
mechanism binding, replay (count), expiry, rotation and invalidation."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime
from xml.etree.ElementTree import Element, fromstring

import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_auth_counters_sansio import drain
from test_sasl2_sansio import PASSWORD, SASL, SASL2, USER_AGENT, answer_all, authenticate

from xmpp_sansio.sasl import ChannelBinding, SASLFailure
from xmpp_sansio.sasl.ht import ht_initiator_message, ht_responder, parse_ht_initial
from xmpp_sansio.stream.answers import FastToken, FastTokensProvided
from xmpp_sansio.stream.config import ServerConfig
from xmpp_sansio.stream.connection import ServerConnection, TLSInfo
from xmpp_sansio.stream.events import (
    AuthenticationFailed,
    CredentialsRequested,
    DerivationRequested,
    Event,
    FastTokenIssued,
    FastTokensRequested,
    FastTokenUsed,
    ResourceBound,
)
from xmpp_sansio.testing import framed, seeded_rng

FAST = "urn:xmpp:fast:0"
AGENT = "d4565fa7-4d72-4749-b3d3-740edbf87770"
HEADER = (
    b"<?xml version='1.0'?><stream:stream to='capulet.example' version='1.0' "
    b"xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>"
)
ENDP = b"\x01" * 32
DAY = 86400.0
NOW = 1_700_000_000.0

pytestmark = pytest.mark.usefixtures("any_framing")


def server(*, lifetime: float = 30 * DAY, now: float = NOW) -> ServerConnection:
    config = ServerConfig(
        rng=seeded_rng(0),
        domains=frozenset({"capulet.example"}),
        decoy_iterations=4096,
        sasl2=True,
        fast_token_lifetime=lifetime,
        fast_rotate_within=10 * DAY,
        clock=lambda: now,
    )
    tls = TLSInfo(channel_binding=ChannelBinding("tls-server-end-point", ENDP))
    conn = framed(ServerConnection(config, tls_active=True, tls_info=tls))
    conn.receive_data(HEADER)
    drain(conn)
    return conn


def success_of(conn: ServerConnection) -> Element:
    out = conn.data_to_send()
    for end in (b"</success>", b"</failure>"):
        if end in out:
            return fromstring(out[: out.index(end) + len(end)])
    raise AssertionError(out)


def issue_token(mechanism: str = "HT-SHA-256-NONE") -> tuple[FastTokenIssued, Element]:
    """A password login that asks for a token (XEP-0484 §3.1, §3.2)."""
    conn = server()
    conn.data_to_send()
    extra = USER_AGENT + f"<request-token xmlns='{FAST}' mechanism='{mechanism}'/>"
    conn.receive_data(authenticate("PLAIN", b"\x00juliet\x00" + PASSWORD.encode(), extra))
    [issued] = [e for e in answer_all(conn) if isinstance(e, FastTokenIssued)]
    return issued, success_of(conn)


def fast_login(
    token: bytes,
    stored: tuple[FastToken, ...],
    *,
    mechanism: str = "HT-SHA-256-NONE",
    fast: str = "<fast xmlns='urn:xmpp:fast:0'/>",
    now: float = NOW,
) -> tuple[ServerConnection, list[Event]]:
    conn = server(now=now)
    conn.data_to_send()
    cb = ENDP if mechanism.endswith("ENDP") else b""
    message = ht_initiator_message("juliet", token, cb)
    conn.receive_data(authenticate(mechanism, message, USER_AGENT + fast))
    events = drain(conn)
    asked = [e for e in events if isinstance(e, FastTokensRequested)]
    if asked:
        assert asked == [FastTokensRequested("juliet", AGENT, mechanism)]
        conn.send(FastTokensProvided(stored))
        events += drain(conn)
    return conn, events


def test_fast_is_offered_inline_with_the_mechanisms_the_connection_binds() -> None:
    out = server().data_to_send()
    assert b'<fast xmlns="urn:xmpp:fast:0">' in out
    assert b"<mechanism>HT-SHA-256-ENDP</mechanism>" in out
    assert b"<mechanism>HT-SHA-256-NONE</mechanism>" in out
    assert b"HT-SHA-256-UNIQ" not in out and b"HT-SHA-256-EXPR" not in out
    assert b"urn:xmpp:fast:0" not in server(lifetime=0).data_to_send()


def test_an_anonymous_only_host_offers_no_fast_and_no_upgrade() -> None:
    config = ServerConfig(
        rng=seeded_rng(0),
        domains=frozenset({"capulet.example", "anon.example"}),
        anonymous_domains=frozenset({"anon.example"}),
        allow_anonymous=True,
        sasl2=True,
        fast_token_lifetime=DAY,
        clock=lambda: NOW,
    )
    tls = TLSInfo(channel_binding=ChannelBinding("tls-server-end-point", ENDP))
    conn = framed(ServerConnection(config, tls_active=True, tls_info=tls))
    conn.receive_data(HEADER.replace(b"capulet.example", b"anon.example"))
    out = conn.data_to_send()
    assert b"<mechanism>ANONYMOUS</mechanism>" in out
    assert b"HT-SHA-256" not in out and b"UPGR-SCRAM" not in out


def test_request_token_is_answered_in_success_and_stored_by_the_io_layer() -> None:
    issued, success = issue_token()
    token = success.find(f"{{{FAST}}}token")
    assert token is not None
    assert token.get("token", "").encode() == issued.token and len(issued.token) >= 43
    assert issued.expiry == NOW + 30 * DAY and issued.mechanism == "HT-SHA-256-NONE"
    expiry = datetime.strptime(token.get("expiry", ""), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert expiry.timestamp() == NOW + 30 * DAY
    assert issued.user_agent.id == AGENT and str(issued.jid) == "juliet@capulet.example"
    assert issued.token.decode() not in repr(issued)  # never in repr


def test_a_token_login_is_one_round_trip_with_no_lookup_or_derivation() -> None:
    issued, _ = issue_token()
    stored = (FastToken(issued.token, issued.mechanism, issued.expiry, 0, "new"),)
    conn, events = fast_login(
        issued.token,
        stored,
        fast="<fast xmlns='urn:xmpp:fast:0' count='1'/>" + "<bind xmlns='urn:xmpp:bind:0'/>",
    )
    assert not [e for e in events if isinstance(e, (CredentialsRequested, DerivationRequested))]
    assert FastTokenUsed(issued.jid, AGENT, "new", 1, False) in events
    assert [e for e in events if isinstance(e, ResourceBound)]
    success = success_of(conn)
    assert success.tag == f"{{{SASL2}}}success"
    data = base64.b64decode(success.findtext(f"{{{SASL2}}}additional-data") or "")
    assert data == ht_responder(issued.token)  # the client verifies the server
    assert success.find(f"{{{FAST}}}token") is None  # not due for rotation


def test_channel_bound_token_checks_the_tls_server_end_point() -> None:
    issued, _ = issue_token("HT-SHA-256-ENDP")
    stored = (FastToken(issued.token, "HT-SHA-256-ENDP", issued.expiry),)
    conn, _ = fast_login(issued.token, stored, mechanism="HT-SHA-256-ENDP")
    data = base64.b64decode(success_of(conn).findtext(f"{{{SASL2}}}additional-data") or "")
    assert data == ht_responder(issued.token, ENDP)


def test_a_token_is_bound_to_its_mechanism() -> None:
    issued, _ = issue_token("HT-SHA-256-ENDP")
    stored = (FastToken(issued.token, "HT-SHA-256-ENDP", issued.expiry),)
    conn, events = fast_login(issued.token, stored, mechanism="HT-SHA-256-NONE")
    [failed] = [e for e in events if isinstance(e, AuthenticationFailed)]
    assert failed.condition == "not-authorized" and failed.credentials_checked
    assert success_of(conn).find(f"{{{SASL}}}not-authorized") is not None


def test_a_replayed_count_is_refused() -> None:
    issued, _ = issue_token()
    stored = (FastToken(issued.token, issued.mechanism, issued.expiry, count=5),)
    for count in ("5", "4"):
        _, events = fast_login(
            issued.token, stored, fast=f"<fast xmlns='urn:xmpp:fast:0' count='{count}'/>"
        )
        [failed] = [e for e in events if isinstance(e, AuthenticationFailed)]
        assert failed.condition == "not-authorized"
    conn, events = fast_login(
        issued.token, stored, fast="<fast xmlns='urn:xmpp:fast:0' count='6'/>"
    )
    assert success_of(conn).tag == f"{{{SASL2}}}success"


def test_an_expired_token_is_credentials_expired() -> None:
    issued, _ = issue_token()
    stored = (FastToken(issued.token, issued.mechanism, issued.expiry),)
    conn, events = fast_login(issued.token, stored, now=issued.expiry + 1)
    [failed] = [e for e in events if isinstance(e, AuthenticationFailed)]
    assert failed.condition == "credentials-expired"
    assert success_of(conn).find(f"{{{SASL}}}credentials-expired") is not None


def test_a_token_near_expiry_is_rotated_in_success() -> None:
    issued, _ = issue_token()
    stored = (FastToken(issued.token, issued.mechanism, NOW + DAY, 0, "current"),)
    conn, events = fast_login(issued.token, stored)
    [rotated] = [e for e in events if isinstance(e, FastTokenIssued)]
    token = success_of(conn).find(f"{{{FAST}}}token")
    assert token is not None and token.get("token", "").encode() == rotated.token
    assert rotated.token != issued.token and rotated.mechanism == issued.mechanism


def test_invalidate_drops_the_token_and_issues_none() -> None:
    issued, _ = issue_token()
    stored = (FastToken(issued.token, issued.mechanism, NOW + DAY),)
    conn, events = fast_login(
        issued.token, stored, fast="<fast xmlns='urn:xmpp:fast:0' invalidate='true'/>"
    )
    assert FastTokenUsed(issued.jid, AGENT, "current", None, True) in events
    assert not [e for e in events if isinstance(e, FastTokenIssued)]
    assert success_of(conn).find(f"{{{FAST}}}token") is None


def test_an_unknown_token_and_no_tokens_fail_alike() -> None:
    issued, _ = issue_token()
    for stored in ((FastToken(b"other", issued.mechanism, issued.expiry),), ()):
        _, events = fast_login(issued.token, stored)
        [failed] = [e for e in events if isinstance(e, AuthenticationFailed)]
        assert failed.condition == "not-authorized"


@pytest.mark.parametrize(
    ("extra", "condition"),
    [
        ("<fast xmlns='urn:xmpp:fast:0'/>", "malformed-request"),  # no user-agent id
        (USER_AGENT, "malformed-request"),  # no <fast/>
        (USER_AGENT + "<fast xmlns='urn:xmpp:fast:0' count='0'/>", "malformed-request"),
    ],
)
def test_token_logins_without_what_fast_needs_are_malformed(extra: str, condition: str) -> None:
    conn = server()
    conn.data_to_send()
    conn.receive_data(authenticate("HT-SHA-256-NONE", ht_initiator_message("juliet", b"t"), extra))
    [failed] = [e for e in drain(conn) if isinstance(e, AuthenticationFailed)]
    assert failed.condition == condition


def test_ht_messages_follow_the_draft() -> None:
    token = b"WXZzciBwYmFmdmZnZiBqdmd1IGp2eXFhcmZm"
    expected = hmac.new(token, b"Initiator" + ENDP, hashlib.sha256).digest()
    assert ht_initiator_message("user", token, ENDP) == b"user\x00" + expected
    assert ht_responder(token) == hmac.new(token, b"Responder", hashlib.sha256).digest()


@given(st.binary(max_size=80))
def test_any_initial_response_parses_or_fails_as_sasl(data: bytes) -> None:
    try:
        name, hashed = parse_ht_initial(data)
    except SASLFailure as exc:
        assert exc.condition.value == "malformed-request"
        return
    assert name and len(hashed) == 32
