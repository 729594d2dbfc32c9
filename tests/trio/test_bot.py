"""The bot framework: dispatch rules on a fake connection, and real bots on the
bundled server talking to our own client and to slixmpp."""

from __future__ import annotations

import dataclasses
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tomllib
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio
import trustme
from conftest import PASSWORDS, RunningServer

from xmpp_sansio.jid import JID
from xmpp_sansio.objects import MessageObject, PresenceObject
from xmpp_sansio.stanza import MessageType, PresenceShow, PresenceType, iq_result
from xmpp_trio.bot import (
    BUILTIN_HANDLERS,
    Bot,
    BotConfig,
    Context,
    Handler,
    HandlerSpec,
    OptionError,
    backoff_delay,
    build_bots,
    hear,
    load_bots_config,
    parse_bots_config,
    respond,
)
from xmpp_trio.cli import main as cli_main
from xmpp_trio.client import Client, open_client
from xmpp_trio.config import ConfigError, ListenerConfig, ServerConfig
from xmpp_trio.server import run_server
from xmpp_trio.storage import AccountStore

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
CHAT_SCRIPT = Path(__file__).parent / "peers" / "slixmpp_chat.py"
MESSAGE = "{jabber:client}message"
WAIT = 10


# --- helpers -----------------------------------------------------------------------


def bot_config(port: int, ca_file: Path, *handlers: str, **changes: Any) -> BotConfig:
    """juliet@localhost as a bot on the loopback server, reconnecting quickly."""
    config = BotConfig(
        jid=JID.parse("juliet@localhost"),
        password=PASSWORDS["juliet"],
        host="127.0.0.1",
        port=port,
        ca_file=ca_file,
        handlers=tuple(HandlerSpec(name) for name in handlers),
        reconnect_delay=0.05,
        reconnect_max_delay=0.5,
        keepalive=0,
    )
    return dataclasses.replace(config, **changes)


@asynccontextmanager
async def romeo(port: int, ca_file: Path) -> AsyncIterator[Client]:
    """Romeo, a user with our own client."""
    import ssl

    async with open_client(
        "romeo@localhost/phone",
        PASSWORDS["romeo"],
        host="127.0.0.1",
        port=port,
        ssl_context=ssl.create_default_context(cafile=str(ca_file)),
    ) as client:
        yield client


def chat(to: str, body: str) -> ET.Element:
    return MessageObject(to=JID.parse(to), type=MessageType.CHAT, body=body).to_element()


async def ask(client: Client, to: str, body: str) -> str:
    """Send ``body`` to ``to`` and return the body of the next chat message from it."""
    await client.send(chat(to, body))
    with trio.fail_after(WAIT):
        async for stanza in client:
            if stanza.tag != MESSAGE:
                continue
            message = MessageObject.from_element(stanza)
            if message.from_ is not None and message.from_.bare == JID.parse(to).bare:
                assert message.body is not None
                return message.body
    raise AssertionError("the stream ended without an answer")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def start_bot(nursery: trio.Nursery, bot: Bot) -> Bot:
    with trio.fail_after(WAIT):
        await nursery.start(bot.run)
    return bot


class FakeConnection:
    """A :class:`~xmpp_trio.bot.Connection` backed by memory channels."""

    def __init__(self, jid: str = "juliet@localhost/bot") -> None:
        self.jid = JID.parse(jid)
        self._incoming_send, self._incoming = trio.open_memory_channel[ET.Element](100)
        self._sent_send, self._sent = trio.open_memory_channel[ET.Element](100)

    async def send(self, stanza: ET.Element) -> None:
        await self._sent_send.send(stanza)

    async def request(self, iq: ET.Element, *, timeout: float = 30.0) -> ET.Element:
        return iq_result(iq)

    def __aiter__(self) -> AsyncIterator[ET.Element]:
        return self._incoming.__aiter__()

    async def deliver(self, stanza: ET.Element | MessageObject | PresenceObject) -> None:
        await self._incoming_send.send(
            stanza if isinstance(stanza, ET.Element) else stanza.to_element()
        )

    async def close(self) -> None:
        await self._incoming_send.aclose()

    async def next_sent(self) -> ET.Element:
        with trio.fail_after(WAIT):
            return await self._sent.receive()

    async def next_message(self) -> MessageObject:
        while True:
            stanza = await self.next_sent()
            if stanza.tag == MESSAGE:
                return MessageObject.from_element(stanza)


