"""The component role over Trio (XEP-0114): connect to a server's component
port, do the handshake, then send and receive stanzas for the component's
domain.

    async with open_component("gw.example.org", secret, host="127.0.0.1", port=5347) as gw:
        await gw.send(make_message("juliet@example.org", "hi", from_="bot@gw.example.org"))
        async for stanza in gw:
            ...

The protocol is :class:`xmpp_sansio.stream.component.ComponentClientConnection`;
this module only moves bytes. Stanzas are in ``jabber:client`` both ways
(the connection moves them to ``jabber:component:accept`` on the wire); each
must carry ``from`` at the component's domain and a ``to``.
"""

from __future__ import annotations

import itertools
import logging
import random
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from xml.etree.ElementTree import Element

import trio

from xmpp_sansio.client import Addressing, backoff_delay
from xmpp_sansio.disco import DiscoInfo, Identity, build_disco_info
from xmpp_sansio.errors import RemoteProtocolError
from xmpp_sansio.jid import JID
from xmpp_sansio.objects import IqObject, MessageObject, PresenceObject, StanzaObject
from xmpp_sansio.stanza import MessageType, PresenceShow, iq_result, with_attrs
from xmpp_sansio.stream.component import ComponentClientConnection
from xmpp_sansio.stream.config import ComponentClientConfig
from xmpp_sansio.stream.events import Authenticated, StanzaReceived, StreamErrorReceived
from xmpp_sansio.stream.state import State
from xmpp_sansio.xml import ns

from .bot import Bot, BotConfig
from .bot_handlers import BotAPI
from .client import ConnectionFailed, StreamError
from .persistent import NotConnected

__all__ = ["Component", "ComponentBot", "open_component"]

log = logging.getLogger("xmpp_trio.component")


class Component:
    """A component stream after the handshake. Use :func:`open_component`."""

    def __init__(
        self, conn: ComponentClientConnection, stream: trio.abc.Stream, early: list[Element]
    ) -> None:
        self._conn = conn
        self._stream = stream
        self._early = early  # stanzas that came in the same read as <handshake/>
        self._send_lock = trio.Lock()
        self._incoming_send, self._incoming = trio.open_memory_channel[Element](256)
        #: Set when the stream ended; :attr:`error` says why if it failed.
        self.closed = trio.Event()
        self.error: StreamError | None = None

    @property
    def domain(self) -> str:
        """The component's domain."""
        return self._conn.config.domain

    async def send(self, stanza: Element) -> None:
        """Send a stanza (``jabber:client``; ``from`` at :attr:`domain`, and a ``to``)."""
        self._conn.send(stanza)
        await self._flush()

    async def receive(self) -> Element:
        """Wait for the next stanza. Raises ``trio.EndOfChannel`` once closed."""
        return await self._incoming.receive()

    def __aiter__(self) -> AsyncIterator[Element]:
        return self._incoming.__aiter__()

    async def aclose(self) -> None:
        """Close the stream cleanly (RFC 6120 §4.4) and the connection."""
        if not self.closed.is_set():
            self._conn.close()
            with suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                await self._flush()
            with trio.move_on_after(5):
                await self.closed.wait()
        await trio.aclose_forcefully(self._stream)

    async def _flush(self) -> None:
        async with self._send_lock:
            data = self._conn.data_to_send()
            if data:
                await self._stream.send_all(data)

    async def _reader(self) -> None:
        try:
            early, self._early = self._early, []
            for stanza in early:
                await self._incoming_send.send(stanza)
            while not self._conn.should_close:
                try:
                    data = await self._stream.receive_some(65536)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    data = b""
                if data:
                    self._conn.receive_data(data)
                else:
                    self._conn.receive_eof()
                try:
                    while (event := self._conn.next_event()) is not None:
                        if isinstance(event, StanzaReceived):
                            await self._incoming_send.send(event.element)
                        elif isinstance(event, StreamErrorReceived):
                            self.error = StreamError(event.condition, event.text)
                except RemoteProtocolError as exc:
                    self.error = StreamError(exc.condition, exc.text)
                with suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                    await self._flush()
                if not data:
                    break
        finally:
            self.closed.set()
            await self._incoming_send.aclose()


async def _handshake(conn: ComponentClientConnection, stream: trio.abc.Stream) -> list[Element]:
    """Send the header, answer the server's with the handshake, wait for its
    empty ``<handshake/>`` (XEP-0114 §3); raise :class:`StreamError` if refused.
    Returns the stanzas that arrived with the ``<handshake/>``."""
    early: list[Element] = []
    conn.start()
    while conn.state is not State.READY:
        data = conn.data_to_send()
        if data:
            await stream.send_all(data)
        chunk = await stream.receive_some(65536)
        if chunk:
            conn.receive_data(chunk)
        else:
            conn.receive_eof()
        try:
            while (event := conn.next_event()) is not None:
                if isinstance(event, StreamErrorReceived):
                    raise StreamError(event.condition, event.text)
                if isinstance(event, Authenticated):
                    log.info("component %s accepted", event.jid)
                elif isinstance(event, StanzaReceived):
                    early.append(event.element)
        except RemoteProtocolError as exc:
            with suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                await stream.send_all(conn.data_to_send())
            raise StreamError(exc.condition, exc.text) from None
        if not chunk:  # end of file cannot complete the handshake
            raise ConnectionFailed("the server closed the connection during the handshake")
    return early


