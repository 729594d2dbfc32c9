"""A small bot framework (in the spirit of Elixir's Hedwig) on top of :func:`open_client`.

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
  chat, and room messages once rooms exist);
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
:func:`run`. Each bot connects, sends initial presence (RFC 6121 §4.2: without
it, messages to the bare JID are not delivered to it), pings the server to
notice dead connections, and reconnects with bounded, jittered exponential
backoff, restoring its presence (and, once the server supports multi-user chat,
its rooms) after every reconnect.

Multi-user chat (XEP-0045) does not exist on the server yet: ``rooms`` is
parsed, validated and kept, and the bot logs that it cannot join them; the join
is a TODO in :meth:`Bot._join_rooms`. Room message dispatch (nickname
addressing, ignoring the room's echo of the bot's own messages and history) is
implemented and unit-tested already.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import math
import os
import random
import re
import signal
import ssl
import sys
import tomllib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Final, Literal, Protocol, TypeVar, cast
from xml.etree.ElementTree import Element

import trio

from xmpp_sansio.errors import StanzaErrorCondition, StreamErrorCondition
from xmpp_sansio.jid import JID, InvalidJID
from xmpp_sansio.objects import IqObject, MessageObject, Ping, PresenceObject, StanzaObject
from xmpp_sansio.stanza import (
    IqType,
    MessageType,
    PresenceShow,
    StanzaKind,
    can_reply_with_error,
    error_reply,
    stanza_kind,
)
from xmpp_trio.client import (
    AuthenticationError,
    IqErrorResponse,
    IqTimeoutError,
    StreamError,
    XMPPError,
    open_client,
)
from xmpp_trio.config import ConfigError, toml_type

__all__ = [
    "BUILTIN_HANDLERS",
    "Bot",
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

LOG_LEVELS: Final = ("debug", "info", "warning", "error")

#: Authentication failures that retrying cannot fix (RFC 6120 §6.5).
_FATAL_AUTH: Final = frozenset(
    {
        "not-authorized",
        "account-disabled",
        "credentials-expired",
        "encryption-required",
        "invalid-authzid",
        "invalid-mechanism",
        "mechanism-too-weak",
    }
)
#: A session that lasted this long resets the backoff.
_STABLE_SESSION: Final = 60.0


class NotConnected(XMPPError):
    """The bot has no connection right now (it is connecting or reconnecting)."""


class OptionError(ValueError):
    """A handler option is invalid; ``key`` names it (raised from :meth:`Handler.setup`)."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


# ---------------------------------------------------------------------------
# handler registration


@dataclass(frozen=True, slots=True)
class Route:
    """One registered handler method: how it matches and what ``help`` says about it."""

    kind: Literal["hear", "respond"]
    pattern: re.Pattern[str]
    method: str
    usage: str | None = None
    fallback: bool = False


_HandlerMethod = Callable[[Any, "Context"], Awaitable[None]]
_M = TypeVar("_M", bound=_HandlerMethod)
_ROUTES_ATTR: Final = "_xmpp_bot_routes"


def _compile(pattern: str | re.Pattern[str], flags: int) -> re.Pattern[str]:
    if isinstance(pattern, re.Pattern):
        if flags:
            raise TypeError("flags can only be given with a pattern string")
        return pattern
    return re.compile(pattern, flags)


def _register(
    kind: Literal["hear", "respond"],
    pattern: str | re.Pattern[str],
    flags: int,
    usage: str | None,
    fallback: bool,
) -> Callable[[_M], _M]:
    compiled = _compile(pattern, flags)

    def decorate(method: _M) -> _M:
        routes: list[Route] = list(getattr(method, _ROUTES_ATTR, ()))
        routes.append(Route(kind, compiled, method.__name__, usage, fallback))
        setattr(method, _ROUTES_ATTR, routes)
        return method

    return decorate


def hear(
    pattern: str | re.Pattern[str], flags: int = 0, *, usage: str | None = None
) -> Callable[[_M], _M]:
    """Register a handler method for every message whose body matches ``pattern``."""
    return _register("hear", pattern, flags, usage, False)


def respond(
    pattern: str | re.Pattern[str],
    flags: int = 0,
    *,
    usage: str | None = None,
    fallback: bool = False,
) -> Callable[[_M], _M]:
    """Register a handler method for messages addressed to the bot matching ``pattern``.

    The pattern sees the body without the leading nickname. ``usage`` is what
    the ``help`` handler lists. A ``fallback`` route runs only when no other
    ``respond`` route of the bot matched.
    """
    return _register("respond", pattern, flags, usage, fallback)


