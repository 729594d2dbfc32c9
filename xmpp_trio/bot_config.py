"""Bots files: the TOML layout, its validation and the configuration values
(:class:`BotConfig`, :class:`HandlerSpec`, :class:`BotsConfig`).

Every error is a :class:`~xmpp_trio.config.ConfigError` naming the offending
key. Import these names from :mod:`xmpp_trio.bot` (or :mod:`xmpp_trio`).
"""

from __future__ import annotations

import logging
import math
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, cast

from xmpp_sansio.jid import JID, InvalidJID

from .config import ConfigError, toml_type

__all__ = [
    "BUILTIN_HANDLER_NAMES",
    "LOG_LEVELS",
    "BotConfig",
    "BotsConfig",
    "HandlerSpec",
    "load_bots_config",
    "parse_bots_config",
]

log = logging.getLogger("xmpp_trio.bot")

LOG_LEVELS: Final = ("debug", "info", "warning", "error")
#: The built-in handlers (:data:`xmpp_trio.bot.BUILTIN_HANDLERS`), by name.
BUILTIN_HANDLER_NAMES: Final = ("help", "echo", "ping")


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
    builtins = ", ".join(BUILTIN_HANDLER_NAMES)
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
    if module not in BUILTIN_HANDLER_NAMES and not _HANDLER_SPEC.fullmatch(module):
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
        rooms = ["room@conference.localhost"]   # joined on every new session (XEP-0045)
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
