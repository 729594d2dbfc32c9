"""A small bot framework (in the spirit of Elixir's Hedwig) on the persistent client.

A bot is an XMPP account plus a list of *handlers*. A handler is a class with
methods registered for messages::

    from xmpp_trio.bot import Context, Handler, hear, respond

    class Greeter(Handler):
        @respond(r"^hello$", usage="hello - says hello back")
        async def hello(self, ctx: Context) -> None:
            await ctx.reply(f"Hello, {ctx.nick}!")

        @hear(r"\\bcoffee\\b")
        async def coffee(self, ctx: Context) -> None:
            self.state["coffees"] = self.state.get("coffees", 0) + 1

* :func:`hear` matches every message with a body the bot sees (one-to-one
  chat and room messages);
* :func:`respond` matches messages *addressed* to the bot: every one-to-one
  message, and room messages that start with the bot's nickname
  (``bot: ping``, ``bot, ping``, ``@bot ping``). The nickname prefix is removed
  before matching (also in one-to-one chat, where it is optional).
  ``respond(..., fallback=True)`` routes run only for addressed messages no
  other ``respond`` route matched.

Patterns are matched with :meth:`re.Pattern.search`; anchor them with ``^``/``$``
as needed. A route's method gets a :class:`Context` with the match, the message
(:class:`~xmpp_sansio.objects.MessageObject`), ``reply()``, the bot's
``send()``, the handler's ``state`` dict and its ``options`` from the config.
Handlers run one at a time, in the order messages arrive; one that raises is
logged with its traceback and the bot carries on, one that takes longer than
``handler_timeout`` is cancelled.

Bots are declared in TOML (see :func:`load_bots_config`) and run with
``xmpp-trio bot BOTS.toml``, or built in Python with :class:`Bot` and run with
:func:`run`. A running bot is a :class:`~xmpp_trio.persistent.PersistentClient`
(its one reconnection loop and keepalive): it connects, sends initial presence
(RFC 6121 §4.2: without it, messages to the bare JID are not delivered to it),
pings the server to notice dead connections, and reconnects with bounded,
jittered exponential backoff (:data:`~xmpp_sansio.client.BOT_RECONNECT`: only
refused credentials stop it). A broken connection is first *resumed*
(XEP-0198) when the server offers stream management: nothing is lost and the
session (presence, rooms) carries on, so the handlers' ``on_connected`` is not
called; otherwise a new session restores the bot's presence, joins its
rooms again and calls ``on_connected``.
Disco, caps, ping and roster push requests to the bot are answered by the
sans-IO :class:`~xmpp_sansio.client.ClientServices` (through
:class:`~xmpp_trio.im.IMClient`), any other request with
``service-unavailable`` (RFC 6120 §8.4).

The module is split by what each part owns: :mod:`xmpp_trio.bot_handlers`
(routes, :class:`Handler`, :class:`Context`, the built-ins),
:mod:`xmpp_trio.bot_config` (bots files) and this one (running bots); every
name is importable from here.

Rooms (XEP-0045): on every new session the bot joins the rooms of its
``rooms`` with ``<history maxstanzas='0'/>`` (:meth:`Bot._join_rooms`,
through :class:`~xmpp_trio.muc.Rooms`), accepting the default configuration
of a room its join created (an instant room); a nick conflict is retried with
``_`` appended (three times at most), other refusals are logged. Room
presence is followed there and not passed to the handlers; room messages go
to the handlers with nickname addressing (:class:`~xmpp_sansio.client.Addressing`:
``respond`` routes answer messages that start with the bot's nickname, the
room's echo of the bot's own messages and history are ignored).
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import random
import re
import signal
import ssl
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, cast
from xml.etree.ElementTree import Element

import trio

from xmpp_sansio.client import BOT_RECONNECT, Addressing, backoff_delay, service_unavailable
from xmpp_sansio.client.muc import RoomEvent, RoomEventKind, config_submit
from xmpp_sansio.disco import Identity
from xmpp_sansio.jid import JID
from xmpp_sansio.objects import IqObject, MessageObject, PresenceObject, StanzaObject
from xmpp_sansio.stanza import (
    IqType,
    MessageType,
    PresenceShow,
    StanzaKind,
    can_reply_with_error,
    stanza_kind,
)

from .bot_config import (
    LOG_LEVELS,
    BotConfig,
    BotsConfig,
    HandlerSpec,
    load_bots_config,
    parse_bots_config,
)
from .bot_handlers import (
    BUILTIN_HANDLERS,
    BotAPI,
    Context,
    EchoHandler,
    Handler,
    HelpHandler,
    OptionError,
    PingHandler,
    Route,
    hear,
    respond,
)
from .client import AuthenticationError, CertificateError
from .config import ConfigError
from .im import IMClient
from .login_state import LoginState
from .muc import Rooms
from .persistent import NotConnected, PersistentClient, keepalive, open_persistent_client

__all__ = [
    "BUILTIN_HANDLERS",
    "LOG_LEVELS",
    "Bot",
    "BotAPI",
    "BotConfig",
    "BotsConfig",
    "Connection",
    "Context",
    "EchoHandler",
    "Handler",
    "HandlerSpec",
    "HelpHandler",
    "NotConnected",
    "OptionError",
    "PingHandler",
    "Route",
    "backoff_delay",
    "build_bots",
    "hear",
    "load_bots_config",
    "parse_bots_config",
    "respond",
    "run",
    "serve_bots",
]

log = logging.getLogger("xmpp_trio.bot")


def _load_handler_class(
    spec: HandlerSpec, base_dir: Path | None, path: Path | None
) -> type[Handler]:
    builtin = BUILTIN_HANDLERS.get(spec.module)
    if builtin is not None:
        return builtin
    module_name, _, class_name = spec.module.partition(":")
    if base_dir is not None and str(base_dir) not in sys.path:
        sys.path.insert(0, str(base_dir))
    key = f"{spec.key}.module"
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise ConfigError(f"cannot import {module_name!r}: {exc!r}", path=path, key=key) from None
    cls = getattr(module, class_name, None)
    if cls is None:
        raise ConfigError(f"module {module_name!r} has no {class_name!r}", path=path, key=key)
    if not (isinstance(cls, type) and issubclass(cls, Handler)):
        raise ConfigError(
            f"{spec.module} is not a subclass of xmpp_trio.bot.Handler", path=path, key=key
        )
    return cls


# ---------------------------------------------------------------------------
# the bot


class Connection(Protocol):
    """What :meth:`Bot.serve` needs from a connection (:class:`~xmpp_trio.client.Client` has it)."""

    @property
    def jid(self) -> JID: ...

    async def send(self, stanza: Element) -> None: ...

    async def request(self, iq: Element, *, timeout: float = 30.0) -> Element: ...

    def __aiter__(self) -> AsyncIterator[Element]: ...


class _Sender(Protocol):
    """Where a bot's stanzas go: a :class:`Connection` or the persistent client."""

    @property
    def jid(self) -> JID: ...

    async def send(self, stanza: Element) -> None: ...

    async def request(self, iq: Element, *, timeout: float = 30.0) -> Element: ...


