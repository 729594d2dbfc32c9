"""The JSON channel (docs/json-channel.md) on the wire: a raw WebSocket
client (wsproto, tests/trio/http_helpers.py) speaking JSON objects to the
real server over real TLS."""

from __future__ import annotations

import base64
import json
import os
from typing import Any

import pytest
import trio
from conftest import PASSWORDS, RunningServer
from http_helpers import RawWebSocket, open_websocket
from test_websocket import logs_in, ws_server

from xmpp_sansio.sasl.mechanisms import create_client_mechanism

__all__ = ["ws_server"]  # the fixture, shared with test_websocket.py

pytestmark = pytest.mark.trio


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


class JsonClient:
    def __init__(self, ws: RawWebSocket) -> None:
        self.ws = ws

    async def send(self, obj: Any) -> None:
        await self.ws.send_text(json.dumps(obj))

    async def receive(self) -> dict[str, Any] | None:
        with trio.fail_after(10):
            text = await self.ws.receive()
        return None if text is None else json.loads(text)

    async def until(self, kind: str) -> list[dict[str, Any]]:
        seen: list[dict[str, Any]] = []
        while True:
            obj = await self.receive()
            assert obj is not None, f"closed before {kind!r}: {seen}"
            seen.append(obj)
            if obj["kind"] == kind:
                return seen


async def connect(server: RunningServer, **kw: str | None) -> JsonClient:
    ws, response = await open_websocket(
        server.https_port or 0,
        server.client_context(),
        path="/json",
        protocol="xmpp-json-1",
        **kw,
    )
    assert response.status == 101
    assert response.headers["sec-websocket-protocol"] == "xmpp-json-1"
    client = JsonClient(ws)
    await client.send({"kind": "open", "to": "localhost"})
    return client


async def login(server: RunningServer, user: str, resource: str) -> tuple[JsonClient, str]:
    """SCRAM-SHA-256 in JSON frames, then bind: the session's own negotiation."""
    client = await connect(server)
    features = (await client.until("features"))[-1]
    assert "SCRAM-SHA-256" in features["mechanisms"]
    scram = create_client_mechanism(
        "SCRAM-SHA-256", username=user, password=PASSWORDS[user], nonce=os.urandom(24)
    )
    first = scram.initial_response()
    assert first is not None
    await client.send({"kind": "auth", "mechanism": "SCRAM-SHA-256", "data": b64(first)})
    challenge = (await client.until("challenge"))[-1]
    final = scram.challenge(base64.b64decode(challenge["data"]))
    await client.send({"kind": "response", "data": b64(final)})
    success = (await client.until("success"))[-1]
    assert success["event"] == "authenticated"
    await client.send({"kind": "open", "to": "localhost"})
    features = (await client.until("features"))[-1]
    assert features["bind"] is True
    await client.send({"kind": "bind", "id": "b1", "resource": resource})
    bound = (await client.until("bound"))[-1]
    assert bound["jid"] == f"{user}@localhost/{resource}"
    return client, bound["jid"]


async def test_login_roster_presence_message_and_iq_error_in_json(
    ws_server: RunningServer,
) -> None:
    romeo, romeo_jid = await login(ws_server, "romeo", "web")
    juliet, juliet_jid = await login(ws_server, "juliet", "web")
    await romeo.send(
        {"kind": "iq", "type": "get", "id": "r1", "payload": "<query xmlns='jabber:iq:roster'/>"}
    )
    roster = (await romeo.until("iq"))[-1]
    assert roster["type"] == "result" and roster["id"] == "r1"
    assert "jabber:iq:roster" in roster["payload"]
    await juliet.send({"kind": "presence"})
    await romeo.send({"kind": "presence", "show": "away"})
    await juliet.send({"kind": "message", "type": "chat", "to": romeo_jid, "body": "hi"})
    got = (await romeo.until("message"))[-1]
    assert got["body"] == "hi" and got["from"] == juliet_jid and got["type"] == "chat"
    await romeo.send({"kind": "message", "type": "chat", "to": juliet_jid, "body": "hello"})
    back = (await juliet.until("message"))[-1]
    assert back["body"] == "hello" and back["from"] == romeo_jid
    await romeo.send(
        {"kind": "iq", "type": "get", "id": "e1", "to": "localhost",
         "payload": "<nothing xmlns='urn:example:none'/>"}
    )  # fmt: skip
    error = (await romeo.until("iq"))[-1]
    assert error["type"] == "error" and error["id"] == "e1"
    assert "service-unavailable" in error["error"] or "feature-not-implemented" in error["error"]
    await romeo.send({"kind": "close"})
    closed = (await romeo.until("close"))[-1]
    assert closed["event"] == "closed"


