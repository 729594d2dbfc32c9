"""Bot handlers: registration (:func:`hear`, :func:`respond`), the
:class:`Handler` base class, the :class:`Context` a route gets, and the
built-in handlers (``help``, ``echo``, ``ping``).

Which messages a route sees is decided by the sans-IO
:class:`~xmpp_sansio.client.Addressing` rules; :mod:`xmpp_trio.bot` runs the
routes. Import these names from :mod:`xmpp_trio.bot` (or :mod:`xmpp_trio`).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Final, Literal, Protocol, TypeVar
from xml.etree.ElementTree import Element

from xmpp_sansio.jid import JID
from xmpp_sansio.objects import IqObject, MessageObject, PresenceObject, StanzaObject
from xmpp_sansio.stanza import MessageType, PresenceShow

from .bot_config import BUILTIN_HANDLER_NAMES, BotConfig

__all__ = [
    "BUILTIN_HANDLERS",
    "BotAPI",
    "Context",
    "EchoHandler",
    "Handler",
    "HelpHandler",
    "OptionError",
    "PingHandler",
    "Route",
    "hear",
    "respond",
]


class BotAPI(Protocol):
    """What handlers may use of their bot (:class:`xmpp_trio.bot.Bot` is one)."""

    config: BotConfig
    nickname: str

    @property
    def jid(self) -> JID: ...

    @property
    def online(self) -> bool: ...

    def usages(self) -> list[str]: ...

    async def send(self, stanza: StanzaObject | Element) -> None: ...

    async def send_message(
        self, to: JID | str, body: str, *, type: MessageType = MessageType.CHAT
    ) -> None: ...

    async def request(self, iq: IqObject | Element, *, timeout: float = 30.0) -> Element: ...

    async def set_presence(
        self, *, show: PresenceShow | None = None, status: str | None = None
    ) -> None: ...


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

    def __init__(self, bot: BotAPI, options: Mapping[str, Any] | None = None) -> None:
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

    bot: BotAPI
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


# The configuration validates handler names without importing this module.
assert tuple(BUILTIN_HANDLERS) == BUILTIN_HANDLER_NAMES