@asynccontextmanager
async def open_component(
    domain: str,
    secret: str,
    *,
    host: str,
    port: int = 5347,
    timeout: float = 30.0,
) -> AsyncIterator[Component]:
    """Connect to ``host:port``, do the XEP-0114 handshake as ``domain`` and
    yield a :class:`Component`; close on exit.

    Raises :class:`~xmpp_trio.client.StreamError` (``host-unknown``,
    ``not-authorized`` ...) when the server refuses, and
    :class:`~xmpp_trio.client.ConnectionFailed` when it cannot be reached.
    """
    conn = ComponentClientConnection(ComponentClientConfig(domain=domain, secret=secret))
    try:
        with trio.fail_after(timeout):
            stream = await trio.open_tcp_stream(host, port)
    except (OSError, trio.TooSlowError) as exc:
        raise ConnectionFailed(f"could not connect to {host}:{port}: {exc!r}") from exc
    try:
        with trio.fail_after(timeout):
            early = await _handshake(conn, stream)
    except (StreamError, ConnectionFailed):
        await trio.aclose_forcefully(stream)
        raise
    except (OSError, trio.TooSlowError, trio.BrokenResourceError) as exc:
        await trio.aclose_forcefully(stream)
        raise ConnectionFailed(f"the handshake with {host}:{port} failed: {exc!r}") from exc
    component = Component(conn, stream, early)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(component._reader)
        try:
            yield component
        finally:
            with trio.CancelScope(shield=True):
                await component.aclose()
            nursery.cancel_scope.cancel()


# ---------------------------------------------------------------------------
# bots on a component


class _ComponentSender:
    """A bot's connection on a component: stamps ``from`` (the component's
    domain unless given) and pairs iq answers with requests by id."""

    def __init__(self, component: Component) -> None:
        self.component = component
        self.jid = JID.from_parts(None, component.domain, None)
        self._waiting: dict[str, trio.MemorySendChannel[Element]] = {}
        self._ids = itertools.count(1)

    async def send(self, element: Element) -> None:
        if element.get("from") is None:
            element = with_attrs(element, from_=str(self.jid))
        await self.component.send(element)

    async def request(self, iq: Element, *, timeout: float = 30.0) -> Element:
        """Send an iq get/set and wait for its answer (RFC 6120 §8.2.3)."""
        if iq.get("id") is None:
            iq = with_attrs(iq, id=f"cb{next(self._ids)}")
        key = iq.get("id")
        assert key is not None
        send, receive = trio.open_memory_channel[Element](1)
        self._waiting[key] = send
        try:
            await self.send(iq)
            with trio.fail_after(timeout):
                return await receive.receive()
        finally:
            self._waiting.pop(key, None)

    def answered(self, element: Element) -> bool:
        """Whether ``element`` answers a request of :meth:`request` (then taken)."""
        if element.get("type") not in ("result", "error") or not element.tag.endswith("}iq"):
            return False
        waiter = self._waiting.pop(element.get("id") or "", None)
        if waiter is None:
            return False
        waiter.send_nowait(element)
        return True


class _AnsweringAt:
    """The bot as its handlers see it while answering a message sent to
    ``address``: what they send goes out from that address."""

    def __init__(self, bot: ComponentBot, address: JID) -> None:
        self._bot = bot
        self._address = address
        self.config = bot.config
        self.nickname = bot.nickname

    @property
    def jid(self) -> JID:
        return self._address

    @property
    def online(self) -> bool:
        return self._bot.online

    def usages(self) -> list[str]:
        return self._bot.usages()

    async def send(self, stanza: StanzaObject | Element) -> None:
        element = stanza if isinstance(stanza, Element) else stanza.to_element()
        if element.get("from") is None:
            element = with_attrs(element, from_=str(self._address))
        await self._bot.send(element)

    async def send_message(
        self, to: JID | str, body: str, *, type: MessageType = MessageType.CHAT
    ) -> None:
        target = JID.parse(to) if isinstance(to, str) else to
        await self.send(MessageObject(to=target, type=type, body=body))

    async def request(self, iq: IqObject | Element, *, timeout: float = 30.0) -> Element:
        element = iq if isinstance(iq, Element) else iq.to_element()
        if element.get("from") is None:
            element = with_attrs(element, from_=str(self._address))
        return await self._bot.request(element, timeout=timeout)

    async def set_presence(
        self, *, show: PresenceShow | None = None, status: str | None = None
    ) -> None:
        await self._bot.set_presence(show=show, status=status)