def fake_bot(*handlers: type[Handler] | str, **changes: Any) -> Bot:
    """A bot for a fake connection, with handlers (classes or built-in names) in order."""
    config = BotConfig(jid=JID.parse("juliet@localhost"), password="unused", keepalive=0)
    bot = Bot(dataclasses.replace(config, **changes))
    for handler in handlers:
        bot.add_handler(BUILTIN_HANDLERS[handler] if isinstance(handler, str) else handler)
    return bot


@asynccontextmanager
async def serving(bot: Bot) -> AsyncIterator[FakeConnection]:
    """Serve ``bot`` on a fake connection; its initial presence is consumed."""
    connection = FakeConnection()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(bot.serve, connection)
        presence = await connection.next_sent()
        assert presence.tag == "{jabber:client}presence" and presence.get("to") is None
        with trio.fail_after(WAIT):
            await bot.wait_online()
        yield connection
        await connection.close()


def message_from(sender: str, body: str, **kw: Any) -> MessageObject:
    kw.setdefault("type", MessageType.CHAT)
    return MessageObject(
        from_=JID.parse(sender), to=JID.parse("juliet@localhost/bot"), body=body, **kw
    )


class Counter(Handler):
    """Counts; state survives reconnects."""

    @respond(r"^count$", usage="count - counts")
    async def count(self, ctx: Context) -> None:
        ctx.state["n"] = ctx.state.get("n", 0) + 1
        await ctx.reply(str(ctx.state["n"]))


class Fragile(Handler):
    """Fails on "boom", hangs on "hang", answers "ping"."""

    @respond(r"^boom$")
    async def boom(self, ctx: Context) -> None:
        raise RuntimeError("kaboom")

    @respond(r"^hang$")
    async def hang(self, ctx: Context) -> None:
        await trio.sleep_forever()

    @respond(r"^ping$")
    async def ping(self, ctx: Context) -> None:
        await ctx.reply("pong")


class Listener(Handler):
    """Records what it hears and the presence it sees."""

    def setup(self) -> None:
        self.state["heard"] = []
        self.state["presence"] = []

    @hear(r"(?i)coffee")
    async def coffee(self, ctx: Context) -> None:
        self.state["heard"].append((ctx.text, ctx.addressed))

    async def on_presence(self, presence: PresenceObject) -> None:
        self.state["presence"].append(presence)


# --- dispatch rules (fake connection) ------------------------------------------------


async def test_respond_routes_answer_one_to_one_messages_with_or_without_nickname() -> None:
    bot = fake_bot("ping", "echo")
    async with serving(bot) as conn:
        await conn.deliver(message_from("romeo@localhost/phone", "ping", thread="t1"))
        reply = await conn.next_message()
        assert (reply.to, reply.type, reply.body, reply.thread) == (
            JID.parse("romeo@localhost/phone"),
            MessageType.CHAT,
            "pong",
            "t1",
        )
        await conn.deliver(message_from("romeo@localhost/phone", "Juliet: echo  two words"))
        assert (await conn.next_message()).body == "two words"


async def test_room_messages_are_answered_only_when_they_start_with_the_nickname() -> None:
    bot = fake_bot(Listener, "ping")
    listener = bot.handlers[0]
    room = "lobby@conference.localhost"
    async with serving(bot) as conn:
        for body in ("ping", "coffee anyone?"):  # not addressed: heard, not answered
            await conn.deliver(message_from(f"{room}/romeo", body, type=MessageType.GROUPCHAT))
        await conn.deliver(  # the room's echo of the bot's own message
            message_from(f"{room}/juliet", "juliet: ping", type=MessageType.GROUPCHAT)
        )
        await conn.deliver(  # history on joining
            message_from(
                f"{room}/romeo",
                "juliet: ping",
                type=MessageType.GROUPCHAT,
                delay="2020-01-01T00:00:00Z",
            )
        )
        await conn.deliver(
            message_from(f"{room}/romeo", "@juliet ping", type=MessageType.GROUPCHAT)
        )
        reply = await conn.next_message()
        assert (reply.to, reply.type, reply.body) == (
            JID.parse(room),
            MessageType.GROUPCHAT,
            "romeo: pong",
        )
    assert listener.state["heard"] == [("coffee anyone?", False)]


