"""Hypothesis: the HTTP listener's request handling and WebSocket frames
(xmpp_sansio/http) under mutated valid input.

Valid requests (a WebSocket upgrade, host-meta, a static file, an XEP-0363
PUT) and valid client frames are mutated (bytes flipped, inserted, deleted,
the input cut) and fed in drawn chunks. Whatever comes in: no exception
escapes, every byte written is part of an HTTP/1.1 response (or, after an
accepted upgrade, nothing more), and a frame stream yields messages no
longer than the limit plus one byte (for the XMPP framing to refuse).
``FUZZ_EXAMPLES`` sets the number of examples (default 300).
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from wsproto import ConnectionType
from wsproto.connection import Connection
from wsproto.events import CloseConnection, Ping, TextMessage

from xmpp_sansio.http import (
    DownloadRequested,
    FileRequested,
    HTTPServerConnection,
    HTTPSettings,
    RequestRateLimiter,
    UploadReceived,
    UploadRequested,
    WebSocketAccepted,
    WebSocketStream,
)

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "300"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
REQUESTS = [
    b"GET /xmpp-websocket HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Sec-WebSocket-Protocol: xmpp\r\nOrigin: https://a.example\r\n\r\n",
    b"GET /.well-known/host-meta.json HTTP/1.1\r\nHost: example.org:5281\r\n\r\n",
    b"HEAD /docs/a%20b.txt HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n",
    b"PUT /upload/0123456789abcdef0123456789abcdef/a.txt?e=99&s=ab HTTP/1.1\r\nHost: x\r\n"
    b"Content-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello",
    b"POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
]


@st.composite
def mutated(draw: st.DrawFn, seeds: list[bytes]) -> bytes:
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(0, 4))):
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        match draw(st.sampled_from(["flip", "insert", "delete", "cut"])):
            case "flip":
                data[at] = draw(st.integers(0, 255))
            case "insert":
                data[at:at] = draw(st.binary(min_size=1, max_size=8))
            case "delete":
                del data[at : at + draw(st.integers(1, 8))]
            case "cut":
                del data[at:]
    return bytes(data)


def chunks(data: bytes, sizes: list[int]) -> list[bytes]:
    out, start = [], 0
    for size in sizes:
        if start >= len(data):
            break
        out.append(data[start : start + size])
        start += size
    if start < len(data):
        out.append(data[start:])
    return out


@FUZZ
@given(mutated(REQUESTS), st.lists(st.integers(1, 64), max_size=20), st.booleans())
def test_mutated_requests_get_http_answers_and_nothing_escapes(
    data: bytes, sizes: list[int], https: bool
) -> None:
    conn = HTTPServerConnection(
        HTTPSettings(static_root=True, uploads=True, allowed_origins=("https://a.example",)),
        https=https,
        address="192.0.2.1",
        limiter=RequestRateLimiter(1000),
        now=0.0,
    )
    upgraded = False
    for piece in [*chunks(data, sizes), b""]:
        conn.receive_data(piece, 1.0)
        while (event := conn.next_event()) is not None:
            match event:
                case FileRequested() | DownloadRequested():
                    conn.not_found(head=event.head)
                case UploadRequested():
                    conn.accept_upload()
                case UploadReceived():
                    conn.upload_stored()
                case WebSocketAccepted():
                    upgraded = True
            if upgraded:
                break
        out = conn.data_to_send()
        assert not out or out.startswith(b"HTTP/1.1 ")
        if upgraded or conn.should_close:
            break
    conn.handle_timer(1000.0)
    late = conn.data_to_send()
    assert upgraded or not late or late.startswith(b"HTTP/1.1 408 ")


def frames(*texts: str) -> bytes:
    client = Connection(ConnectionType.CLIENT)
    out = b"".join(client.send(TextMessage(data=t)) for t in texts)
    return out + client.send(Ping(payload=b"p")) + client.send(CloseConnection(code=1000))


FRAMES = [frames("<open/>", "<message><body>hi</body></message>"), frames("x" * 300)]


@FUZZ
@given(mutated(FRAMES), st.lists(st.integers(1, 64), max_size=20))
def test_mutated_frames_never_escape_and_messages_stay_bounded(
    data: bytes, sizes: list[int]
) -> None:
    stream = WebSocketStream(max_message_size=100)
    for piece in [*chunks(data, sizes), b""]:
        stream.receive_data(piece)
        while (message := stream.next_message()) is not None:
            assert len(message) <= 101
        stream.data_to_send()