async def test_a_wrong_password_is_a_sasl_failure_object(ws_server: RunningServer) -> None:
    client = await connect(ws_server)
    await client.until("features")
    scram = create_client_mechanism(
        "SCRAM-SHA-256", username="romeo", password="wrong", nonce=os.urandom(24)
    )
    first = scram.initial_response() or b""
    await client.send({"kind": "auth", "mechanism": "SCRAM-SHA-256", "data": b64(first)})
    challenge = (await client.until("challenge"))[-1]
    final = scram.challenge(base64.b64decode(challenge["data"]))
    await client.send({"kind": "response", "data": b64(final)})
    failure = (await client.until("failure"))[-1]
    assert failure["condition"] == "not-authorized"


@pytest.mark.parametrize(
    ("frame", "condition"),
    [
        ("{not json", "not-well-formed"),
        ("[1, 2]", "bad-format"),
        ('{"kind": "teleport"}', "unsupported-stanza-type"),
        ('{"kind": "message", "type": "sideways"}', "bad-format"),
        ('{"kind": "auth", "mechanism": "PLAIN", "data": "***"}', "bad-format"),
        ('{"kind": "iq", "type": "get", "id": "x", "payload": "' + "a" * 20000 + '"}',
         "policy-violation"),
    ],
    ids=["malformed", "not-object", "unknown-kind", "bad-stanza", "bad-base64", "oversized"],
)  # fmt: skip
async def test_bad_frames_get_a_stream_error_object_and_a_close(
    ws_server: RunningServer, frame: str, condition: str
) -> None:
    client = await connect(ws_server)
    await client.until("features")
    await client.ws.send_text(frame)
    seen = await client.until("close")
    errors = [o for o in seen if o["kind"] == "stream-error"]
    assert errors and errors[0]["condition"] == condition, seen
    assert await client.ws.receive() is None  # then the WebSocket closes
    assert await logs_in(ws_server)  # nothing else disturbed


async def test_binary_frames_close_with_1003(ws_server: RunningServer) -> None:
    client = await connect(ws_server)
    await client.until("features")
    await client.ws.send_bytes(b"{}")
    assert await client.ws.receive() is None
    assert client.ws.close_code == 1003


async def test_the_json_subprotocol_is_required_and_plain_http_refused(
    ws_server: RunningServer,
) -> None:
    port, tls = ws_server.https_port or 0, ws_server.client_context()
    _ws, xml_only = await open_websocket(port, tls, path="/json", protocol="xmpp")
    assert xml_only.status == 400
    _ws, plain = await open_websocket(
        ws_server.http_port or 0, path="/json", protocol="xmpp-json-1"
    )
    assert plain.status == 403


@pytest.mark.parametrize("ws_server", [{"json_channel": False}], indirect=True)
async def test_the_channel_can_be_turned_off(ws_server: RunningServer) -> None:
    port, tls = ws_server.https_port or 0, ws_server.client_context()
    _ws, refused = await open_websocket(port, tls, path="/json", protocol="xmpp-json-1")
    assert refused.status == 404