async def test_echo_all_answers_only_what_no_other_handler_answered() -> None:
    bot = fake_bot("ping")
    bot.add_handler(bot_echo_all())
    async with serving(bot) as conn:
        await conn.deliver(message_from("romeo@localhost/phone", "ping"))
        await conn.deliver(message_from("romeo@localhost/phone", "hello there"))
        assert (await conn.next_message()).body == "pong"
        assert (await conn.next_message()).body == "You sent: hello there"


def bot_echo_all() -> type[Handler]:
    from xmpp_trio.bot import EchoHandler

    class EchoAll(EchoHandler):
        def __init__(self, bot: Bot, options: Any = None) -> None:
            super().__init__(bot, {"all": True})

    return EchoAll


async def test_help_lists_the_usage_of_every_handler() -> None:
    bot = fake_bot("help", "ping", "echo", Counter)
    async with serving(bot) as conn:
        await conn.deliver(message_from("romeo@localhost/phone", "help"))
        text = (await conn.next_message()).body or ""
        assert text.splitlines() == [
            "help [topic] - what I can do",
            "ping - answers pong",
            "echo <text> - says <text> back",
            "count - counts",
        ]
        await conn.deliver(message_from("romeo@localhost/phone", "help echo"))
        assert (await conn.next_message()).body == "echo <text> - says <text> back"


async def test_messages_from_the_bots_own_account_and_errors_are_ignored() -> None:
    bot = fake_bot("ping")
    async with serving(bot) as conn:
        await conn.deliver(message_from("juliet@localhost/other", "ping"))
        await conn.deliver(message_from("romeo@localhost/phone", "ping", type=MessageType.ERROR))
        await conn.deliver(message_from("romeo@localhost/phone", "ping", type=MessageType.HEADLINE))
        await conn.deliver(message_from("nurse@localhost/x", "ping"))
        assert (await conn.next_message()).to == JID.parse("nurse@localhost/x")


async def test_presence_hooks_see_others_presence_but_not_the_bots_own() -> None:
    bot = fake_bot(Listener, "ping")
    listener = bot.handlers[0]
    async with serving(bot) as conn:
        await conn.deliver(PresenceObject(from_=JID.parse("juliet@localhost/bot")))
        await conn.deliver(
            PresenceObject(from_=JID.parse("romeo@localhost/phone"), show=PresenceShow.AWAY)
        )
        # Stanzas are dispatched in order: once this is answered, the presence was seen.
        await conn.deliver(message_from("romeo@localhost/phone", "ping"))
        assert (await conn.next_message()).body == "pong"
    assert [p.from_ for p in listener.state["presence"]] == [JID.parse("romeo@localhost/phone")]
    assert listener.state["presence"][0].show is PresenceShow.AWAY


async def test_unhandled_iq_requests_get_service_unavailable() -> None:
    bot = fake_bot()
    async with serving(bot) as conn:
        iq = ET.Element(
            "{jabber:client}iq", {"type": "get", "id": "q1", "from": "romeo@localhost/phone"}
        )
        ET.SubElement(iq, "{urn:example:q}query")
        await conn.deliver(iq)
        answer = await conn.next_sent()
    assert answer.get("type") == "error" and answer.get("to") == "romeo@localhost/phone"
    assert answer.find(".//{urn:ietf:params:xml:ns:xmpp-stanzas}service-unavailable") is not None


async def test_presence_set_while_online_is_sent_and_restored_on_the_next_session() -> None:
    bot = fake_bot()
    async with serving(bot) as conn:
        await bot.set_presence(show=PresenceShow.DND, status="busy")
        sent = PresenceObject.from_element(await conn.next_sent())
        assert (sent.show, sent.status) == (PresenceShow.DND, "busy")
    connection = FakeConnection()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(bot.serve, connection)
        restored = PresenceObject.from_element(await connection.next_sent())
        await connection.close()
    assert (restored.type, restored.show, restored.status) == (
        PresenceType.AVAILABLE,
        PresenceShow.DND,
        "busy",
    )


