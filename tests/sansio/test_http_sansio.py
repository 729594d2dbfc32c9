"""The HTTP listener's request handling and WebSocket frames, sans I/O
(xmpp_sansio/http): routing, limits, deadlines, path checks and frame
handling as pure functions of their input, with property tests for the
parsers (any bytes: a defined answer, never an exception)."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from wsproto import ConnectionType
from wsproto.connection import Connection
from wsproto.events import BytesMessage, CloseConnection, Ping, Pong, TextMessage

from xmpp_sansio.http import (
    FileRequested,
    HTTPServerConnection,
    HTTPSettings,
    RequestRateLimiter,
    WebSocketAccepted,
    WebSocketStream,
    text_frame,
)
from xmpp_sansio.http.server import _static_parts
from xmpp_sansio.stream.framing import WebSocketFraming

KEY = base64.b64encode(b"0123456789abcdef").decode()
UPGRADE = (
    "GET /xmpp-websocket HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
    "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
    f"Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Protocol: xmpp\r\n\r\n"
).encode()


def conn(*, https: bool = True, now: float = 0.0, **settings: object) -> HTTPServerConnection:
    limiter = RequestRateLimiter(int(settings.pop("per_minute", 600)))  # type: ignore[call-overload]
    return HTTPServerConnection(
        HTTPSettings(**settings),  # type: ignore[arg-type]
        https=https,
        address="192.0.2.1",
        limiter=limiter,
        now=now,
    )


def status(data: bytes) -> int:
    return int(data.split(b" ", 2)[1])


def test_upgrade_is_accepted_with_the_rfc_6455_accept_token_and_xmpp() -> None:
    c = conn()
    c.receive_data(UPGRADE + b"trailing", 0.0)
    event = c.next_event()
    assert isinstance(event, WebSocketAccepted)
    assert event.trailing_data == b"trailing"
    out = c.data_to_send()
    assert out.startswith(b"HTTP/1.1 101 ")
    # RFC 6455 §1.3's example key gives this token; ours is computed the same way.
    assert b"sec-websocket-protocol: xmpp\r\n" in out
    assert c.deadline is None  # the XMPP stream's own timers take over


def test_the_rfc_6455_example_key_gets_the_rfc_6455_accept() -> None:
    c = conn()
    c.receive_data(UPGRADE.replace(KEY.encode(), b"dGhlIHNhbXBsZSBub25jZQ=="), 0.0)
    assert isinstance(c.next_event(), WebSocketAccepted)
    assert b"sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in c.data_to_send()


def test_plain_http_upgrade_is_refused_unless_configured() -> None:
    refused = conn(https=False)
    refused.receive_data(UPGRADE, 0.0)
    assert refused.next_event() is None
    assert status(refused.data_to_send()) == 403
    allowed = conn(https=False, websocket_on_plain_http=True)
    allowed.receive_data(UPGRADE, 0.0)
    assert isinstance(allowed.next_event(), WebSocketAccepted)


def test_static_paths_become_file_requests_only_with_a_root() -> None:
    c = conn(static_root=True)
    c.receive_data(b"GET /a/b.css?v=1 HTTP/1.1\r\nHost: x\r\n\r\n", 0.0)
    assert c.next_event() == FileRequested(("a", "b.css"), False)
    c.send_file(b"body", "text/css", head=False)
    assert c.data_to_send().endswith(b"\r\n\r\nbody")
    none = conn()
    none.receive_data(b"GET /a/b.css HTTP/1.1\r\nHost: x\r\n\r\n", 0.0)
    assert none.next_event() is None
    assert status(none.data_to_send()) == 404


def test_the_request_deadline_gives_408_and_an_idle_connection_just_closes() -> None:
    slow = conn(request_timeout=10.0)
    slow.receive_data(b"GET / HTTP/1.1\r\nHo", 5.0)
    assert slow.deadline == 15.0
    slow.handle_timer(14.9)
    assert not slow.should_close
    slow.handle_timer(15.0)
    assert slow.should_close and status(slow.data_to_send()) == 408
    idle = conn(request_timeout=10.0)
    idle.handle_timer(10.0)
    assert idle.should_close and idle.data_to_send() == b""


def test_keep_alive_sets_the_idle_deadline_after_each_response() -> None:
    c = conn(keepalive_timeout=30.0)
    c.receive_data(b"GET /missing HTTP/1.1\r\nHost: x\r\n\r\n", 1.0)
    assert c.next_event() is None
    assert status(c.data_to_send()) == 404
    assert not c.should_close and c.deadline == 31.0


def test_max_requests_per_connection_closes_after_the_last() -> None:
    c = conn(max_requests_per_connection=2)
    c.receive_data(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n" * 2, 0.0)
    assert c.next_event() is None
    out = c.data_to_send()
    assert out.count(b"HTTP/1.1 404") == 2 and out.endswith(b"not found\n")
    assert b"connection: close" in out.split(b"HTTP/1.1 404")[2]
    assert c.should_close


def test_the_rate_limiter_counts_per_address_and_per_minute() -> None:
    limiter = RequestRateLimiter(2, max_entries=2)
    assert [limiter.allow("a", 0.0) for _ in range(3)] == [True, True, False]
    assert limiter.allow("b", 1.0)
    assert limiter.allow("a", 60.0)  # a new window
    assert limiter.allow("c", 61.0)  # the table is bounded: old windows dropped
    assert len(limiter._windows) <= 2


@pytest.mark.parametrize(
    "path",
    [
        *("/../x", "/a/../x", "/%2e%2e/x", "/a/..%2fx", "/.git/config", "/a//b", "/a%5cb"),
        *("/%00", "x", "/a%80b.txt", "/%ff"),  # the last two: percent-encoding not UTF-8
    ],
)
def test_traversal_and_hidden_paths_are_refused(path: str) -> None:
    assert _static_parts(path) is None


@given(st.text(max_size=60))
def test_accepted_static_paths_never_climb_or_hide(path: str) -> None:
    parts = _static_parts("/" + path)
    if parts is not None:
        for part in parts:
            assert part and not part.startswith(".") and "/" not in part and "\\" not in part


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=3000), st.integers(min_value=1, max_value=200))
def test_any_bytes_get_a_defined_answer_never_an_exception(data: bytes, cut: int) -> None:
    """h11's fuzzing invariant, here for the whole request handling: fed in
    any pieces, garbage yields responses or a close, nothing else."""
    c = conn(static_root=True, max_header_size=1024, max_body_size=100)
    for start in range(0, len(data), cut):
        c.receive_data(data[start : start + cut], 0.0)
        while (event := c.next_event()) is not None:
            if isinstance(event, FileRequested):
                c.not_found(head=event.head)
            else:
                break
        out = c.data_to_send()
        assert not out or out.startswith(b"HTTP/1.1 ")
        if c.should_close:
            break


def client_frames(*events: object) -> bytes:
    ws = Connection(ConnectionType.CLIENT)
    return b"".join(ws.send(e) for e in events)  # type: ignore[arg-type]


def test_frames_become_messages_pings_get_pongs_and_a_close_is_answered() -> None:
    stream = WebSocketStream(max_message_size=1000)
    stream.receive_data(
        client_frames(
            TextMessage(data="<a/>", message_finished=False),
            Ping(payload=b"p"),
            TextMessage(data="<b/>"),
            CloseConnection(code=1000),
        )
    )
    assert stream.next_message() == b"<a/><b/>"
    assert stream.next_message() is None
    assert stream.closed and stream.close_code == 1000
    client = Connection(ConnectionType.CLIENT)
    client.receive_data(stream.data_to_send())
    events = list(client.events())
    assert isinstance(events[0], Pong) and events[0].payload == b"p"
    assert isinstance(events[1], CloseConnection)


def test_oversized_messages_are_cut_for_the_framing_to_refuse() -> None:
    stream = WebSocketStream(max_message_size=10)
    stream.receive_data(client_frames(TextMessage(data="<a>" + "x" * 100 + "</a>")))
    message = stream.next_message()
    assert message is not None and len(message) == 11
    with pytest.raises(Exception, match="message of 11 bytes"):
        WebSocketFraming().decode(message, max_size=10)


def test_binary_data_closes_with_1003() -> None:
    stream = WebSocketStream(max_message_size=100)
    stream.receive_data(client_frames(BytesMessage(data=b"<a/>")))
    assert stream.closed and stream.close_code == 1003
    assert stream.next_message() is None


@given(st.binary(min_size=0, max_size=70000).map(lambda b: b[: len(b) // 2]))
def test_text_frames_round_trip_through_a_client(payload: bytes) -> None:
    text = payload.decode("latin-1").encode()
    client = Connection(ConnectionType.CLIENT)
    client.receive_data(text_frame(text))
    events = list(client.events())
    assert "".join(e.data for e in events if isinstance(e, TextMessage)) == text.decode()


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=500))
def test_any_bytes_after_the_handshake_never_raise(data: bytes) -> None:
    stream = WebSocketStream(max_message_size=100)
    stream.receive_data(data)
    while stream.next_message() is not None:
        pass
    stream.data_to_send()