class Bot:
    """One bot: a configuration, its handlers and (while running) a connection.

    Build it from a :class:`BotConfig` (handlers declared there are loaded
    and instantiated now, so configuration mistakes surface early as
    :class:`ConfigError`), add more handlers with :meth:`add_handler`, then
    ``await bot.run()``. ``rng`` drives the reconnection jitter.
    """

    #: The disco identity of bots (XEP-0030 §3.1, registry category client/bot).
    identity_type = "bot"

    def __init__(
        self,
        config: BotConfig,
        *,
        rng: random.Random | None = None,
        config_path: Path | None = None,
        login_state: LoginState | str | os.PathLike[str] | None = None,
    ) -> None:
        self.config = config
        self.rng = rng if rng is not None else random.Random()
        self.nickname = config.nickname or config.jid.local or "bot"
        self.handlers: list[Handler] = []
        self.presence = PresenceObject()
        self.sessions = 0
        self.addressing = Addressing(config.jid, self.nickname)
        """Which messages concern the bot (sans I/O)."""
        self._connection: _Sender | None = None
        self._pc: PersistentClient | None = None
        self._im: IMClient | None = None
        self.rooms = Rooms(self)
        """The rooms the bot is in (XEP-0045)."""
        self._room_attempts: dict[JID, int] = {}
        self._ready = False
        self._changed = trio.Event()
        # The user-agent id and FAST token (XEP-0388, XEP-0484): in the 0600
        # file ``login_state`` when given, else for this run only.
        self.login_state = (
            login_state
            if isinstance(login_state, LoginState) or login_state is None
            else LoginState.load(login_state)
        ) or LoginState()
        self._ssl_context: ssl.SSLContext | None = None
        if config.ca_file is not None:
            try:
                self._ssl_context = ssl.create_default_context(cafile=str(config.ca_file))
            except (OSError, ssl.SSLError) as exc:
                raise ConfigError(
                    f"cannot load certificates from {config.ca_file}: {exc}",
                    path=config_path,
                    key=f"{config.key}.ca_file",
                ) from None
        for spec in config.handlers:
            cls = _load_handler_class(spec, config.base_dir, config_path)
            self.add_handler(cls, spec.options, key=spec.key, config_path=config_path)

    def __repr__(self) -> str:
        return f"<Bot {self.config.full_jid} {'online' if self.online else 'offline'}>"

    # -- handlers -------------------------------------------------------------

    def add_handler(
        self,
        cls: type[Handler],
        options: Mapping[str, Any] | None = None,
        *,
        key: str | None = None,
        config_path: Path | None = None,
    ) -> Handler:
        """Instantiate ``cls`` with ``options`` for this bot and append it.

        An :class:`OptionError` becomes a :class:`ConfigError` naming
        ``<key>.options.<option>``.
        """
        where = key or cls.name
        try:
            handler = cls(self, options)
        except OptionError as exc:
            raise ConfigError(
                str(exc), path=config_path, key=f"{where}.options.{exc.key}"
            ) from None
        except (TypeError, ValueError) as exc:
            raise ConfigError(str(exc), path=config_path, key=f"{where}.options") from None
        self.handlers.append(handler)
        return handler

    def usages(self) -> list[str]:
        """Every handler's usage strings, in handler order."""
        return [usage for handler in self.handlers for usage in handler.usages()]

    # -- state ------------------------------------------------------------------

    @property
    def online(self) -> bool:
        """True while connected, with presence sent and the handlers told."""
        return self._ready

    @property
    def persistent(self) -> PersistentClient | None:
        """The persistent client while :meth:`run` runs (``None`` otherwise)."""
        return self._pc

    @property
    def jid(self) -> JID:
        """The bound full JID while online, else the configured one."""
        return self._connection.jid if self._connection is not None else self.config.full_jid

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    async def wait_online(self, sessions: int = 1) -> None:
        """Wait until the bot is online in its ``sessions``-th session (or a later one)."""
        while not (self.online and self.sessions >= sessions):
            await self._changed.wait()

    async def wait_offline(self) -> None:
        """Wait until the bot has no connection."""
        while self.online:
            await self._changed.wait()

    # -- sending ----------------------------------------------------------------

    def _require_connection(self) -> _Sender:
        if self._connection is None:
            raise NotConnected(f"{self.config.full_jid} is not connected")
        return self._connection

    async def send(self, stanza: StanzaObject | Element) -> None:
        """Send a stanza object or element.

        Under :meth:`run`, while the bot reconnects, waits for the connection
        (up to the persistent client's ``wait_timeout``) and then raises
        :class:`NotConnected`; with a stanza retransmitted on a resumed
        session, the answer goes out on that session. Outside :meth:`run`
        and :meth:`serve`, raises :class:`NotConnected` at once.
        """
        connection = self._require_connection()
        element = stanza if isinstance(stanza, Element) else stanza.to_element()
        await connection.send(element)

    async def send_message(
        self, to: JID | str, body: str, *, type: MessageType = MessageType.CHAT
    ) -> None:
        """Send a message with a body (``chat`` by default)."""
        target = JID.parse(to) if isinstance(to, str) else to
        await self.send(MessageObject(to=target, type=type, body=body))

    async def request(self, iq: IqObject | Element, *, timeout: float = 30.0) -> Element:
        """Send an iq get/set and return the result (see :meth:`Client.request`)."""
        connection = self._require_connection()
        element = iq if isinstance(iq, Element) else iq.to_element()
        return await connection.request(element, timeout=timeout)

    async def set_presence(
        self, *, show: PresenceShow | None = None, status: str | None = None
    ) -> None:
        """Change the bot's presence; it is also restored after every new session."""
        self.presence = PresenceObject(show=show, status=status)
        if self._pc is not None:
            await self._pc.set_presence(show=show, status=status)
        elif self._im is not None:
            await self._im.send_presence(show=show, status=status)

    def _im_options(self) -> dict[str, Any]:
        """How each connection's :class:`~xmpp_trio.im.IMClient` is set up for a bot."""
        return {
            "presence_stanzas": True,
            "identity": Identity("client", self.identity_type, self.nickname),
        }

    # -- running ----------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Connect and serve forever on a persistent client; cancel to stop.

        ``task_status.started()`` is called once the first session is online.
        Returns only by raising: :class:`AuthenticationError` for credentials
        the server refuses or :class:`CertificateError` for a certificate not
        trusted (retrying cannot help), or ``Cancelled``.
        """
        config = self.config
        async with open_persistent_client(
            config.full_jid,
            config.password,
            backoff_base=config.reconnect_delay,
            backoff_cap=config.reconnect_max_delay,
            rng=self.rng,
            on_connected=self._on_new_session,
            im_options=self._im_options(),
            keepalive=config.keepalive or None,
            policy=BOT_RECONNECT,
            login_state=self.login_state,
            host=config.host,
            port=config.port,
            direct_tls=config.direct_tls,
            ssl_context=self._ssl_context,
        ) as pc:
            self._pc = pc
            self._connection = pc
            try:
                await pc.set_presence(show=self.presence.show, status=self.presence.status)
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._follow, pc)
                    nursery.start_soon(self._dispatch_all, pc.stanzas())
                    await self.wait_online()
                    task_status.started()
            finally:
                self._pc = None
                self._connection = None
                self._ready = False
                self._notify()

    async def _on_new_session(self, im: IMClient) -> None:
        """The persistent client's ``on_connected``: a new session (not a
        resumed one) has its roster and presence; join rooms, tell handlers."""
        await self._join_rooms()
        for handler in self.handlers:
            await self._guarded(handler, "on_connected", handler.on_connected())

    async def _follow(self, pc: PersistentClient) -> None:
        """Mirror the persistent client's connection state in :attr:`online`."""
        while True:
            try:
                await pc.wait_connected()
            except Exception:  # closed: the persistent client raises why
                return
            self.sessions += 1
            self._ready = True
            log.info("%s online as %s%s", self.config.key, pc.jid, " (resumed)" * pc.resumed)
            self._notify()
            await pc.wait_disconnected()
            self._ready = False
            self._notify()

    async def _dispatch_all(self, stanzas: trio.MemoryReceiveChannel[Element]) -> None:
        async for stanza in stanzas:
            await self.handle_stanza(stanza)

    async def serve(
        self, connection: Connection, *, on_online: Callable[[], object] | None = None
    ) -> None:
        """Run one session on an established connection until it ends
        (:meth:`run` is the reconnecting way; this one is for a connection
        managed elsewhere, e.g. in tests).

        Sends the bot's presence, joins its rooms, calls the handlers'
        :meth:`~Handler.on_connected`, then dispatches incoming stanzas; pings
        the server every ``keepalive`` seconds and ends when it stops
        answering. ``on_online`` is called once all that is done.
        """
        im = IMClient(connection, **self._im_options())
        self._connection = connection
        self._im = im
        self.sessions += 1
        try:
            async with trio.open_nursery() as nursery:
                await im.start(nursery)
                await im.send_presence(show=self.presence.show, status=self.presence.status)
                await self._join_rooms()
                log.info("%s online as %s", self.config.key, connection.jid)
                for handler in self.handlers:
                    await self._guarded(handler, "on_connected", handler.on_connected())
                self._ready = True
                self._notify()
                if on_online is not None:
                    on_online()
                if self.config.keepalive > 0:
                    nursery.start_soon(self._keepalive, connection, nursery.cancel_scope)
                await self._dispatch_all(im.stanzas())
                nursery.cancel_scope.cancel()
        finally:
            self._connection = None
            self._im = None
            self._ready = False
            self._notify()

    async def _keepalive(self, connection: Connection, session: trio.CancelScope) -> None:
        """End the session when the server stops answering pings (XEP-0199)."""
        reason = await keepalive(connection, self.config.keepalive)
        if reason is not None:
            log.warning("%s: %s", self.config.full_jid, reason)
        session.cancel()

    async def _join_rooms(self) -> None:
        """Join the configured rooms, on every new session (XEP-0045 §7.2.2),
        without history; the answers arrive through :meth:`handle_stanza`."""
        for room in self.config.rooms:
            self._room_attempts[room.bare] = 0
            await self._send_join(room.bare, self.nickname)

    async def _send_join(self, room: JID, nick: str) -> None:
        log.info("%s joining %s as %s", self.config.full_jid, room, nick)
        with contextlib.suppress(NotConnected, trio.BrokenResourceError, trio.ClosedResourceError):
            await self.rooms.send_join(room, nick, maxstanzas=0)

    async def _on_room_event(self, room: JID, event: RoomEvent) -> None:
        """Log joins and removals; retry a nick conflict (§7.2.9) with ``_``."""
        if event.kind is RoomEventKind.JOINED:
            log.info("%s joined %s", self.config.full_jid, room)
            if 201 in event.codes:  # §10.1.2: the bot created it; make it an instant room
                with contextlib.suppress(
                    NotConnected, trio.BrokenResourceError, trio.ClosedResourceError
                ):
                    await self.send(config_submit(room, f"instant-{self.sessions}", {}))
        elif event.kind is RoomEventKind.JOIN_FAILED:
            attempts = self._room_attempts.get(room, 0) + 1
            self._room_attempts[room] = attempts
            if event.condition == "conflict" and attempts <= 3:
                await self._send_join(room, self.nickname + "_" * attempts)
            else:
                log.warning("%s cannot join %s: %s", self.config.full_jid, room, event.condition)
        elif event.kind is RoomEventKind.REMOVED:
            log.warning(
                "%s is out of %s (status %s)", self.config.full_jid, room, sorted(event.codes)
            )

    # -- dispatch ---------------------------------------------------------------

    async def handle_stanza(self, element: Element) -> None:
        """Dispatch one incoming stanza to the handlers."""
        kind = stanza_kind(element)
        try:
            if kind is StanzaKind.MESSAGE:
                self.rooms.feed(element)  # the subject of a room
                await self._dispatch_message(MessageObject.from_element(element))
            elif kind is StanzaKind.PRESENCE:
                room = self.rooms.room_of(element)
                if room is not None:  # room presence is the Rooms' (not the handlers')
                    event = self.rooms.feed(element)
                    if event is not None:
                        await self._on_room_event(room, event)
                    return
                await self._dispatch_presence(PresenceObject.from_element(element))
            elif kind is StanzaKind.IQ:
                await self._dispatch_iq(element)
        except ValueError as exc:  # StanzaValueError and other invalid values
            log.debug("%s: ignoring an invalid stanza: %s", self.config.full_jid, exc)

    async def _dispatch_message(self, message: MessageObject) -> None:
        classified = self.addressing.classify(message)
        if classified is None:
            return  # not for handlers: see Addressing (errors, echoes, ourselves)
        body, addressed = classified.body, classified.addressed
        responded = False
        fallbacks: list[tuple[Handler, Route]] = []
        for handler in self.handlers:
            for route in handler.routes:
                if route.kind == "hear":
                    text = body
                elif addressed is None:
                    continue
                elif route.fallback:
                    fallbacks.append((handler, route))
                    continue
                else:
                    text = addressed
                match = route.pattern.search(text)
                if match is None:
                    continue
                responded = responded or route.kind == "respond"
                await self._run_route(handler, route, message, match, text, addressed is not None)
        if addressed is not None and not responded:
            for handler, route in fallbacks:
                match = route.pattern.search(addressed)
                if match is not None:
                    await self._run_route(handler, route, message, match, addressed, True)

    async def _run_route(
        self,
        handler: Handler,
        route: Route,
        message: MessageObject,
        match: re.Match[str],
        text: str,
        addressed: bool,
    ) -> None:
        context = Context(self._answering(message), handler, message, match, text, addressed)
        method = cast(Callable[[Context], Awaitable[None]], getattr(handler, route.method))
        await self._guarded(handler, route.method, method(context), message)

    def _answering(self, message: MessageObject) -> BotAPI:
        """The bot as the handlers answering ``message`` see it (a component
        bot answers from the address the message went to)."""
        return self

    async def _guarded(
        self,
        handler: Handler,
        what: str,
        call: Awaitable[None],
        message: MessageObject | None = None,
    ) -> None:
        """Await a handler's coroutine: log its exceptions, bound its time."""
        about = f" on a message from {message.from_}" if message is not None else ""
        with trio.move_on_after(self.config.handler_timeout) as scope:
            try:
                await call
            except Exception:
                log.exception(
                    "%s: handler %s.%s failed%s", self.config.full_jid, handler.name, what, about
                )
        if scope.cancelled_caught:
            log.error(
                "%s: handler %s.%s took longer than %g s%s and was cancelled",
                self.config.full_jid,
                handler.name,
                what,
                self.config.handler_timeout,
                about,
            )

    async def _dispatch_presence(self, presence: PresenceObject) -> None:
        if presence.from_ == self.jid:
            return  # the server's copy of our own presence
        for handler in self.handlers:
            await self._guarded(handler, "on_presence", handler.on_presence(presence))

    async def _dispatch_iq(self, element: Element) -> None:
        # The IMClient answers requests before they get here; this is for
        # stanzas handed to handle_stanza directly. RFC 6120 §8.4.
        if element.get("type") in (IqType.GET, IqType.SET) and can_reply_with_error(element):
            with contextlib.suppress(
                NotConnected, trio.BrokenResourceError, trio.ClosedResourceError
            ):
                await self.send(service_unavailable(element))


