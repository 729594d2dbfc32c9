"""Our server accepting external components (XEP-0114, issue 20), on the wire:
a ``component`` listener on loopback TCP, users over STARTTLS with the test
CA, and real components: ours (``open_component``, ``ComponentBot``) and
slixmpp's ``ComponentXMPP`` (PyPI, default settings; skipped locally and
failing in CI when missing)."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import sys
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import trio
import trustme
from conftest import PASSWORDS
from test_admin import cli, write_config
from test_component_interop import require_slixmpp

from xmpp_sansio.errors import StanzaErrorCondition, StreamErrorCondition
from xmpp_sansio.server.component import ComponentHost, ComponentSettings, OnConflict, WhenAway
from xmpp_sansio.stanza import make_message
from xmpp_sansio.stream.component import ComponentClientConnection
from xmpp_sansio.stream.config import ComponentClientConfig
from xmpp_sansio.stream.state import State
from xmpp_trio import StreamError, open_component
from xmpp_trio.admin import request, socket_path
from xmpp_trio.bot import Context, Handler, respond
from xmpp_trio.client import Client, open_client
from xmpp_trio.component import ComponentBot
from xmpp_trio.component_config import ComponentsConfig
from xmpp_trio.config import ListenerConfig, ServerConfig
from xmpp_trio.server import XMPPServer, run_server

pytestmark = pytest.mark.integration

GW, ECHO = "gw.localhost", "echo.localhost"
SECRETS = {GW: "gw-s3cr3t-long-enough", ECHO: "echo-s3cr3t-long-enough"}
C = "{jabber:client}"
WAIT = 15.0
PEERS = Path(__file__).parent / "peers"
DISCO_ITEMS = "{http://jabber.org/protocol/disco#items}"


@dataclasses.dataclass
class Running:
    server: XMPPServer
    config: ServerConfig
    ca_file: Path
    c2s: int
    component: int

    @asynccontextmanager
    async def user(self, name: str = "juliet", resource: str = "balcony") -> AsyncIterator[Client]:
        import ssl

        async with open_client(
            f"{name}@localhost/{resource}",
            PASSWORDS[name],
            host="127.0.0.1",
            port=self.c2s,
            ssl_context=ssl.create_default_context(cafile=str(self.ca_file)),
        ) as client:
            yield client

    def open(self, domain: str = GW, secret: str | None = None) -> Any:
        return open_component(
            domain,
            SECRETS.get(domain, "x") if secret is None else secret,
            host="127.0.0.1",
            port=self.component,
        )


async def start(
    server_config: ServerConfig,
    ca: trustme.CA,
    tmp_path: Path,
    nursery: trio.Nursery,
    settings: ComponentSettings | None = None,
    **limits: Any,
) -> Running:
    config = dataclasses.replace(
        server_config,
        listeners=(
            ListenerConfig("c2s-starttls", "127.0.0.1", 0),
            ListenerConfig("component", "127.0.0.1", 0),
        ),
        components=ComponentsConfig(SECRETS, settings or ComponentSettings()),
        limits=dataclasses.replace(server_config.limits, **limits),
    )
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    bound = await nursery.start(run_server, config)
    ports = {b.kind: b.port for b in bound}
    assert bound[0].server is not None
    return Running(bound[0].server, config, ca_file, ports["c2s-starttls"], ports["component"])


@pytest.fixture
async def running(
    server_config: ServerConfig, ca: trustme.CA, tmp_path: Path, nursery: trio.Nursery
) -> Running:
    return await start(server_config, ca, tmp_path, nursery)


async def next_message(client: Client) -> ET.Element:
    with trio.fail_after(WAIT):
        async for stanza in client:
            if stanza.tag == C + "message":
                return stanza
    raise AssertionError("the stream ended")


async def wait_connected(running: Running, domain: str) -> ComponentHost:
    host = running.server.router.hosts.services[domain]
    assert isinstance(host, ComponentHost)
    with trio.fail_after(WAIT):
        while host.session is None:
            await trio.sleep(0.01)
    return host


def error_condition(stanza: ET.Element) -> str | None:
    error = stanza.find(C + "error")
    if error is None:
        return None
    for child in error:
        if child.tag.startswith("{urn:ietf:params:xml:ns:xmpp-stanzas}") and child.tag != (
            "{urn:ietf:params:xml:ns:xmpp-stanzas}text"
        ):
            return child.tag.partition("}")[2]
    return None


# --- users and components exchange stanzas -------------------------------------------


async def test_a_user_and_our_component_exchange_messages_at_any_jid_of_its_domain(
    running: Running,
) -> None:
    async with running.open() as gw, running.user() as juliet:
        await juliet.send(make_message(f"alice@{GW}/irc", "hello gateway"))
        with trio.fail_after(WAIT):
            got = await gw.receive()
        assert got.get("to") == f"alice@{GW}/irc"
        assert got.get("from") == "juliet@localhost/balcony"
        assert got.findtext(C + "body") == "hello gateway"
        await gw.send(make_message("juliet@localhost/balcony", "hi", from_=f"bob@{GW}/x"))
        answer = await next_message(juliet)
        assert answer.get("from") == f"bob@{GW}/x"
        assert answer.findtext(C + "body") == "hi"


async def test_the_servers_disco_items_list_the_component(running: Running) -> None:
    async with running.user() as juliet:
        query = ET.Element(C + "iq", {"type": "get", "to": "localhost"})
        ET.SubElement(query, DISCO_ITEMS + "query")
        with trio.fail_after(WAIT):
            answer = await juliet.request(query)
    jids = {item.get("jid") for item in answer.iter(DISCO_ITEMS + "item")}
    assert {GW, ECHO} <= jids


EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "echo_component_bot.py"


async def test_the_seed_echo_bot_as_a_component_answers_a_slixmpp_user(
    running: Running,
) -> None:
    """Issue 20's Done-when: the echo bot (examples/echo_component_bot.py, the
    bot framework on a component) runs on its own subdomain and answers a
    slixmpp user (PyPI, default settings)."""
    require_slixmpp()
    bot = [sys.executable, str(EXAMPLE), ECHO, "--port", str(running.component)]
    env = {**os.environ, "COMPONENT_SECRET": SECRETS[ECHO]}
    async with trio.open_nursery() as inner:
        inner.start_soon(partial(trio.run_process, bot, env=env, check=False))
        await wait_connected(running, ECHO)
        argv = [
            sys.executable,
            str(PEERS / "slixmpp_chat.py"),
            "romeo@localhost",
            PASSWORDS["romeo"],
            "127.0.0.1",
            str(running.c2s),
            str(running.ca_file),
            f"echo@{ECHO}",
            "wherefore art thou",
            "second",
        ]
        with trio.fail_after(40):
            result = await trio.run_process(
                argv, capture_stdout=True, capture_stderr=True, check=False
            )
        inner.cancel_scope.cancel()  # stops the example
    output = (result.stdout + result.stderr).decode(errors="replace")
    got = [json.loads(m) for m in re.findall(r"^GOT (.*)$", output, re.M)]
    assert got == ["You sent: wherefore art thou", "You sent: second"], output


class SeedEcho(Handler):
    @respond(r"(?s).*")
    async def echo(self, ctx: Context) -> None:
        await ctx.reply(f"You sent: {ctx.message.body}")


async def test_the_component_bot_answers_at_the_address_each_message_went_to(
    running: Running, nursery: trio.Nursery
) -> None:
    bot = ComponentBot(ECHO, SECRETS[ECHO], port=running.component)
    bot.add_handler(SeedEcho)
    await nursery.start(bot.run)
    async with running.user() as juliet:
        for address in (ECHO, f"anyone@{ECHO}", f"else@{ECHO}/r"):
            await juliet.send(make_message(address, address))
            answer = await next_message(juliet)
            assert answer.get("from") == address
            assert answer.findtext(C + "body") == f"You sent: {address}"


async def test_the_component_bot_answers_disco_and_pings_on_its_domain(
    running: Running, nursery: trio.Nursery
) -> None:
    bot = ComponentBot(ECHO, SECRETS[ECHO], port=running.component, nickname="Echo")
    await nursery.start(bot.run)
    async with running.user() as juliet:
        query = ET.Element(C + "iq", {"type": "get", "to": ECHO})
        ET.SubElement(query, "{http://jabber.org/protocol/disco#info}query")
        with trio.fail_after(WAIT):
            info = await juliet.request(query)
        identity = info.find(".//{http://jabber.org/protocol/disco#info}identity")
        assert identity is not None and identity.get("category") == "component"
        assert identity.get("name") == "Echo"


async def test_slixmpp_component_exchanges_messages_with_a_user_through_our_server(
    running: Running,
) -> None:
    """slixmpp's ComponentXMPP (default settings) connects to our component
    listener, sends juliet a message and gets her answer."""
    require_slixmpp()
    argv = [
        sys.executable,
        str(PEERS / "slixmpp_component.py"),
        GW,
        SECRETS[GW],
        "127.0.0.1",
        str(running.component),
    ]
    async with running.user() as juliet:
        await juliet.send(ET.Element(C + "presence"))  # available: chat to the bare JID reaches her
        output = b""

        async def peer() -> None:
            nonlocal output
            result = await trio.run_process(
                argv, capture_stdout=True, capture_stderr=True, check=False
            )
            output = result.stdout + result.stderr

        with trio.fail_after(40):
            async with trio.open_nursery() as inner:
                inner.start_soon(peer)
                message = await next_message(juliet)
                assert message.get("from") == f"bot@{GW}/x"
                assert message.findtext(C + "body") == "hello from slixmpp"
                await juliet.send(make_message(f"bot@{GW}/x", "hello back"))
    text = output.decode(errors="replace")
    assert "SESSION" in text and "GOT juliet@localhost/balcony hello back" in text, text


JS = Path(__file__).resolve().parents[1] / "js"


def require_node() -> str:
    """node and tests/js/node_modules (``npm ci``): skip locally, fail in CI."""
    node = shutil.which("node")
    if node is None or not (JS / "node_modules" / "@xmpp" / "component").is_dir():
        reason = "node or @xmpp/component missing (cd tests/js && npm ci)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return node


async def run_js_component(running: Running, secret: str) -> str:
    argv = [
        require_node(),
        str(JS / "xmpp_component.mjs"),
        str(running.component),
        GW,
        secret,
        "juliet@localhost",
    ]
    with trio.fail_after(60):  # Node start-up included
        result = await trio.run_process(argv, capture_stdout=True, capture_stderr=True, check=False)
    return (result.stdout + result.stderr).decode(errors="replace")


async def test_xmpp_js_component_exchanges_messages_with_a_user_through_our_server(
    running: Running,
) -> None:
    """@xmpp/component (npm) connects to our listener, messages juliet and
    gets her answer."""
    require_node()
    async with running.user() as juliet, trio.open_nursery() as inner:
        await juliet.send(ET.Element(C + "presence"))
        output = ""

        async def peer() -> None:
            nonlocal output
            output = await run_js_component(running, SECRETS[GW])

        inner.start_soon(peer)
        message = await next_message(juliet)
        assert message.get("from") == f"js@{GW}/node"
        assert message.findtext(C + "body") == "hello from @xmpp/component"
        await juliet.send(make_message(f"js@{GW}/node", "hello node"))
    assert f"ONLINE {GW}" in output, output
    assert "GOT hello node FROM juliet@localhost/balcony" in output, output


async def test_xmpp_js_component_with_a_wrong_secret_gets_not_authorized(
    running: Running,
) -> None:
    output = await run_js_component(running, "wrong secret")
    assert "ERROR not-authorized" in output, output


# --- the defined errors -------------------------------------------------------------


async def test_a_wrong_secret_gets_not_authorized(running: Running) -> None:
    with pytest.raises(StreamError) as info:
        async with running.open(GW, "not the secret"):
            raise AssertionError("the handshake must fail")
    assert info.value.condition is StreamErrorCondition.NOT_AUTHORIZED


async def test_an_unknown_domain_gets_host_unknown(running: Running) -> None:
    with pytest.raises(StreamError) as info:
        async with running.open("nope.localhost", "whatever"):
            raise AssertionError("the handshake must fail")
    assert info.value.condition is StreamErrorCondition.HOST_UNKNOWN


async def test_a_from_outside_the_components_domain_gets_invalid_from(running: Running) -> None:
    async with running.open() as gw:
        await gw.send(make_message("juliet@localhost", "spoofed", from_="romeo@localhost"))
        with trio.fail_after(WAIT):
            await gw.closed.wait()
        assert gw.error is not None
        assert gw.error.condition is StreamErrorCondition.INVALID_FROM


async def test_a_second_connection_for_the_domain_is_refused_with_conflict(
    running: Running,
) -> None:
    async with running.open() as first:
        await wait_connected(running, GW)
        with pytest.raises(StreamError) as info:
            async with running.open():
                with trio.fail_after(WAIT):
                    await trio.sleep_forever()
        assert info.value.condition is StreamErrorCondition.CONFLICT
        assert not first.closed.is_set()


async def test_a_second_connection_replaces_the_first_when_configured(
    server_config: ServerConfig, ca: trustme.CA, tmp_path: Path, nursery: trio.Nursery
) -> None:
    settings = ComponentSettings(on_conflict=OnConflict.REPLACE)
    running = await start(server_config, ca, tmp_path, nursery, settings)
    async with running.open() as first:
        host = await wait_connected(running, GW)
        old = host.session
        async with running.open() as second, running.user() as juliet:
            with trio.fail_after(WAIT):
                await first.closed.wait()
            assert first.error is not None
            assert first.error.condition is StreamErrorCondition.CONFLICT
            assert host.session != old
            await juliet.send(make_message(GW, "to the new one"))
            with trio.fail_after(WAIT):
                got = await second.receive()
            assert got.findtext(C + "body") == "to the new one"


async def test_traffic_for_a_component_away_is_bounced_with_service_unavailable(
    running: Running,
) -> None:
    async with running.user() as juliet:
        await juliet.send(make_message(f"alice@{GW}", "anyone there?"))
        bounce = await next_message(juliet)
    assert bounce.get("type") == "error" and bounce.get("from") == f"alice@{GW}"
    assert error_condition(bounce) == StanzaErrorCondition.SERVICE_UNAVAILABLE.value


async def test_traffic_for_a_component_away_is_queued_when_configured(
    server_config: ServerConfig, ca: trustme.CA, tmp_path: Path, nursery: trio.Nursery
) -> None:
    settings = ComponentSettings(when_away=WhenAway.QUEUE, max_queue=2)
    running = await start(server_config, ca, tmp_path, nursery, settings)
    async with running.user() as juliet:
        for body in ("one", "two", "three"):
            await juliet.send(make_message(GW, body))
        bounce = await next_message(juliet)  # over max_queue
        assert error_condition(bounce) == StanzaErrorCondition.SERVICE_UNAVAILABLE.value
        assert bounce.findtext(C + "body") == "three"
        async with running.open() as gw:
            with trio.fail_after(WAIT):
                bodies = [(await gw.receive()).findtext(C + "body") for _ in range(2)]
    assert bodies == ["one", "two"]


async def test_a_component_that_stops_reading_is_closed_and_its_traffic_bounced(
    server_config: ServerConfig, ca: trustme.CA, tmp_path: Path, nursery: trio.Nursery
) -> None:
    """Like a client (``max_output_buffer``): the component is dropped with
    policy-violation, after which its domain's traffic is bounced."""
    running = await start(
        server_config, ca, tmp_path, nursery, max_output_buffer=65536, output_stall_timeout=0.2
    )
    # A component that completes the handshake, then never reads again.
    stream = await trio.open_tcp_stream("127.0.0.1", running.component)
    conn = ComponentClientConnection(ComponentClientConfig(domain=GW, secret=SECRETS[GW]))
    conn.start()
    with trio.fail_after(WAIT):
        while conn.state is not State.READY:
            await stream.send_all(conn.data_to_send())
            conn.receive_data(await stream.receive_some(65536))
    host = await wait_connected(running, GW)
    async with running.user() as juliet:
        big = "x" * 16000
        with trio.fail_after(WAIT):
            while host.session is not None:  # until the server gives up on it
                await juliet.send(make_message(GW, big))
                await trio.sleep(0.01)
        errors = running.server.metrics.stream_errors.labels(condition="policy-violation")
        assert errors._value.get() >= 1
        await juliet.send(make_message(GW, "after"))
        with trio.fail_after(WAIT):
            while True:
                bounce = await next_message(juliet)
                if bounce.findtext(C + "body") == "after":
                    break
        assert error_condition(bounce) == StanzaErrorCondition.SERVICE_UNAVAILABLE.value
    await trio.aclose_forcefully(stream)


