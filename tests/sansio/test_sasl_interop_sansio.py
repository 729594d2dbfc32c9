"""SASL interoperability rules without I/O: channel binding types (RFC 5802 §6,
RFC 5929, RFC 9266, XEP-0440), the encoding of empty SASL data (RFC 6120
§6.4.2, §6.4.3, §6.3.10). The wire-level tests are in
tests/trio/test_sasl_interop.py."""

from __future__ import annotations

import base64
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from xmpp_sansio.errors import RemoteProtocolError
from xmpp_sansio.sasl import (
    ChannelBinding,
    SASLFailure,
    UnsupportedChannelBinding,
    create_client_mechanism,
    create_server_mechanism,
    tls_unique,
)
from xmpp_sansio.stream.config import Limits, ServerConfig
from xmpp_sansio.stream.connection import ServerConnection, TLSInfo, _b64decode, _b64encode
from xmpp_sansio.stream.events import (
    Authenticated,
    AuthenticationFailed,
    CredentialsRequested,
    DerivationRequested,
    Event,
    StreamOpened,
)
from xmpp_sansio.testing import derive, framed, make_credentials, seeded_rng

DOMAIN = "capulet.example"
PASSWORDS = {"juliet": "r0m30myr0m30"}
END_POINT = ChannelBinding("tls-server-end-point", b"\x01" * 32)
UNIQUE = ChannelBinding("tls-unique", b"\x02" * 12)
SASL_NS = "urn:ietf:params:xml:ns:xmpp-sasl"
HEADER = (
    f"<?xml version='1.0'?><stream:stream to='{DOMAIN}' version='1.0' "
    "xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>"
).encode()
LOOKUP = make_credentials(PASSWORDS)

# Every transcript runs over TCP and RFC 7395 WebSocket framing.
pytestmark = pytest.mark.usefixtures("any_framing")


def auth(mechanism: str, initial: bytes | None) -> bytes:
    text = "" if initial is None else base64.b64encode(initial).decode() or "="
    return f"<auth xmlns='{SASL_NS}' mechanism='{mechanism}'>{text}</auth>".encode()


def server(info: TLSInfo, **config: object) -> ServerConnection:
    conn = framed(
        ServerConnection(
            ServerConfig(rng=seeded_rng(0), domains=frozenset({DOMAIN}), **config),  # type: ignore[arg-type]
            tls_active=True,
            tls_info=info,
        )
    )
    conn.receive_data(HEADER)
    assert [type(e) for e in drain(conn)] == [StreamOpened]
    return conn


def drain(conn: ServerConnection) -> list[Event]:
    """Events until quiet, answering credential look-ups."""
    events: list[Event] = []
    while (event := conn.next_event()) is not None:
        events.append(event)
        if isinstance(event, CredentialsRequested):
            conn.provide_credentials(LOOKUP(event.username, event.hash_name))
        elif isinstance(event, DerivationRequested):
            conn.provide_derived(derive(event))
    return events


def scram_login(
    conn: ServerConnection, name: str, binding: ChannelBinding | None, *, plus_seen: bool
) -> list[Event]:
    """A whole SCRAM exchange; the server's events."""
    mech = create_client_mechanism(
        name,
        username="juliet",
        password=PASSWORDS["juliet"],
        nonce=b"n" * 18,
        channel_binding=binding,
        server_supports_plus=plus_seen,
    )
    conn.receive_data(auth(name, mech.initial_response()))
    events = drain(conn)
    out = conn.data_to_send().decode()
    found = re.search(r"<challenge [^>]*>([^<]*)</challenge>", out)
    if found is None:
        return events
    answer = base64.b64encode(mech.challenge(base64.b64decode(found.group(1)))).decode()
    conn.receive_data(f"<response xmlns='{SASL_NS}'>{answer}</response>".encode())
    return events + drain(conn)


# --- channel binding types ---------------------------------------------------


def test_tls_unique_is_defined_up_to_tls_1_2_only() -> None:
    """RFC 5929 §3; undefined on TLS 1.3 (RFC 8446 §C.5, RFC 9266 §1)."""
    assert tls_unique(b"finished", "TLSv1.2") == ChannelBinding("tls-unique", b"finished")
    assert tls_unique(b"finished", "TLSv1.3") is None
    assert tls_unique(b"finished", None) is None
    assert tls_unique(None, "TLSv1.2") is None


def test_scram_plus_with_an_unsupported_type_is_a_non_counting_failure() -> None:
    mech = create_server_mechanism(
        "SCRAM-SHA-256-PLUS", nonce=b"s" * 18, channel_binding=END_POINT, advertised_plus=True
    )
    with pytest.raises(UnsupportedChannelBinding) as info:
        mech.start(b"p=tls-unique,,n=juliet,r=abc")
    failure = info.value
    assert isinstance(failure, SASLFailure) and not failure.counts
    assert failure.condition.value == "not-authorized" and failure.cb_type == "tls-unique"
    assert SASLFailure(failure.condition).counts  # other failures count


@pytest.mark.parametrize(
    ("bindings", "types"),
    [
        ((END_POINT,), [b"tls-server-end-point"]),
        ((END_POINT, UNIQUE), [b"tls-server-end-point", b"tls-unique"]),
    ],
    ids=["tls-1.3", "tls-1.2"],
)
def test_features_list_the_connections_channel_binding_types(
    bindings: tuple[ChannelBinding, ...], types: list[bytes]
) -> None:
    """XEP-0440 §2, next to the -PLUS mechanisms."""
    conn = server(TLSInfo(bindings[0], bindings[1:]))
    features = conn.data_to_send()
    assert b"SCRAM-SHA-256-PLUS" in features
    assert re.findall(rb'<channel-binding type="([^"]+)"', features) == types