# ---------------------------------------------------------------------------
# running several bots


def build_bots(config: BotsConfig, *, rng: random.Random | None = None) -> list[Bot]:
    """A :class:`Bot` for every bot of the file (handlers loaded; raises :class:`ConfigError`)."""
    return [Bot(bot, rng=rng, config_path=config.path) for bot in config.bots]


async def serve_bots(bots: Sequence[Bot], *, handle_signals: bool = False) -> int:
    """Run every bot until cancelled (or, with ``handle_signals``, SIGINT/SIGTERM).

    A bot that stops for good (refused credentials, an untrusted certificate)
    is logged; the others go on. Returns 0 after a signal, 1 when every bot
    has stopped by itself.
    """
    failed: list[Bot] = []

    async def one(bot: Bot) -> None:
        try:
            await bot.run()
        except (AuthenticationError, CertificateError) as exc:
            log.error("%s stopped: %s", bot.config.full_jid, exc)
            failed.append(bot)

    async with trio.open_nursery() as nursery:
        if handle_signals:
            nursery.start_soon(_stop_on_signal, nursery.cancel_scope)
        async with trio.open_nursery() as bots_nursery:
            for bot in bots:
                bots_nursery.start_soon(one, bot)
        nursery.cancel_scope.cancel()
    return 1 if failed and len(failed) == len(bots) else 0


async def _stop_on_signal(scope: trio.CancelScope) -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for signum in signals:
            log.info("received %s, disconnecting", signal.Signals(signum).name)
            scope.cancel()
            return


def run(bots: Bot | Sequence[Bot]) -> int:
    """Run bots until SIGINT/SIGTERM (a blocking entry point for scripts).

    Returns the exit status: 0 after a signal, 1 if every bot stopped because
    its credentials were refused.
    """
    bots = [bots] if isinstance(bots, Bot) else list(bots)
    try:
        return trio.run(lambda: serve_bots(bots, handle_signals=True))
    except KeyboardInterrupt:
        return 0