class ComponentBot(Bot):
    """The bot framework on an external component (XEP-0114): the handlers
    (:class:`~xmpp_trio.bot.Handler`) answer messages sent to ANY JID at the
    component's domain, from the address each message went to (``respond``
    routes: every one-to-one message; ``hear``: every message with a body).

        bot = ComponentBot("echo.example.org", secret, host="127.0.0.1", port=5347)
        bot.add_handler(SeedEcho)
        await bot.run()

    The component answers disco#info on its domain (identity
    ``component/generic``, XEP-0030 §3.1) and pings (XEP-0199), other iq
    requests with ``service-unavailable`` (RFC 6120 §8.4). It has no roster,
    presence or rooms: :meth:`set_presence` only records. :meth:`run`
    reconnects with jittered exponential backoff; a refused handshake
    (``not-authorized``, ``host-unknown``) ends it with :class:`StreamError`.
    """

    def __init__(
        self,
        domain: str,
        secret: str,
        *,
        host: str = "127.0.0.1",
        port: int = 5347,
        nickname: str = "bot",
        handler_timeout: float = 60.0,
        reconnect_delay: float = 1.0,
        reconnect_max_delay: float = 60.0,
        rng: random.Random | None = None,
    ) -> None:
        domain = JID.parse(domain).domain
        config = BotConfig(
            jid=JID.from_parts(nickname, domain, None),
            password=secret,
            nickname=nickname,
            host=host,
            port=port,
            handler_timeout=handler_timeout,
            reconnect_delay=reconnect_delay,
            reconnect_max_delay=reconnect_max_delay,
            keepalive=0,
            key=domain,
        )
        super().__init__(config, rng=rng)
        self.domain = domain
        # Every sender counts (nobody else has an account at the domain).
        self.addressing = Addressing(JID.from_parts(None, domain, None), nickname)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Connect, serve and reconnect until cancelled; ``task_status.started()``
        once the first connection is online."""
        config = self.config
        attempt = 0
        started = False

        def online() -> None:
            nonlocal started, attempt
            attempt = 0
            if not started:
                started = True
                task_status.started()

        assert config.host is not None and config.port is not None
        while True:
            try:
                async with open_component(
                    self.domain, config.password, host=config.host, port=config.port
                ) as component:
                    await self.serve_component(component, on_online=online)
            except StreamError as exc:
                if exc.condition in _FATAL:
                    raise
                log.warning("component %s: %s", self.domain, exc)
            except ConnectionFailed as exc:
                log.warning("component %s: %s", self.domain, exc)
            delay = backoff_delay(
                attempt, base=config.reconnect_delay, cap=config.reconnect_max_delay, rng=self.rng
            )
            attempt += 1
            await trio.sleep(delay)

    async def serve_component(
        self, component: Component, *, on_online: Callable[[], object] | None = None
    ) -> None:
        """Serve the handlers on an open component stream until it ends."""
        sender = _ComponentSender(component)
        self._connection = sender
        self.sessions += 1
        try:
            log.info("%s online as component %s", self.config.key, component.domain)
            for handler in self.handlers:
                await self._guarded(handler, "on_connected", handler.on_connected())
            self._ready = True
            self._notify()
            if on_online is not None:
                on_online()
            async for stanza in component:
                if not sender.answered(stanza):
                    await self.handle_stanza(stanza)
        finally:
            self._connection = None
            self._ready = False
            self._notify()

    async def set_presence(
        self, *, show: PresenceShow | None = None, status: str | None = None
    ) -> None:
        """Record the presence (a component has no presence session)."""
        self.presence = PresenceObject(show=show, status=status)

    def _answering(self, message: MessageObject) -> BotAPI:
        return _AnsweringAt(self, message.to or JID.from_parts(None, self.domain, None))

    async def _dispatch_iq(self, element: Element) -> None:
        """disco#info of the domain and pings answered, the rest refused."""
        answer = _answer_iq(element, self.domain, self.nickname)
        if answer is not None:
            with suppress(NotConnected, trio.BrokenResourceError, trio.ClosedResourceError):
                await self.send(answer)
            return
        await super()._dispatch_iq(element)


_FATAL = frozenset({"not-authorized", "host-unknown", "invalid-namespace"})
_PING = f"{{{ns.PING}}}ping"
_DISCO_INFO = f"{{{ns.DISCO_INFO}}}query"


def _answer_iq(element: Element, domain: str, name: str) -> Element | None:
    """The component's result for a ping (XEP-0199 §4) or a disco#info of
    its domain (XEP-0030 §3.1), else ``None``."""
    if element.get("type") != "get" or len(element) != 1:
        return None
    payload = element[0]
    if payload.tag == _PING:
        return iq_result(element)
    if payload.tag == _DISCO_INFO and payload.get("node") is None and element.get("to") == domain:
        info = DiscoInfo((Identity("component", "generic", name),), (ns.DISCO_INFO, ns.PING))
        return iq_result(element, build_disco_info(info))
    return None