def test_no_channel_binding_feature_without_plus_mechanisms() -> None:
    conn = server(TLSInfo())
    features = conn.data_to_send()
    assert b"-PLUS" not in features and b"sasl-channel-binding" not in features


def test_unsupported_type_never_ends_the_stream_and_tls_unique_works_on_tls_1_2() -> None:
    conn = server(TLSInfo(END_POINT), limits=Limits(max_auth_attempts=2))
    conn.data_to_send()
    for _ in range(5):
        conn.receive_data(auth("SCRAM-SHA-256-PLUS", b"p=tls-unique,,n=juliet,r=abc"))
        (failed,) = drain(conn)
        assert isinstance(failed, AuthenticationFailed) and not failed.counted
        out = conn.data_to_send()
        assert b"<not-authorized/>" in out and b"stream:error" not in out
    assert conn.auth_failures == 0

    tls12 = server(TLSInfo(END_POINT, (UNIQUE,)))
    events = scram_login(tls12, "SCRAM-SHA-256-PLUS", UNIQUE, plus_seen=True)
    assert [e.mechanism for e in events if isinstance(e, Authenticated)] == ["SCRAM-SHA-256-PLUS"]


def test_y_flag_is_a_downgrade_unless_the_clients_binding_type_was_refused() -> None:
    """RFC 5802 §6: "y" with -PLUS offered fails (and counts). After the client's
    -PLUS attempt was refused for its type, "y" logs in (slixmpp 1.8.3, TLS 1.3)."""
    conn = server(TLSInfo(END_POINT), limits=Limits(max_auth_attempts=2))
    events = scram_login(conn, "SCRAM-SHA-256", UNIQUE, plus_seen=False)
    (failed,) = [e for e in events if isinstance(e, AuthenticationFailed)]
    assert failed.counted and "downgrade" in (failed.text or "")
    assert conn.auth_failures == 1

    conn.receive_data(auth("SCRAM-SHA-256-PLUS", b"p=tls-unique,,n=juliet,r=abc"))
    drain(conn)
    events = scram_login(conn, "SCRAM-SHA-256", UNIQUE, plus_seen=False)
    assert [e.mechanism for e in events if isinstance(e, Authenticated)] == ["SCRAM-SHA-256"]


def test_too_many_counted_failures_still_end_the_stream() -> None:
    conn = server(TLSInfo(END_POINT), limits=Limits(max_auth_attempts=2))
    conn.receive_data(auth("SCRAM-SHA-256-PLUS", b"p=tls-unique,,n=juliet,r=abc"))
    drain(conn)
    wrong = auth("PLAIN", b"\0juliet\0wrong")
    conn.receive_data(wrong)
    drain(conn)
    conn.receive_data(wrong)
    with pytest.raises(RemoteProtocolError) as info:
        drain(conn)
    assert info.value.condition.value == "policy-violation"


# --- empty SASL data -----------------------------------------------------------


def test_empty_challenge_has_no_text() -> None:
    """RFC 6120 §6.4.3 defines no "=" for challenges (xmpp.js ANONYMOUS fails on it)."""
    conn = server(TLSInfo(END_POINT), allow_anonymous=True)
    conn.data_to_send()
    conn.receive_data(f"<auth xmlns='{SASL_NS}' mechanism='ANONYMOUS'/>".encode())
    assert drain(conn) == []
    assert conn.data_to_send() == f'<challenge xmlns="{SASL_NS}"/>'.encode()
    conn.receive_data(f"<response xmlns='{SASL_NS}'/>".encode())
    assert [type(e) for e in drain(conn)] == [Authenticated]


@given(st.binary(max_size=64))
def test_sasl_text_round_trips_and_only_initial_and_success_data_use_equals(data: bytes) -> None:
    initial = _b64encode(data)
    challenge = _b64encode(data, empty=None)
    assert _b64decode(initial) == data
    assert (_b64decode(challenge) or b"") == data
    assert (challenge is None) == (data == b"")
    assert (initial == "=") == (data == b"")
    assert _b64encode(None) is None and _b64encode(None, empty=None) is None


@given(st.lists(st.sampled_from(["unsupported-cb", "wrong-password"]), max_size=10))
def test_only_guesses_count_toward_max_auth_attempts(attempts: list[str]) -> None:
    """Any mix of unsupported binding types and wrong passwords: the stream ends
    with policy-violation exactly at the 3rd wrong password (RFC 6120 §6.4.5)."""
    conn = server(TLSInfo(END_POINT), limits=Limits(max_auth_attempts=3))
    guesses = 0
    for attempt in attempts:
        if attempt == "unsupported-cb":
            conn.receive_data(auth("SCRAM-SHA-256-PLUS", b"p=tls-unique,,n=juliet,r=abc"))
        else:
            conn.receive_data(auth("PLAIN", b"\0juliet\0wrong"))
            guesses += 1
        if guesses == 3:
            with pytest.raises(RemoteProtocolError) as info:
                drain(conn)
            assert info.value.condition.value == "policy-violation"
            return
        drain(conn)
        assert conn.auth_failures == guesses