_T = TypeVar("_T")


class Handler:
    """Base class of handlers: subclass it and decorate async methods with
    :func:`hear` and :func:`respond`.

    One instance per bot and configuration entry; it lives as long as the bot
    (across reconnects). ``options`` is the entry's ``options`` table; override
    :meth:`setup` to check them (raise :class:`OptionError`, or use
    :meth:`option`) so that mistakes are reported when the configuration is
    loaded. ``state`` is a dict for the handler's own use.

    Override :meth:`on_connected` (after each (re)connection, once presence is
    sent) and :meth:`on_presence` (every presence stanza the bot receives) for
    more than messages.
    """

    #: Shown in logs; defaults to the class name.
    name: ClassVar[str] = ""
    #: If set, option keys outside it are configuration errors.
    known_options: ClassVar[frozenset[str] | None] = None
    #: The routes of this class and its bases, in definition order.
    routes: ClassVar[tuple[Route, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not cls.__dict__.get("name"):
            cls.name = cls.__name__
        # Base classes first; a method overridden in a subclass replaces its
        # routes (with none, if the override is not decorated) in place.
        by_method: dict[str, tuple[Route, ...]] = {}
        for klass in reversed(cls.__mro__):
            for attr, value in vars(klass).items():
                routes = tuple(getattr(value, _ROUTES_ATTR, ()))
                if routes or attr in by_method:
                    by_method[attr] = routes
        cls.routes = tuple(route for routes in by_method.values() for route in routes)

    def __init__(self, bot: Bot, options: Mapping[str, Any] | None = None) -> None:
        self.bot = bot
        self.options: dict[str, Any] = dict(options or {})
        self.state: dict[str, Any] = {}
        if self.known_options is not None:
            for key in self.options:
                if key not in self.known_options:
                    known = ", ".join(sorted(self.known_options)) or "none"
                    raise OptionError(key, f"unknown option {key!r}; known options: {known}")
        self.setup()

    def setup(self) -> None:
        """Check ``self.options`` and prepare ``self.state``; called by ``__init__``."""

    def option(self, key: str, kind: type[_T], default: _T) -> _T:
        """``options[key]`` checked to be a ``kind`` (``default`` when absent).

        Raises :class:`OptionError` naming the key. An integer is accepted
        for a float.
        """
        value = self.options.get(key, default)
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
            raise OptionError(key, f"must be {_type_name(kind)}, got {value!r}")
        return value

    def usages(self) -> list[str]:
        """What ``help`` lists for this handler: its routes' ``usage`` strings."""
        return [route.usage for route in self.routes if route.usage]

    async def on_connected(self) -> None:
        """Called after every (re)connection, once the bot's presence is sent."""

    async def on_presence(self, presence: PresenceObject) -> None:
        """Called for every presence stanza the bot receives (but its own)."""


def _type_name(kind: type) -> str:
    return {
        bool: "true or false",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "an array",
        dict: "a table",
    }.get(kind, f"a {kind.__name__}")


@dataclass(slots=True)
class Context:
    """What a route's method gets: the message, the match, and ways to answer."""

    bot: Bot
    handler: Handler
    message: MessageObject
    match: re.Match[str]
    #: The text the pattern was matched against (the body, without the
    #: nickname prefix for ``respond`` routes).
    text: str
    #: Whether the message is addressed to the bot (see :func:`respond`).
    addressed: bool

    @property
    def state(self) -> dict[str, Any]:
        """The handler's state dict (kept across messages and reconnects)."""
        return self.handler.state

    @property
    def options(self) -> dict[str, Any]:
        """The handler's options from the configuration."""
        return self.handler.options

    @property
    def sender(self) -> JID:
        """Who sent the message (the occupant's room JID in a room)."""
        assert self.message.from_ is not None
        return self.message.from_

    @property
    def nick(self) -> str:
        """A short name for the sender: the room nickname, else the localpart."""
        sender = self.sender
        if self.message.type is MessageType.GROUPCHAT:
            return sender.resource or sender.domain
        return sender.local or sender.domain

    async def reply(self, text: str) -> None:
        """Answer the message: to the sender in one-to-one chat (same type and
        thread), to the room prefixed with ``<nick>: `` in a room."""
        message = self.message
        if message.type is MessageType.GROUPCHAT:
            answer = MessageObject(
                to=self.sender.bare,
                type=MessageType.GROUPCHAT,
                body=f"{self.nick}: {text}",
                thread=message.thread,
            )
        else:
            answer = MessageObject(
                to=self.sender,
                type=message.type,
                body=text,
                thread=message.thread,
            )
        await self.bot.send(answer)

    async def send(self, stanza: StanzaObject | Element) -> None:
        """Send any stanza through the bot (see :meth:`Bot.send`)."""
        await self.bot.send(stanza)


# ---------------------------------------------------------------------------
# built-in handlers


class HelpHandler(Handler):
    """``help [topic]``: lists every handler's usage strings (those mentioning ``topic``)."""

    name = "help"
    known_options = frozenset()

    @respond(
        r"^help(?:\s+(?P<topic>.+?))?\s*$",
        re.IGNORECASE | re.DOTALL,
        usage="help [topic] - what I can do",
    )
    async def help(self, ctx: Context) -> None:
        """List the usage strings."""
        topic = (ctx.match["topic"] or "").strip().lower()
        lines = [u for u in self.bot.usages() if not topic or topic in u.lower()]
        if not lines:
            await ctx.reply(f"Nothing about {topic!r}. Say 'help' for everything I can do.")
            return
        await ctx.reply("\n".join(lines))


class EchoHandler(Handler):
    """``echo <text>`` answers ``<text>``.

    Options: ``all`` (default false): also answer every other addressed message
    no other handler responded to with ``template`` (default ``"You sent:
    {body}"``, the seed echo bot's behaviour).
    """

    name = "echo"
    known_options = frozenset({"all", "template"})

    def setup(self) -> None:
        self.echo_all = self.option("all", bool, False)
        self.template = self.option("template", str, "You sent: {body}")
        try:
            self.template.format(body="")
        except (KeyError, IndexError, ValueError) as exc:
            raise OptionError(
                "template",
                f"must be a format string using only {{body}}, got {self.template!r} ({exc!r})",
            ) from None

    def usages(self) -> list[str]:
        lines = super().usages()
        if self.echo_all:
            lines.append(f"<anything else> - {self.template.format(body='<anything else>')}")
        return lines

    @respond(
        r"^echo\s+(?P<text>.+)$", re.IGNORECASE | re.DOTALL, usage="echo <text> - says <text> back"
    )
    async def echo(self, ctx: Context) -> None:
        """Say the text back."""
        await ctx.reply(ctx.match["text"])

    @respond(r"(?s).*", fallback=True)
    async def everything(self, ctx: Context) -> None:
        """With ``all``: answer anything else with the template."""
        if self.echo_all:
            await ctx.reply(self.template.format(body=ctx.message.body or ""))


class PingHandler(Handler):
    """``ping`` answers ``pong``."""

    name = "ping"
    known_options = frozenset()

    @respond(r"^ping[.!?]*$", re.IGNORECASE, usage="ping - answers pong")
    async def ping(self, ctx: Context) -> None:
        """Answer pong."""
        await ctx.reply("pong")


BUILTIN_HANDLERS: Final[Mapping[str, type[Handler]]] = {
    "help": HelpHandler,
    "echo": EchoHandler,
    "ping": PingHandler,
}


# ---------------------------------------------------------------------------
# configuration


@dataclass(frozen=True, slots=True)
class HandlerSpec:
    """A handler entry of the configuration: what to load and its options.

    ``module`` is ``"package.module:ClassName"`` or a built-in name (``help``,
    ``echo``, ``ping``). ``key`` is where it was declared (for error messages).
    """

    module: str
    options: Mapping[str, Any] = field(default_factory=dict)
    key: str = "handler"


@dataclass(frozen=True, slots=True, kw_only=True)
class BotConfig:
    """One bot: its account, where to connect and its handlers.

    ``jid`` is the bare account JID; the bot binds ``resource``. ``nickname``
    (default: the localpart) is the name it answers to and its room nickname.
    Without ``host`` the server is found through DNS SRV records. ``ca_file``
    is a PEM file of certificates to trust instead of the system's (for a
    self-signed server). Times are in seconds; ``keepalive`` 0 turns the
    server pings off.
    """

    jid: JID
    password: str
    nickname: str = ""
    resource: str = "bot"
    host: str | None = None
    port: int | None = None
    direct_tls: bool = False
    ca_file: Path | None = None
    rooms: tuple[JID, ...] = ()
    handlers: tuple[HandlerSpec, ...] = ()
    handler_timeout: float = 60.0
    reconnect_delay: float = 1.0
    reconnect_max_delay: float = 60.0
    keepalive: float = 60.0
    key: str = "bot"
    base_dir: Path | None = None

    def __post_init__(self) -> None:
        if self.jid.local is None or self.jid.resource is not None:
            raise ValueError(f"jid must be a bare account JID (user@domain), got {self.jid}")
        if not self.nickname:
            object.__setattr__(self, "nickname", self.jid.local)

    @property
    def full_jid(self) -> JID:
        """The account JID with the configured resource."""
        return self.jid.with_resource(self.resource)


@dataclass(frozen=True, slots=True)
class BotsConfig:
    """A bots file: the bots and the log level."""

    bots: tuple[BotConfig, ...]
    log_level: str = "info"
    path: Path | None = None


_TOP_KEYS: Final = frozenset({"bots", "log_level"})
_BOT_KEYS: Final = frozenset(
    {
        "jid",
        "password",
        "password_env",
        "nickname",
        "resource",
        "host",
        "port",
        "direct_tls",
        "ca_file",
        "rooms",
        "handlers",
        "handler_timeout",
        "reconnect_delay",
        "reconnect_max_delay",
        "keepalive",
    }
)
_HANDLER_KEYS: Final = frozenset({"module", "options"})
_HANDLER_SPEC = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*")


class _Reader:
    """Typed reads out of parsed TOML; every error names the key."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.base = path.parent if path is not None else Path.cwd()

    def error(self, key: str | None, message: str) -> ConfigError:
        return ConfigError(message, path=self.path, key=key)

    def check_keys(self, table: Mapping[str, object], valid: frozenset[str], where: str) -> None:
        import difflib

        for key in table:
            if key not in valid:
                hint = difflib.get_close_matches(key, sorted(valid), n=1)
                did_you_mean = f" (did you mean {hint[0]!r}?)" if hint else ""
                raise self.error(
                    f"{where}.{key}" if where else key,
                    f"unknown key {key!r}{did_you_mean}; valid keys: {', '.join(sorted(valid))}",
                )

    def string(self, table: Mapping[str, object], key: str, where: str) -> str | None:
        value = table.get(key)
        if value is None:
            return None
        if not isinstance(value, str) or not value:
            raise self.error(
                f"{where}.{key}", f"must be a non-empty string, got {toml_type(value)} ({value!r})"
            )
        return value

    def boolean(self, table: Mapping[str, object], key: str, where: str, default: bool) -> bool:
        value = table.get(key, default)
        if not isinstance(value, bool):
            raise self.error(f"{where}.{key}", f"must be true or false, got {toml_type(value)}")
        return value

    def seconds(
        self,
        table: Mapping[str, object],
        key: str,
        where: str,
        default: float,
        *,
        zero: bool = False,
    ) -> float:
        value = table.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.error(
                f"{where}.{key}", f"must be a number of seconds, got {toml_type(value)}"
            )
        if not math.isfinite(value) or value < 0 or (value == 0 and not zero):
            limit = "zero or positive" if zero else "positive"
            raise self.error(f"{where}.{key}", f"must be a {limit} number of seconds, got {value}")
        return float(value)


def _parse_bot(reader: _Reader, raw: object, where: str) -> BotConfig:
    if not isinstance(raw, dict):
        raise reader.error(where, f"must be a table ([[bots]]), got {toml_type(raw)}")
    table = cast(Mapping[str, object], raw)
    reader.check_keys(table, _BOT_KEYS, where)

    jid_text = reader.string(table, "jid", where)
    if jid_text is None:
        raise reader.error(f"{where}.jid", 'is required: the bot\'s account, e.g. "bot@localhost"')
    try:
        jid = JID.parse(jid_text)
    except InvalidJID as exc:
        raise reader.error(f"{where}.jid", f"{jid_text!r} is not a valid JID: {exc}") from None
    if jid.local is None:
        raise reader.error(f"{where}.jid", f"{jid_text!r} has no localpart; write user@domain")
    if jid.resource is not None:
        raise reader.error(
            f"{where}.jid", f"{jid_text!r} has a resource; give {jid.bare} and set 'resource'"
        )

    password = reader.string(table, "password", where)
    password_env = reader.string(table, "password_env", where)
    if (password is None) == (password_env is None):
        raise reader.error(
            f"{where}.password",
            "give exactly one of 'password' and 'password_env' (the name of an "
            "environment variable holding the password)",
        )
    if password_env is not None:
        password = os.environ.get(password_env)
        if not password:
            raise reader.error(
                f"{where}.password_env", f"the environment variable {password_env} is not set"
            )
    assert password is not None

    resource = reader.string(table, "resource", where) or "bot"
    try:
        jid.with_resource(resource)
    except InvalidJID as exc:
        raise reader.error(f"{where}.resource", str(exc)) from None
    nickname = reader.string(table, "nickname", where) or jid.local
    if any(ch.isspace() for ch in nickname):
        raise reader.error(f"{where}.nickname", f"must not contain whitespace, got {nickname!r}")

    host = reader.string(table, "host", where)
    port: int | None = None
    if "port" in table:
        raw_port = table["port"]
        if isinstance(raw_port, bool) or not isinstance(raw_port, int) or not 0 < raw_port < 65536:
            raise reader.error(f"{where}.port", f"must be an integer 1-65535, got {raw_port!r}")
        if host is None:
            raise reader.error(
                f"{where}.port", "needs 'host' (without it, DNS SRV records are used)"
            )
        port = raw_port
    direct_tls = reader.boolean(table, "direct_tls", where, False)
    if direct_tls and host is None:
        raise reader.error(
            f"{where}.direct_tls", "needs 'host' (SRV lookups find direct TLS themselves)"
        )

    ca_file: Path | None = None
    ca_text = reader.string(table, "ca_file", where)
    if ca_text is not None:
        ca_file = Path(ca_text).expanduser()
        if not ca_file.is_absolute():
            ca_file = reader.base / ca_file
        if not ca_file.is_file():
            raise reader.error(f"{where}.ca_file", f"no such file: {ca_file}")

    rooms_raw = table.get("rooms", [])
    if not isinstance(rooms_raw, list):
        raise reader.error(
            f"{where}.rooms", f"must be an array of room JIDs, got {toml_type(rooms_raw)}"
        )
    rooms: list[JID] = []
    for index, item in enumerate(rooms_raw):
        key = f"{where}.rooms[{index}]"
        if not isinstance(item, str):
            raise reader.error(key, f"must be a string (room@service), got {toml_type(item)}")
        try:
            room = JID.parse(item)
        except InvalidJID as exc:
            raise reader.error(key, f"{item!r} is not a valid JID: {exc}") from None
        if room.local is None or room.resource is not None:
            raise reader.error(
                key, f"{item!r} is not a room JID; write room@service (the nickname is separate)"
            )
        rooms.append(room)

    handlers_raw = table.get("handlers", [])
    if not isinstance(handlers_raw, list):
        raise reader.error(
            f"{where}.handlers",
            f"must be an array (write [[bots.handlers]] tables), got {toml_type(handlers_raw)}",
        )
    handlers = tuple(
        _parse_handler(reader, item, f"{where}.handlers[{index}]")
        for index, item in enumerate(handlers_raw)
    )
    if not handlers:
        log.debug("%s has no handlers: it will only be online", where)

    timeout = reader.seconds(table, "handler_timeout", where, 60.0)
    delay = reader.seconds(table, "reconnect_delay", where, 1.0)
    max_delay = reader.seconds(table, "reconnect_max_delay", where, 60.0)
    if max_delay < delay:
        raise reader.error(
            f"{where}.reconnect_max_delay",
            f"must be at least reconnect_delay ({delay:g}), got {max_delay:g}",
        )
    keepalive = reader.seconds(table, "keepalive", where, 60.0, zero=True)
    return BotConfig(
        jid=jid,
        password=password,
        nickname=nickname,
        resource=resource,
        host=host,
        port=port,
        direct_tls=direct_tls,
        ca_file=ca_file,
        rooms=tuple(rooms),
        handlers=handlers,
        handler_timeout=timeout,
        reconnect_delay=delay,
        reconnect_max_delay=max_delay,
        keepalive=keepalive,
        key=where,
        base_dir=reader.base,
    )


def _parse_handler(reader: _Reader, raw: object, where: str) -> HandlerSpec:
    builtins = ", ".join(BUILTIN_HANDLERS)
    if isinstance(raw, str):
        raw = {"module": raw}
    if not isinstance(raw, dict):
        raise reader.error(
            where,
            f'must be a table {{ module = "pkg.mod:Class" }} or a built-in name, got {toml_type(raw)}',
        )
    table = cast(Mapping[str, object], raw)
    reader.check_keys(table, _HANDLER_KEYS, where)
    module = table.get("module")
    if not isinstance(module, str):
        raise reader.error(
            f"{where}.module",
            f'is required: "package.module:ClassName" or a built-in ({builtins})'
            if module is None
            else f"must be a string, got {toml_type(module)}",
        )
    if module not in BUILTIN_HANDLERS and not _HANDLER_SPEC.fullmatch(module):
        raise reader.error(
            f"{where}.module",
            f'expected "package.module:ClassName" or a built-in ({builtins}), got {module!r}',
        )
    options = table.get("options", {})
    if not isinstance(options, dict):
        raise reader.error(f"{where}.options", f"must be a table, got {toml_type(options)}")
    return HandlerSpec(module, cast(Mapping[str, Any], options), where)


def parse_bots_config(data: Mapping[str, object], path: Path | None = None) -> BotsConfig:
    """Validate parsed TOML (see :func:`load_bots_config`); raise :class:`ConfigError`."""
    reader = _Reader(path)
    reader.check_keys(data, _TOP_KEYS, "")
    log_level = data.get("log_level", "info")
    if log_level not in LOG_LEVELS:
        raise reader.error(
            "log_level", f"must be one of {', '.join(LOG_LEVELS)}, got {log_level!r}"
        )
    raw_bots = data.get("bots")
    if not isinstance(raw_bots, list) or not raw_bots:
        raise reader.error(
            "bots",
            "declare at least one bot in a [[bots]] table"
            if raw_bots is None
            else f"must be an array of tables (write [[bots]]), got {toml_type(raw_bots)}",
        )
    bots = tuple(_parse_bot(reader, raw, f"bots[{index}]") for index, raw in enumerate(raw_bots))
    seen: dict[JID, str] = {}
    for bot in bots:
        previous = seen.get(bot.full_jid)
        if previous is not None:
            raise reader.error(
                f"{bot.key}.jid",
                f"{bot.full_jid} is also {previous}; two sessions with one full JID replace "
                "each other (give one a different 'resource')",
            )
        seen[bot.full_jid] = bot.key
    return BotsConfig(bots, log_level, path)


def load_bots_config(path: Path | str) -> BotsConfig:
    """Load and validate a bots file; raise :class:`ConfigError` naming the key.

    The layout::

        log_level = "info"              # optional: debug, info, warning, error

        [[bots]]                        # repeatable
        jid = "bot@localhost"           # the bot's account (bare JID)
        password = "secret"             # or: password_env = "BOT_PASSWORD"
        nickname = "bot"                # optional, default: the localpart
        resource = "bot"                # optional
        host = "127.0.0.1"              # optional; default: DNS SRV lookup
        port = 5222                     # optional, with host
        direct_tls = false              # optional, with host (XEP-0368)
        ca_file = "data/tls/cert.pem"   # optional: trust this certificate (self-signed servers)
        rooms = ["room@conference.localhost"]   # joined once the server has MUC
        handler_timeout = 60            # optional, seconds
        reconnect_delay = 1             # optional: first retry delay, seconds
        reconnect_max_delay = 60        # optional: backoff cap, seconds
        keepalive = 60                  # optional: seconds between server pings, 0: off

        [[bots.handlers]]               # repeatable, in order
        module = "help"                 # built-ins: help, echo, ping
        [[bots.handlers]]
        module = "mybot.handlers:Weather"   # package.module:ClassName
        options = { city = "Verona" }

    A ``handlers = ["help", "ping"]`` array of names works too. Relative
    paths are relative to the file's directory, which is also put on
    ``sys.path`` when handler modules are imported.
    """
    path = Path(path)
    try:
        with path.open("rb") as file:
            data = tomllib.load(file)
    except FileNotFoundError:
        raise ConfigError("no such file", path=path) from None
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc}", path=path) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", path=path) from None
    return parse_bots_config(data, path)


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
    """What a bot needs from a connection (:class:`~xmpp_trio.client.Client` has it)."""

    @property
    def jid(self) -> JID: ...

    async def send(self, stanza: Element) -> None: ...

    async def request(self, iq: Element, *, timeout: float = 30.0) -> Element: ...

    def __aiter__(self) -> AsyncIterator[Element]: ...


def backoff_delay(attempt: int, *, base: float, cap: float, rng: random.Random) -> float:
    """Seconds to wait before reconnection attempt ``attempt`` (0 for the first).

    Exponential (``base * 2**attempt``) up to ``cap``, with "equal jitter": a
    uniformly random value between half that and all of it, so many bots
    restarted together do not reconnect in lockstep. Always in
    ``[base / 2, cap]``.
    """
    ceiling = min(cap, base * 2.0 ** min(attempt, 64))
    return rng.uniform(ceiling / 2, ceiling)


class Bot:
    """One bot: a configuration, its handlers and (while running) a connection.

    Build it from a :class:`BotConfig` (handlers declared there are loaded
    and instantiated now, so configuration mistakes surface early as
    :class:`ConfigError`), add more handlers with :meth:`add_handler`, then
    ``await bot.run()``. ``rng`` drives the reconnection jitter.
    """

    def __init__(
        self,
        config: BotConfig,
        *,
        rng: random.Random | None = None,
        config_path: Path | None = None,
    ) -> None:
        self.config = config
        self.rng = rng if rng is not None else random.Random()
        self.nickname = config.nickname or config.jid.local or "bot"
        self.handlers: list[Handler] = []
        self.presence = PresenceObject()
        self.sessions = 0
        self._connection: Connection | None = None
        self._ready = False
        self._changed = trio.Event()
        self._ssl_context: ssl.SSLContext | None = None
        self._addressed = re.compile(
            rf"^\s*@?{re.escape(self.nickname)}(?:[:,]\s*|\s+|$)(?P<rest>.*)$",
            re.IGNORECASE | re.DOTALL,
        )
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

    def _require_connection(self) -> Connection:
        if self._connection is None:
            raise NotConnected(f"{self.config.full_jid} is not connected")
        return self._connection

    async def send(self, stanza: StanzaObject | Element) -> None:
        """Send a stanza object or element; raise :class:`NotConnected` when offline."""
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
        """Change the bot's presence; it is also restored after every reconnect."""
        self.presence = PresenceObject(show=show, status=status)
        if self._connection is not None:
            await self.send(self.presence)

    # -- running ----------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Connect and serve forever, reconnecting with backoff; cancel to stop.

        ``task_status.started()`` is called once the first session is online.
        Returns only by raising: :class:`AuthenticationError` for credentials
        the server refuses (retrying cannot help), or ``Cancelled``.
        """
        config = self.config
        attempt = 0
        started = False

        def online() -> None:
            nonlocal started
            if not started:
                started = True
                task_status.started()

        while True:
            began: float | None = None
            reason: object
            try:
                async with open_client(
                    config.full_jid,
                    config.password,
                    host=config.host,
                    port=config.port,
                    direct_tls=config.direct_tls,
                    ssl_context=self._ssl_context,
                ) as client:
                    began = trio.current_time()
                    await self.serve(client, on_online=online)
                    reason = client.error or "the server closed the connection"
            except AuthenticationError as exc:
                if exc.condition in _FATAL_AUTH:
                    log.error("%s: authentication failed (%s); not retrying", config.full_jid, exc)
                    raise
                reason = exc
            except (
                XMPPError,
                OSError,
                ssl.SSLError,
                trio.BrokenResourceError,
                trio.ClosedResourceError,
            ) as exc:
                reason = exc
            if (
                isinstance(reason, StreamError)
                and reason.condition is StreamErrorCondition.CONFLICT
            ):
                log.warning(
                    "%s: another session with the same resource replaced this one", config.full_jid
                )
            if began is not None and trio.current_time() - began >= _STABLE_SESSION:
                attempt = 0
            delay = backoff_delay(
                attempt, base=config.reconnect_delay, cap=config.reconnect_max_delay, rng=self.rng
            )
            attempt += 1
            log.warning(
                "%s: %s (%s); reconnecting in %.1f s",
                config.full_jid,
                "cannot connect" if began is None else "disconnected",
                reason,
                delay,
            )
            await trio.sleep(delay)

    async def serve(
        self, connection: Connection, *, on_online: Callable[[], object] | None = None
    ) -> None:
        """Run one session on an established connection until it ends.

        Sends the bot's presence, (would) join rooms, calls the handlers'
        :meth:`~Handler.on_connected`, then dispatches incoming stanzas.
        ``on_online`` is called once all that is done.
        """
        self._connection = connection
        self.sessions += 1
        try:
            await self.send(self.presence)
            await self._join_rooms()
            log.info("%s online as %s", self.config.key, connection.jid)
            for handler in self.handlers:
                await self._guarded(handler, "on_connected", handler.on_connected())
            self._ready = True
            self._notify()
            if on_online is not None:
                on_online()
            async with trio.open_nursery() as nursery:
                if self.config.keepalive > 0:
                    nursery.start_soon(self._keepalive, nursery.cancel_scope)
                async for stanza in connection:
                    await self.handle_stanza(stanza)
                nursery.cancel_scope.cancel()
        finally:
            self._connection = None
            self._ready = False
            self._notify()

    async def _keepalive(self, session: trio.CancelScope) -> None:
        """Ping the server (XEP-0199) so a dead connection is noticed."""
        interval = self.config.keepalive
        while True:
            await trio.sleep(interval)
            ping = IqObject(
                to=JID.parse(self.config.jid.domain),
                type=IqType.GET,
                id=f"keepalive-{self.rng.getrandbits(48):x}",
                payload=Ping(),
            )
            try:
                await self.request(ping, timeout=max(interval / 2, 1.0))
            except IqErrorResponse:
                continue  # an answer all the same: the connection is alive
            except IqTimeoutError as exc:
                log.warning("%s: the server does not answer pings (%s)", self.config.full_jid, exc)
            except (XMPPError, trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                log.debug("%s: keepalive: the connection is gone (%r)", self.config.full_jid, exc)
            else:
                continue
            session.cancel()
            return

    async def _join_rooms(self) -> None:
        """Join the configured rooms, on every (re)connection.

        Not implemented: the server has no multi-user chat yet.
        """
        if not self.config.rooms:
            return
        # TODO(MUC): once the server hosts XEP-0045 rooms, for each room send
        #   <presence to='room@service/{self.nickname}'>
        #     <x xmlns='http://jabber.org/protocol/muc'><history maxstanzas='0'/></x>
        #   </presence>
        # wait (bounded) for the self-presence with status code 110 (XEP-0045 §7.2.2),
        # retry with a different nickname on a 409 conflict, and log other errors;
        # dispatch for groupchat messages is already in _dispatch_message.
        log.warning(
            "%s: not joining %s: multi-user chat (XEP-0045) is not supported yet",
            self.config.full_jid,
            ", ".join(str(room) for room in self.config.rooms),
        )

    # -- dispatch ---------------------------------------------------------------

    async def handle_stanza(self, element: Element) -> None:
        """Dispatch one incoming stanza to the handlers."""
        kind = stanza_kind(element)
        try:
            if kind is StanzaKind.MESSAGE:
                await self._dispatch_message(MessageObject.from_element(element))
            elif kind is StanzaKind.PRESENCE:
                await self._dispatch_presence(PresenceObject.from_element(element))
            elif kind is StanzaKind.IQ:
                await self._dispatch_iq(element)
        except ValueError as exc:  # StanzaValueError and other invalid values
            log.debug("%s: ignoring an invalid stanza: %s", self.config.full_jid, exc)

    def _strip_nickname(self, body: str) -> str | None:
        match = self._addressed.match(body)
        return None if match is None else match["rest"]

    async def _dispatch_message(self, message: MessageObject) -> None:
        body = message.body
        sender = message.from_
        if body is None or sender is None:
            return
        if message.type in (MessageType.ERROR, MessageType.HEADLINE):
            return
        addressed: str | None
        if message.type is MessageType.GROUPCHAT:
            if sender.resource == self.nickname or message.delay is not None:
                return  # the room's echo of our own message, or history
            addressed = self._strip_nickname(body)
        else:
            if sender.bare == self.config.jid:
                return  # ourselves (another resource, or a copy of our own message)
            stripped = self._strip_nickname(body)
            addressed = body if stripped is None else stripped
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
        context = Context(self, handler, message, match, text, addressed)
        method = cast(Callable[[Context], Awaitable[None]], getattr(handler, route.method))
        await self._guarded(handler, route.method, method(context), message)

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
        if element.get("type") in (IqType.GET, IqType.SET) and can_reply_with_error(element):
            # RFC 6120 §8.4: a request nobody handles gets service-unavailable.
            with contextlib.suppress(
                NotConnected, trio.BrokenResourceError, trio.ClosedResourceError
            ):
                await self.send(error_reply(element, StanzaErrorCondition.SERVICE_UNAVAILABLE))


# ---------------------------------------------------------------------------
# running several bots


def build_bots(config: BotsConfig, *, rng: random.Random | None = None) -> list[Bot]:
    """A :class:`Bot` for every bot of the file (handlers loaded; raises :class:`ConfigError`)."""
    return [Bot(bot, rng=rng, config_path=config.path) for bot in config.bots]


async def serve_bots(bots: Sequence[Bot], *, handle_signals: bool = False) -> int:
    """Run every bot until cancelled (or, with ``handle_signals``, SIGINT/SIGTERM).

    A bot that stops for good (refused credentials) is logged; the others go
    on. Returns 0 after a signal, 1 when every bot has stopped by itself.
    """
    failed: list[Bot] = []

    async def one(bot: Bot) -> None:
        try:
            await bot.run()
        except AuthenticationError as exc:
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