# --- operations ---------------------------------------------------------------------


async def test_status_sessions_and_metrics_list_connected_components(
    running: Running, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with running.open():
        session = (await wait_connected(running, GW)).session
        path = socket_path(running.config)
        status = await trio.to_thread.run_sync(request, path, "status")
        sessions = await trio.to_thread.run_sync(request, path, "sessions")
        metrics = running.server.metrics.render().decode()
        config = write_config(running.config, tmp_path)
        code, out, _ = await cli(capsys, "status", "--config", str(config))
        assert code == 0 and f"components: {GW}" in out
        code, out, _ = await cli(capsys, "sessions", "--config", str(config))
        assert code == 0 and f"{GW}  127.0.0.1" in out and "sm=component" in out
    assert [c["jid"] for c in status["components"]] == [GW]
    assert status["components"][0]["id"] == session
    entry = next(s for s in sessions if s["jid"] == GW)
    assert entry["sm"] == "component" and entry["address"].startswith("127.0.0.1")
    assert "xmpp_components 1.0" in metrics


async def test_a_component_silent_before_its_handshake_gets_connection_timeout(
    server_config: ServerConfig, ca: trustme.CA, tmp_path: Path, nursery: trio.Nursery
) -> None:
    running = await start(server_config, ca, tmp_path, nursery, negotiation_timeout=0.3)
    stream = await trio.open_tcp_stream("127.0.0.1", running.component)
    received = b""
    with trio.fail_after(WAIT):
        while chunk := await stream.receive_some(65536):
            received += chunk
    assert b"<connection-timeout" in received and received.endswith(b"</stream:stream>")
    await stream.aclose()