async def test_rooms_are_joined_without_history_and_a_nick_conflict_is_retried() -> None:
    bot = fake_bot(rooms=(JID.parse("lobby@conference.localhost"),))
    muc = "{http://jabber.org/protocol/muc}"
    async with serving(bot) as conn:
        join = await conn.next_sent()
        assert join.get("to") == "lobby@conference.localhost/juliet"
        assert join.find(f"{muc}x/{muc}history").get("maxstanzas") == "0"  # type: ignore[union-attr]
        await conn.deliver(
            ET.fromstring(
                "<presence xmlns='jabber:client' type='error' from='lobby@conference.localhost/juliet'>"
                "<error type='cancel'><conflict xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>"
                "</presence>"
            )
        )
        retry = await conn.next_sent()
        assert retry.get("to") == "lobby@conference.localhost/juliet_"
        await conn.deliver(
            ET.fromstring(
                "<presence xmlns='jabber:client' from='lobby@conference.localhost/juliet_'>"
                "<x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='none' role='participant'/>"
                "<status code='110'/></x></presence>"
            )
        )
        with trio.fail_after(WAIT):
            view = await bot.rooms.wait_joined(JID.parse("lobby@conference.localhost"))
        assert view.nick == "juliet_"


async def test_a_slow_handler_is_cancelled_after_handler_timeout(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bot = fake_bot(Fragile, handler_timeout=0.1)
    async with serving(bot) as conn:
        await conn.deliver(message_from("romeo@localhost/phone", "hang"))
        await conn.deliver(message_from("romeo@localhost/phone", "ping"))
        assert (await conn.next_message()).body == "pong"
    assert "Fragile.hang took longer than 0.1 s" in caplog.text


async def test_keepalive_ends_a_session_whose_server_stops_answering_pings(
    autojump_clock: trio.abc.Clock,
) -> None:
    from xmpp_trio.client import IqTimeoutError

    pings: list[ET.Element] = []

    class Deaf(FakeConnection):
        async def request(self, iq: ET.Element, *, timeout: float = 30.0) -> ET.Element:
            pings.append(iq)
            if len(pings) == 1:
                return iq_result(iq)
            await trio.sleep(timeout)
            raise IqTimeoutError("no answer")

    bot = fake_bot(keepalive=30.0)
    with trio.fail_after(300):
        await bot.serve(Deaf())  # returns by itself: the second ping is not answered
    assert len(pings) == 2 and not bot.online
    assert pings[0].get("to") == "localhost"
    assert pings[0].find("{urn:xmpp:ping}ping") is not None


def test_an_overridden_route_method_without_decorator_drops_the_route() -> None:
    class Quiet(Fragile):
        async def ping(self, ctx: Context) -> None:
            pass

    assert [r.method for r in Fragile.routes] == ["boom", "hang", "ping"]
    assert [r.method for r in Quiet.routes] == ["boom", "hang"]


def test_backoff_grows_to_the_cap_and_is_jittered_reproducibly() -> None:
    rng = random.Random(7)
    delays = [backoff_delay(n, base=1.0, cap=30.0, rng=rng) for n in range(12)]
    assert all(0.5 <= d <= 30.0 for d in delays)
    for n, delay in enumerate(delays):
        ceiling = min(30.0, 2.0**n)
        assert ceiling / 2 <= delay <= ceiling
    again = random.Random(7)
    assert delays == [backoff_delay(n, base=1.0, cap=30.0, rng=again) for n in range(12)]
    assert len(set(delays[5:])) > 1  # jittered, not a constant at the cap
    assert backoff_delay(10_000, base=1.0, cap=30.0, rng=rng) <= 30.0


# --- real server ---------------------------------------------------------------------


async def test_bot_answers_a_slixmpp_user_in_one_to_one_chat(
    server: RunningServer, nursery: trio.Nursery
) -> None:
    await start_bot(
        nursery, Bot(bot_config(server.starttls_port, server.ca_file, "help", "ping", "echo"))
    )
    result = await trio.run_process(
        [
            sys.executable,
            str(CHAT_SCRIPT),
            "romeo@localhost/slix",
            PASSWORDS["romeo"],
            "127.0.0.1",
            str(server.starttls_port),
            str(server.ca_file),
            "juliet@localhost",
            "ping",
            "echo hello there",
            "juliet: help",
        ],
        capture_stdout=True,
        capture_stderr=True,
        check=False,
    )
    output = result.stdout.decode()
    replies = [json.loads(line[4:]) for line in output.splitlines() if line.startswith("GOT ")]
    assert replies[:2] == ["pong", "hello there"], output + result.stderr.decode()
    assert "ping - answers pong" in replies[2]


async def test_a_handler_that_raises_is_logged_and_the_bot_keeps_answering(
    server: RunningServer, nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    bot = Bot(bot_config(server.starttls_port, server.ca_file))
    bot.add_handler(Fragile)
    await start_bot(nursery, bot)
    async with romeo(server.starttls_port, server.ca_file) as client:
        await client.send(chat("juliet@localhost", "boom"))
        assert await ask(client, "juliet@localhost", "ping") == "pong"
    failures = [r for r in caplog.records if "Fragile.boom failed" in r.getMessage()]
    assert len(failures) == 1
    assert failures[0].exc_info is not None and "kaboom" in str(failures[0].exc_info[1])
    assert bot.online


async def run_server_in(
    scope: trio.CancelScope,
    config: ServerConfig,
    *,
    task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED,
) -> None:
    with scope:
        await run_server(config, task_status=task_status)


async def test_bot_reconnects_after_a_server_restart_and_its_handlers_keep_working(
    server_config: ServerConfig, ca: trustme.CA, tmp_path: Path, nursery: trio.Nursery
) -> None:
    port = free_port()
    config = dataclasses.replace(
        server_config, listeners=(ListenerConfig("c2s-starttls", "127.0.0.1", port),)
    )
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    first = trio.CancelScope()
    await nursery.start(run_server_in, first, config)
    bot = Bot(bot_config(port, ca_file, "ping"))
    bot.add_handler(Counter)
    await start_bot(nursery, bot)
    async with romeo(port, ca_file) as client:
        assert await ask(client, "juliet@localhost", "count") == "1"

    first.cancel()
    with trio.fail_after(WAIT):
        await bot.wait_offline()
    await nursery.start(run_server_in, trio.CancelScope(), config)  # same port
    with trio.fail_after(WAIT):
        await bot.wait_online(sessions=2)
    async with romeo(port, ca_file) as client:
        assert await ask(client, "juliet@localhost", "ping") == "pong"
        assert await ask(client, "juliet@localhost", "count") == "2"  # state kept


async def wait_for_output(stream: trio.abc.ReceiveStream, marker: bytes, seen: bytearray) -> None:
    with trio.fail_after(20):
        while marker not in seen:
            chunk = await stream.receive_some()
            if not chunk:
                raise AssertionError(f"the process ended before {marker!r}:\n{seen.decode()}")
            seen += chunk


async def drain(stream: trio.abc.ReceiveStream, seen: bytearray) -> None:
    while chunk := await stream.receive_some():
        seen += chunk


@asynccontextmanager
async def bot_process(args: list[str], env: dict[str, str]) -> AsyncIterator[trio.Process]:
    """Run a bot process until it is online; SIGTERM it at the end and check it exits 0."""
    seen = bytearray()
    process = await trio.lowlevel.open_process(
        args, stderr=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(REPO), **env}
    )
    try:
        assert process.stderr is not None
        await wait_for_output(process.stderr, b"online as", seen)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(drain, process.stderr, seen)
            yield process
            process.send_signal(signal.SIGTERM)
            with trio.fail_after(WAIT):
                assert await process.wait() == 0, seen.decode()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_echo_example_works_as_written(server: RunningServer) -> None:
    async with (
        bot_process(
            [
                sys.executable,
                str(EXAMPLES / "echo_bot.py"),
                "juliet@localhost",
                "--host",
                "127.0.0.1",
                "--port",
                str(server.starttls_port),
                "--ca-file",
                str(server.ca_file),
            ],
            {"BOT_PASSWORD": PASSWORDS["juliet"]},
        ),
        romeo(server.starttls_port, server.ca_file) as client,
    ):
        assert await ask(client, "juliet@localhost", "hello") == "You sent: hello"
        assert await ask(client, "juliet@localhost", "ping") == "You sent: ping"


async def test_presence_example_greets_contacts_coming_online(
    server: RunningServer, nursery: trio.Nursery
) -> None:
    module = load_example("presence_bot")
    bot = Bot(bot_config(server.starttls_port, server.ca_file))
    bot.add_handler(module.PresenceGreeter)
    await start_bot(nursery, bot)
    async with romeo(server.starttls_port, server.ca_file) as client:
        await client.send(PresenceObject(to=JID.parse("juliet@localhost")).to_element())
        with trio.fail_after(WAIT):
            async for stanza in client:
                if stanza.tag == MESSAGE:
                    assert (
                        MessageObject.from_element(stanza).body == "Hello, romeo! Good to see you."
                    )
                    break
        assert await ask(client, "juliet@localhost", "who") == "Online: romeo@localhost"


async def test_presence_example_accepts_subscriptions_and_greets_contacts_from_its_roster(
    server: RunningServer, nursery: trio.Nursery
) -> None:
    module = load_example("presence_bot")
    bot = Bot(bot_config(server.starttls_port, server.ca_file))
    bot.add_handler(module.PresenceGreeter)
    await start_bot(nursery, bot)
    async with romeo(server.starttls_port, server.ca_file) as client:
        juliet = JID.parse("juliet@localhost")
        await client.send(PresenceObject().to_element())
        await client.send(PresenceObject(to=juliet, type=PresenceType.SUBSCRIBE).to_element())
        greeting = None
        with trio.fail_after(WAIT):
            async for stanza in client:
                if stanza.tag == "{jabber:client}presence":
                    presence = PresenceObject.from_element(stanza)
                    if presence.from_ == juliet and presence.type is PresenceType.SUBSCRIBE:
                        # The bot asks back; approving makes the server send it our presence.
                        await client.send(
                            PresenceObject(to=juliet, type=PresenceType.SUBSCRIBED).to_element()
                        )
                elif stanza.tag == MESSAGE:
                    greeting = MessageObject.from_element(stanza).body
                    break
        assert greeting == "Hello, romeo! Good to see you."
        assert await ask(client, "juliet@localhost", "who") == "Online: romeo@localhost"


def load_example(name: str) -> Any:
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_example_bots_file_runs_with_its_builtins_and_handler_module(
    server: RunningServer, nursery: trio.Nursery
) -> None:
    path = EXAMPLES / "bots.toml"
    data = tomllib.loads(path.read_text())
    with AccountStore.open(server.config.database_path) as store:
        for bot in data["bots"]:
            local = bot["jid"].split("@")[0]
            store.create(local, "localhost", bot["password"], iterations=4096)
            # Point the file's bots at the test server instead of a default local one.
            bot.update(port=server.starttls_port, ca_file=str(server.ca_file))
    bots = build_bots(parse_bots_config(data, path))
    assert [h.name for h in bots[0].handlers] == ["help", "ping", "echo", "dice"]
    for bot in bots:
        await start_bot(nursery, bot)
    async with romeo(server.starttls_port, server.ca_file) as client:
        assert re.fullmatch(
            r"[1-6] \+ [1-6] = \d+", await ask(client, "helper@localhost", "roll 2d6")
        )
        assert await ask(client, "helper@localhost", "ping") == "pong"
        assert "roll [NdM]" in await ask(client, "helper@localhost", "help")
        assert await ask(client, "echobot@localhost", "hi") == "You sent: hi"


async def test_bot_command_runs_a_bots_file_until_sigterm(
    server: RunningServer, tmp_path: Path
) -> None:
    bots_file = tmp_path / "bots.toml"
    bots_file.write_text(
        "[[bots]]\n"
        'jid = "juliet@localhost"\n'
        'password_env = "JULIET_PASSWORD"\n'
        'host = "127.0.0.1"\n'
        f"port = {server.starttls_port}\n"
        f'ca_file = "{server.ca_file}"\n'
        'handlers = ["ping"]\n'
    )
    async with (
        bot_process(
            [sys.executable, "-m", "xmpp_trio", "bot", str(bots_file)],
            {"JULIET_PASSWORD": PASSWORDS["juliet"]},
        ),
        romeo(server.starttls_port, server.ca_file) as client,
    ):
        assert await ask(client, "juliet@localhost", "ping") == "pong"


async def test_a_refused_password_stops_the_bot_instead_of_retrying(server: RunningServer) -> None:
    from xmpp_trio.client import AuthenticationError

    bot = Bot(bot_config(server.starttls_port, server.ca_file, password="wrong"))
    with pytest.raises(AuthenticationError), trio.fail_after(WAIT):
        await bot.run()


# --- configuration errors --------------------------------------------------------------

GOOD_BOT = 'jid = "bot@localhost"\npassword = "pw"\n'


@pytest.mark.parametrize(
    ("toml", "key", "reason"),
    [
        ("", "bots", "at least one"),
        ("bogus = 1\n[[bots]]\n" + GOOD_BOT, "bogus", "unknown key"),
        ('log_level = "loud"\n[[bots]]\n' + GOOD_BOT, "log_level", "must be one of"),
        ('[[bots]]\npassword = "pw"\n', "bots[0].jid", "required"),
        ('[[bots]]\njid = "bot@localhost/x"\npassword = "pw"\n', "bots[0].jid", "resource"),
        ('[[bots]]\njid = "localhost"\npassword = "pw"\n', "bots[0].jid", "localpart"),
        ('[[bots]]\njid = "bot@localhost"\n', "bots[0].password", "exactly one"),
        ("[[bots]]\n" + GOOD_BOT + 'pasword = "x"\n', "bots[0].pasword", "did you mean 'password'"),
        ("[[bots]]\n" + GOOD_BOT + "port = 5222\n", "bots[0].port", "needs 'host'"),
        ("[[bots]]\n" + GOOD_BOT + 'host = "h"\nport = 70000\n', "bots[0].port", "1-65535"),
        ("[[bots]]\n" + GOOD_BOT + 'ca_file = "missing.pem"\n', "bots[0].ca_file", "no such file"),
        ("[[bots]]\n" + GOOD_BOT + 'rooms = ["lobby"]\n', "bots[0].rooms[0]", "room@service"),
        ("[[bots]]\n" + GOOD_BOT + "keepalive = -1\n", "bots[0].keepalive", "zero or positive"),
        (
            "[[bots]]\n" + GOOD_BOT + "reconnect_max_delay = 0.5\n",
            "bots[0].reconnect_max_delay",
            "at least",
        ),
        (
            "[[bots]]\n" + GOOD_BOT + 'handlers = ["weather"]\n',
            "bots[0].handlers[0].module",
            "built-in",
        ),
        (
            "[[bots]]\n" + GOOD_BOT + "[[bots.handlers]]\noptions = {}\n",
            "bots[0].handlers[0].module",
            "required",
        ),
        (
            "[[bots]]\n" + GOOD_BOT + '[[bots.handlers]]\nmodule = "echo"\noption = {}\n',
            "bots[0].handlers[0].option",
            "did you mean 'options'",
        ),
        (
            "[[bots]]\n" + GOOD_BOT + "[[bots]]\n" + GOOD_BOT,
            "bots[1].jid",
            "also bots[0]",
        ),
    ],
)
def test_config_errors_name_the_offending_key(
    tmp_path: Path, toml: str, key: str, reason: str
) -> None:
    path = tmp_path / "bots.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError) as info:
        load_bots_config(path)
    assert info.value.key == key
    assert f"{path}: {key}: " in str(info.value)
    assert reason in str(info.value)


@pytest.mark.parametrize(
    ("handler", "key", "reason"),
    [
        ('module = "no_such_module_xyz:H"', "bots[0].handlers[0].module", "cannot import"),
        ('module = "json:Nope"', "bots[0].handlers[0].module", "has no 'Nope'"),
        ('module = "json:JSONDecoder"', "bots[0].handlers[0].module", "not a subclass"),
        (
            'module = "echo"\noptions = { all = "yes" }',
            "bots[0].handlers[0].options.all",
            "true or false",
        ),
        (
            'module = "echo"\noptions = { colour = 1 }',
            "bots[0].handlers[0].options.colour",
            "unknown option",
        ),
        (
            'module = "echo"\noptions = { template = "{who}" }',
            "bots[0].handlers[0].options.template",
            "{body}",
        ),
    ],
)
def test_handler_errors_name_the_offending_key(
    tmp_path: Path, handler: str, key: str, reason: str
) -> None:
    path = tmp_path / "bots.toml"
    path.write_text("[[bots]]\n" + GOOD_BOT + "[[bots.handlers]]\n" + handler + "\n")
    with pytest.raises(ConfigError) as info:
        build_bots(load_bots_config(path))
    assert info.value.key == key
    assert reason in str(info.value)


def test_handler_option_helper_reports_the_option_name() -> None:
    class Needy(Handler):
        def setup(self) -> None:
            self.limit = self.option("limit", int, 3)

    bot = fake_bot()
    assert bot.add_handler(Needy, {"limit": 5}).state == {}
    with pytest.raises(ConfigError, match=r"needy\.options\.limit: must be an integer"):
        bot.add_handler(Needy, {"limit": "five"}, key="needy")
    with pytest.raises(OptionError):
        Needy(bot, {"limit": True})


def test_bot_command_prints_config_errors_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bots.toml"
    path.write_text('[[bots]]\njid = "bot@localhost"\npassword = "pw"\nport = "x"\n')
    assert cli_main(["bot", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("xmpp-trio: error: invalid bots file: ")
    assert "bots[0].port" in err


def test_bot_command_check_lists_bots_handlers_and_rooms(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bots.toml"
    path.write_text(
        "[[bots]]\n"
        + GOOD_BOT
        + 'rooms = ["lobby@conference.localhost"]\nhandlers = ["help", "ping"]\n'
    )
    assert cli_main(["bot", str(path), "--check"]) == 0
    out = capsys.readouterr().out
    assert "bot@localhost/bot (nickname bot): handlers help, ping" in out
    assert "rooms: lobby@conference.localhost" in out


def test_room_bot_example_file_is_valid(tmp_path: Path) -> None:
    data = tomllib.loads((EXAMPLES / "room_bot.toml").read_text())
    for bot in data["bots"]:
        bot.pop("ca_file")  # the default server's certificate is not here
    config = parse_bots_config(data, EXAMPLES / "room_bot.toml")
    assert [str(room) for room in config.bots[0].rooms] == [
        "lobby@conference.localhost",
        "dev@conference.localhost",
    ]


# --- the persistent client under the bot ------------------------------------------------


class Sessions(Counter):
    """Counts, and counts the new sessions it is told about."""

    def setup(self) -> None:
        self.state["connected"] = 0

    async def on_connected(self) -> None:
        self.state["connected"] += 1


async def test_a_bot_resumes_its_session_after_a_broken_connection_without_losing_a_message(
    server: RunningServer, nursery: trio.Nursery
) -> None:
    bot = Bot(bot_config(server.starttls_port, server.ca_file))
    handler = bot.add_handler(Sessions)
    await start_bot(nursery, bot)
    async with romeo(server.starttls_port, server.ca_file) as client:
        assert await ask(client, "juliet@localhost", "count") == "1"
        pc = bot.persistent
        assert pc is not None
        await pc.client.abort()  # the network goes away: no </stream:stream>
        await client.send(chat("juliet@localhost", "count"))  # held for the session
        with trio.fail_after(WAIT):
            await bot.wait_online(sessions=2)
        assert pc.resumed and handler.state["connected"] == 1  # the session carried on
        with trio.fail_after(WAIT):
            async for stanza in client:
                if stanza.tag == MESSAGE:
                    assert MessageObject.from_element(stanza).body == "2"
                    break


async def test_a_bot_answers_disco_about_itself_as_a_client_bot(
    server: RunningServer, nursery: trio.Nursery
) -> None:
    from xmpp_sansio.disco import info_query, parse_disco_info
    from xmpp_sansio.stanza import IqType, make_iq

    bot = await start_bot(nursery, Bot(bot_config(server.starttls_port, server.ca_file)))
    async with romeo(server.starttls_port, server.ca_file) as client:
        query = make_iq(IqType.GET, "", info_query(), to=str(bot.jid))
        result = await client.request(query, timeout=WAIT)
    info = parse_disco_info(result[0])
    assert [(i.category, i.type, i.name) for i in info.identities] == [("client", "bot", "juliet")]
    assert "urn:xmpp:ping" in info.features
