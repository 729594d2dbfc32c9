"""Server configuration, loaded from a TOML file with :func:`load_config`.

Every key is optional; a missing file section means its defaults. The layout::

    domains = ["localhost"]    # the domains this server hosts (at least one)
    anonymous_domains = []     # more hosted domains, where users log in with SASL ANONYMOUS only
    echo_service = false       # a demo service host: echo.<first domain> echoes messages
    data_dir = "data"          # optional; accounts database and generated TLS files
    log_level = "info"         # debug, info, warning, error
    log_format = "text"        # or "json": one JSON object per line, with session ids
    require_tls = true         # refuse to authenticate c2s streams without TLS
    allow_plain = true         # offer SASL PLAIN (only ever offered over TLS)
    allow_anonymous = false    # offer SASL ANONYMOUS
    allow_registration = false # XEP-0077 in-band registration of new accounts
    sasl2 = true               # also offer SASL2, Bind 2, FAST (XEP-0388/0386/0484; docs/sasl2.md)
    fast_token_lifetime = 2592000  # seconds a FAST token (XEP-0484) is valid; 0: no FAST
    fast_rotate_within = 1209600   # a token used with less left than this is replaced
    scram_iterations = 10000   # PBKDF2 iterations for new passwords (at least 4096)

    [tls]
    cert = "cert.pem"          # optional, but only together with key
    key = "key.pem"
    backend = "stdlib"         # or "openssl" (pyOpenSSL): adds tls-exporter (RFC 9266; docs/sasl2.md)
    read_ahead = true          # stdlib backend: OpenSSL reads every TLS record that arrived at once

    [limits]
    max_stanza_size = 262144         # bytes, once authenticated
    max_stanza_size_preauth = 16384  # bytes, before authentication
    max_depth = 64                   # XML element nesting depth
    negotiation_timeout = 60         # seconds to finish stream negotiation
    max_auth_attempts = 3            # SASL attempts per stream (RFC 6120 §6.4.5: 1-6)
    max_roster_items = 1000          # contacts per roster (RFC 6121 §2.3.3)
    max_roster_groups_per_item = 30  # <group/>s of one roster item (RFC 6121 §2.3.3)
    max_roster_size = 524288         # bytes of JIDs, names, groups per roster (<= max_output_buffer/2)
    max_pending_subscriptions = 100  # unanswered subscription requests kept per account
    max_subscription_status = 1024   # characters of a stored request's status (cut, RFC 6121 §3.1.3)
    max_directed_presence = 200      # directed presence targets per session (RFC 6121 §4.6)
    max_offline_messages = 1000      # stored messages per account (XEP-0160)
    max_vcard_size = 65536           # bytes of a stored vCard (XEP-0054)
    max_private_size = 65536         # bytes of one private XML item (XEP-0049)
    max_private_items = 100          # private XML items per account
    max_private_total = 1048576      # bytes of private XML per account
    registrations_per_ip_per_hour = 5  # XEP-0077 accounts one address may create
    resume_timeout = 300             # seconds a broken XEP-0198 session stays resumable
    max_unacked = 1000               # stanzas a detached session keeps before ending
    max_unacked_connected = 10000    # stanzas a connected XEP-0198 client may leave unacked
    max_unacked_bytes = 8388608      # bytes of those stanzas (connected or detached)
    unacked_burst = 4                # one burst may reach this times the two above (XEP-0198)
    max_connections = 10000          # open client connections in total
    max_connections_per_ip = 50      # open client connections from one address
    max_sessions_per_account = 10    # bound resources of one account at once (at least 1)
    auth_failures_before_backoff = 5 # failed logins per address/account before back-off
    auth_backoff_max_entries = 100000 # addresses/accounts the back-off remembers at most
    auth_log_lines_per_minute = 60   # log lines about failed logins, all peers together
    password_changes_per_hour = 5    # XEP-0077 password changes per account
    max_read_rate = 100000           # bytes/s read from one connection (burst: twice that)
    idle_timeout = 300               # seconds without input: ping at half, close at full
    max_output_buffer = 1048576      # bytes queued for a client that does not read
    output_stall_timeout = 10        # seconds a client over that bound may take no bytes (0: none)

    [pubsub]
    enabled = true             # the pubsub service at pubsub.<first domain> (XEP-0060)
    pep = true                 # personal eventing on every account (XEP-0163)
    max_item_size = 65536      # bytes of one item's payload (payload-too-big)
    max_items = 256            # items kept per node; also what max_items=max means
    max_nodes = 128            # nodes per PEP account, and at the pubsub service
    max_subscriptions = 1000   # subscriptions per node

    [metrics]
    enabled = false            # serve Prometheus metrics over HTTP (GET /metrics)
    address = "127.0.0.1"
    port = 9090                # 0 lets the operating system pick a free port

    [muc]                      # multi-user chat (XEP-0045), see xmpp_trio/muc_config.py
    enabled = true             # at conference.<first domain>, unless domain = "..."

    [mam]                      # message archives (XEP-0313), see xmpp_trio/mam_config.py
    enabled = true             # archive messages (accounts and rooms), XEP-0359 ids

    [gc]                       # CPython's garbage collector, see xmpp_trio/gc_config.py
    freeze = false             # true: freeze the start-up heap out of every collection

    [[listeners]]              # repeatable; omit all to get the two defaults
    kind = "c2s-starttls"      # or "c2s-directtls" (XEP-0368), "http", "https" (docs/web.md),
                               # "component" (XEP-0114: docs/components.md, [components]),
                               # "s2s-directtls" (XEP-0368 s2s: docs/federation.md)
    address = "0.0.0.0"        # IPv4 only; "::" IPv6 only; "*" (the default) both
    port = 5222                # 0 lets the operating system pick a free port

Relative paths (``data_dir``, ``tls.cert``, ``tls.key``) are relative to the
directory containing the configuration file. Without ``[tls]`` the server
generates a self-signed certificate in ``<data_dir>/tls/`` on first start.
Without ``[[listeners]]`` it listens for STARTTLS on port 5222 and for direct
TLS on 5223, on every address of both IPv4 and IPv6 (``"*"``; where IPv6 is
absent, IPv4 only), and for HTTP (XMPP over WebSocket, XEP-0156 discovery,
the ``[http]`` section: docs/web.md) on 127.0.0.1:5280. ``"0.0.0.0"`` is
IPv4 only, ``"::"`` IPv6 only.

The data directory is, in order of precedence: ``data_dir`` in the file, the
``XMPP_TRIO_DATA`` environment variable (relative to the current directory), or
``platformdirs.user_data_dir("xmpp-trio")``.

Domains are stored in their JID form (RFC 7622 §3.2: lowercase, IDNA U-labels,
no trailing dot), so ``"Example.ORG."`` becomes ``"example.org"``.

Anything invalid raises :class:`ConfigError` whose message names the file, the
offending key and what was expected.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Literal, TypeAlias, cast

import platformdirs

from xmpp_sansio.jid import JID, InvalidJID
from xmpp_sansio.server.mam.service import MamLimits

from .admin_config import AdminConfig, DirectoryConfig, load_admin, load_directory
from .component_config import ComponentsConfig, check_component_domains, load_components
from .config_loader import ConfigError, Loader, Table, toml_type
from .federation_config import FederationConfig, load_federation
from .gc_config import GCConfig, load_gc
from .http_config import HTTPConfig, load_http
from .mam_config import (
    DEFAULT_MAM,
    ArchiveWriterLimits,
    load_mam,
    load_mam_writer,
    load_mam_writer_thread,
)
from .muc_config import MucConfig, load_muc
from .pubsub_config import PubSubConfig, load_pubsub
from .runtime_config import RuntimeConfig, load_runtime

__all__ = [
    "ALL_ADDRESSES",
    "DATA_DIR_ENV",
    "DEFAULT_LISTENERS",
    "LISTENER_KINDS",
    "LOG_LEVELS",
    "MIN_SCRAM_ITERATIONS",
    "ConfigError",
    "HTTPConfig",
    "LimitsConfig",
    "ListenerConfig",
    "ListenerKind",
    "MetricsConfig",
    "PubSubConfig",
    "ServerConfig",
    "TLSConfig",
    "bind_host",
    "default_data_dir",
    "load_config",
    "toml_type",
]

ListenerKind: TypeAlias = Literal[
    "c2s-starttls", "c2s-directtls", "http", "https", "component", "s2s-directtls"
]

LISTENER_KINDS: Final[tuple[ListenerKind, ...]] = (
    "c2s-starttls",
    "c2s-directtls",
    "http",
    "https",
    "component",  # XEP-0114 (docs/components.md)
    "s2s-directtls",  # XEP-0368 for servers (docs/federation.md; needs [federation])
)
LOG_LEVELS: Final = ("debug", "info", "warning", "error")
LOG_FORMATS: Final = ("text", "json")
TLS_BACKENDS: Final = ("stdlib", "openssl")
DATA_DIR_ENV: Final = "XMPP_TRIO_DATA"
MIN_SCRAM_ITERATIONS: Final = 4096
"""RFC 7677 §4: the iteration count SHOULD be at least 4096."""

DATABASE_FILENAME: Final = "xmpp.sqlite3"


@dataclass(frozen=True, slots=True)
class ListenerConfig:
    """One listening socket: what protocol it speaks and where."""

    kind: ListenerKind
    address: str
    port: int


@dataclass(frozen=True, slots=True)
class TLSConfig:
    """Certificate and private key files; both None means "self-signed in data_dir".
    ``backend``: the TLS library of the TLS listeners, ``"stdlib"`` (:mod:`ssl`)
    or ``"openssl"`` (pyOpenSSL, which can export ``tls-exporter`` channel
    binding data, RFC 9266). ``read_ahead``: turn OpenSSL's read-ahead on
    for the stdlib backend's server connections (xmpp_trio/_read_ahead.py;
    where it cannot be, the server reads record by record anyway)."""

    cert: Path | None = None
    key: Path | None = None
    backend: str = "stdlib"
    read_ahead: bool = True


@dataclass(frozen=True, slots=True)
class LimitsConfig:
    """Resource limits applied to every client connection."""

    max_stanza_size: int = 262144
    max_stanza_size_preauth: int = 16384
    max_depth: int = 64
    negotiation_timeout: float = 60.0
    max_auth_attempts: int = 3
    max_roster_items: int = 1000
    max_roster_groups_per_item: int = 30
    max_roster_size: int = 524288
    max_pending_subscriptions: int = 100
    max_subscription_status: int = 1024
    max_directed_presence: int = 200
    max_offline_messages: int = 1000
    max_vcard_size: int = 65536
    max_private_size: int = 65536
    max_private_items: int = 100
    max_private_total: int = 1 << 20
    registrations_per_ip_per_hour: int = 5
    resume_timeout: float = 300.0
    max_unacked: int = 1000
    max_unacked_connected: int = 10000
    max_unacked_bytes: int = 8 << 20
    unacked_burst: int = 4
    max_connections: int = 10000
    max_connections_per_ip: int = 50
    max_sessions_per_account: int = 10
    auth_failures_before_backoff: int = 5
    auth_backoff_max_entries: int = 100_000
    auth_log_lines_per_minute: int = 60
    password_changes_per_hour: int = 5
    max_read_rate: int = 100_000
    idle_timeout: float = 300.0
    max_output_buffer: int = 1 << 20
    output_stall_timeout: float = 10.0


@dataclass(frozen=True, slots=True)
class MetricsConfig:
    """The Prometheus endpoint (``GET /metrics``), off unless ``enabled``."""

    enabled: bool = False
    address: str = "127.0.0.1"
    port: int = 9090


#: The listen address meaning every address, IPv4 and IPv6 (``getaddrinfo``'s
#: passive wildcard: one socket per family this machine supports).
ALL_ADDRESSES: Final = "*"

DEFAULT_LISTENERS: Final = (
    ListenerConfig("c2s-starttls", ALL_ADDRESSES, 5222),
    ListenerConfig("c2s-directtls", ALL_ADDRESSES, 5223),
    ListenerConfig("http", "127.0.0.1", 5280),
)


def bind_host(address: str) -> str | None:
    """The host to bind for a listen ``address``: None (every address, both
    stacks) for ``"*"``."""
    return None if address == ALL_ADDRESSES else address


def default_data_dir() -> Path:
    """``$XMPP_TRIO_DATA`` if set (made absolute), else the per-user data directory."""
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        return Path(env).expanduser().absolute()
    return Path(platformdirs.user_data_dir("xmpp-trio"))


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerConfig:
    """The whole server configuration (see the module docstring for the file layout)."""

    domains: tuple[str, ...] = ("localhost",)
    anonymous_domains: tuple[str, ...] = ()
    echo_service: bool = False
    data_dir: Path = field(default_factory=default_data_dir)
    listeners: tuple[ListenerConfig, ...] = DEFAULT_LISTENERS
    require_tls: bool = True
    allow_plain: bool = True
    allow_anonymous: bool = False
    allow_registration: bool = False
    sasl2: bool = True
    fast_token_lifetime: int = 2592000
    fast_rotate_within: int = 1209600
    scram_iterations: int = 10000
    log_level: str = "info"
    log_format: str = "text"
    tls: TLSConfig = field(default_factory=TLSConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    http: HTTPConfig = field(default_factory=HTTPConfig)
    pubsub: PubSubConfig = field(default_factory=PubSubConfig)
    muc: MucConfig = field(default_factory=MucConfig)
    components: ComponentsConfig = field(default_factory=ComponentsConfig)
    admin: AdminConfig = field(default_factory=AdminConfig)
    directory: DirectoryConfig = field(default_factory=DirectoryConfig)
    federation: FederationConfig = field(default_factory=FederationConfig)
    mam: MamLimits = DEFAULT_MAM
    #: ``[mam] writer_thread``: archive commits in a worker thread.
    mam_writer_thread: bool = True
    #: ``[mam] writer_*``, ``loop_batch``: how archived copies are written behind.
    mam_writer: ArchiveWriterLimits = field(default_factory=ArchiveWriterLimits)
    #: ``[gc]``: the garbage collector's settings (``xmpp-trio serve`` only).
    gc: GCConfig = field(default_factory=GCConfig)
    #: ``[runtime]``: the switch interval, the writer thread's niceness, loop statistics.
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    config_path: Path | None = None

    @property
    def hosted_domains(self) -> tuple[str, ...]:
        """Every account domain: ``domains``, then ``anonymous_domains``."""
        return self.domains + self.anonymous_domains

    @property
    def echo_domain(self) -> str | None:
        """Where the echo service answers, if it is on: ``echo.`` the first domain."""
        return f"echo.{self.domains[0]}" if self.echo_service else None

    @property
    def pubsub_domain(self) -> str | None:
        """Where the pubsub service answers, if it is on: ``pubsub.`` the first domain."""
        return f"pubsub.{self.domains[0]}" if self.pubsub.enabled else None

    @property
    def directory_domain(self) -> str | None:
        """Where the user directory answers (``[directory]``), if it is on."""
        return self.directory.host(self.domains)

    @property
    def muc_domain(self) -> str | None:
        """Where multi-user chat answers (``[muc]``), if it is on."""
        return self.muc.host(self.domains)

    @property
    def database_path(self) -> Path:
        """The SQLite accounts database, ``<data_dir>/xmpp.sqlite3``."""
        return self.data_dir / DATABASE_FILENAME

    @property
    def generated_tls_dir(self) -> Path:
        """Where a self-signed certificate is generated when ``tls`` names no files."""
        return self.data_dir / "tls"


# --- loading -----------------------------------------------------------------

_TOP_KEYS: Final = (
    "domains",
    "anonymous_domains",
    "echo_service",
    "data_dir",
    "log_level",
    "log_format",
    "require_tls",
    "allow_plain",
    "allow_anonymous",
    "allow_registration",
    "sasl2",
    "fast_token_lifetime",
    "fast_rotate_within",
    "scram_iterations",
    "admins",
    "tls",
    "limits",
    "metrics",
    "pubsub",
    "muc",
    "components",
    "admin",
    "directory",
    "federation",
    "mam",
    "gc",
    "runtime",
    "listeners",
    "http",
)
_METRICS_KEYS: Final = ("enabled", "address", "port")
_TLS_KEYS: Final = ("cert", "key", "backend", "read_ahead")
_LIMITS_KEYS: Final = (
    "max_stanza_size",
    "max_stanza_size_preauth",
    "max_depth",
    "negotiation_timeout",
    "max_auth_attempts",
    "max_roster_items",
    "max_roster_groups_per_item",
    "max_roster_size",
    "max_pending_subscriptions",
    "max_subscription_status",
    "max_directed_presence",
    "max_offline_messages",
    "max_vcard_size",
    "max_private_size",
    "max_private_items",
    "max_private_total",
    "registrations_per_ip_per_hour",
    "resume_timeout",
    "max_unacked",
    "max_unacked_connected",
    "max_unacked_bytes",
    "unacked_burst",
    "max_connections",
    "max_connections_per_ip",
    "max_sessions_per_account",
    "auth_failures_before_backoff",
    "auth_backoff_max_entries",
    "auth_log_lines_per_minute",
    "password_changes_per_hour",
    "max_read_rate",
    "idle_timeout",
    "max_output_buffer",
    "output_stall_timeout",
)
_LISTENER_KEYS: Final = ("kind", "address", "port")


def _check_domain(domain: str) -> str | None:
    """Return why ``domain`` is not an acceptable domain name, or None if it is."""
    if not domain:
        return "is empty"
    if domain != domain.strip() or any(ch.isspace() for ch in domain):
        return "contains whitespace"
    for ch in "@/\\\"'<>&":
        if ch in domain:
            return f"contains {ch!r}"
    if not domain.isprintable():
        return "contains control characters"
    if len(domain.encode("utf-8")) > 1023:
        return "is longer than 1023 bytes"
    if domain.startswith("[") and domain.endswith("]"):
        return None  # IPv6 literal, e.g. "[::1]"
    if any(label == "" for label in domain.split(".")):
        return "has an empty label (leading dot or '..')"
    return None


def _load_domains(
    loader: Loader,
    data: Table,
    key: str = "domains",
    default: tuple[str, ...] = ("localhost",),
    taken: tuple[str, ...] = (),
) -> tuple[str, ...]:
    raw = data.get(key, list(default))
    if not isinstance(raw, list):
        raise loader.error(
            key, f'must be an array of strings, e.g. ["example.org"], got {toml_type(raw)}'
        )
    if not raw and key == "domains":
        raise loader.error(key, "must list at least one domain")
    domains: list[str] = []
    for index, item in enumerate(raw):
        name = f"{key}[{index}]"
        if not isinstance(item, str):
            raise loader.error(name, f"must be a string, got {toml_type(item)} ({item!r})")
        problem = _check_domain(item.removesuffix("."))
        if problem is not None:
            raise loader.error(name, f"{item!r} is not a valid domain name: it {problem}")
        # Store the JID domainpart form (RFC 7622 §3.2: lowercase U-labels, no
        # trailing dot) so the server can compare it with parsed JIDs directly.
        try:
            domain = JID.parse(item).domain
        except InvalidJID as exc:
            raise loader.error(name, f"invalid domain name: {exc.reason}") from None
        if domain in domains or domain in taken:
            raise loader.error(name, f"domain {domain!r} is listed twice")
        domains.append(domain)
    return tuple(domains)


def _load_listeners(loader: Loader, data: Table) -> tuple[ListenerConfig, ...]:
    if "listeners" not in data:
        return DEFAULT_LISTENERS
    raw = data["listeners"]
    if not isinstance(raw, list):
        raise loader.error(
            "listeners",
            f"must be an array of tables (write [[listeners]] sections), got {toml_type(raw)}",
        )
    if not raw:
        raise loader.error("listeners", "must contain at least one [[listeners]] table")
    listeners: list[ListenerConfig] = []
    seen: dict[tuple[str, int], int] = {}
    for index, item in enumerate(raw):
        where = f"listeners[{index}]"
        if not isinstance(item, dict):
            raise loader.error(where, f"must be a table, got {toml_type(item)}")
        table = cast(Table, item)
        loader.check_keys(table, _LISTENER_KEYS, f"{where}.", "in [[listeners]]")
        for required in _LISTENER_KEYS:
            if required not in table:
                raise loader.error(
                    where,
                    f"missing required key {required!r} (every listener needs kind, address and port)",
                )
        kind = loader.string(table, "kind", f"{where}.kind", "")
        if kind not in LISTENER_KINDS:
            raise loader.error(
                f"{where}.kind",
                f"unknown listener kind {kind!r}; valid kinds are: {', '.join(LISTENER_KINDS)}",
            )
        address = loader.string(table, "address", f"{where}.address", "")
        if not address or any(ch.isspace() for ch in address):
            raise loader.error(
                f"{where}.address", f"must be an IP address or host name, got {address!r}"
            )
        port = loader.integer(table, "port", f"{where}.port", 0, minimum=0, maximum=65535)
        if port != 0:
            previous = seen.get((address, port))
            if previous is not None:
                raise loader.error(
                    where,
                    f"address {address} port {port} is already used by listeners[{previous}]",
                )
            seen[(address, port)] = index
        listeners.append(ListenerConfig(kind, address, port))
    return tuple(listeners)


def _load_tls(loader: Loader, data: Table) -> TLSConfig:
    table = loader.table(data, "tls", "tls")
    loader.check_keys(table, _TLS_KEYS, "tls.", "in [tls]")
    cert = loader.path_value(table, "cert", "tls.cert")
    key = loader.path_value(table, "key", "tls.key")
    if cert is not None and key is None:
        raise loader.error(
            "tls",
            "'cert' is set but 'key' is not; give both, or neither to generate a self-signed pair",
        )
    if key is not None and cert is None:
        raise loader.error(
            "tls",
            "'key' is set but 'cert' is not; give both, or neither to generate a self-signed pair",
        )
    for name, path in (("tls.cert", cert), ("tls.key", key)):
        if path is not None and not path.is_file():
            raise loader.error(name, f"file not found: {path}")
    backend = loader.string(table, "backend", "tls.backend", "stdlib")
    if backend not in TLS_BACKENDS:
        raise loader.error(
            "tls.backend", f"must be one of {', '.join(TLS_BACKENDS)}, got {backend!r}"
        )
    read_ahead = loader.boolean(table, "read_ahead", "tls.read_ahead", True)
    return TLSConfig(cert=cert, key=key, backend=backend, read_ahead=read_ahead)


def _load_limits(loader: Loader, data: Table) -> LimitsConfig:
    table = loader.table(data, "limits", "limits")
    loader.check_keys(table, _LIMITS_KEYS, "limits.", "in [limits]")
    defaults = LimitsConfig()
    big = 1 << 30
    max_stanza_size = loader.integer(
        table,
        "max_stanza_size",
        "limits.max_stanza_size",
        defaults.max_stanza_size,
        minimum=10000,
        maximum=big,
    )
    preauth = loader.integer(
        table,
        "max_stanza_size_preauth",
        "limits.max_stanza_size_preauth",
        defaults.max_stanza_size_preauth,
        minimum=1024,
        maximum=big,
    )
    if preauth > max_stanza_size:
        raise loader.error(
            "limits.max_stanza_size_preauth",
            f"is {preauth}, which exceeds limits.max_stanza_size ({max_stanza_size})",
        )
    max_depth = loader.integer(
        table, "max_depth", "limits.max_depth", defaults.max_depth, minimum=4, maximum=10000
    )
    timeout = loader.number(
        table, "negotiation_timeout", "limits.negotiation_timeout", defaults.negotiation_timeout
    )
    counts = {
        key: loader.integer(
            table, key, f"limits.{key}", getattr(defaults, key), minimum=minimum, maximum=big
        )
        for key, minimum in (
            ("max_roster_items", 1),
            ("max_roster_groups_per_item", 1),
            ("max_roster_size", 1024),
            ("max_pending_subscriptions", 1),
            ("max_subscription_status", 0),
            ("max_directed_presence", 1),
            ("max_offline_messages", 0),
            ("max_vcard_size", 1024),
            ("max_private_size", 1024),
            ("max_private_items", 1),
            ("max_private_total", 1024),
            ("registrations_per_ip_per_hour", 0),
            ("max_unacked", 1),
            ("max_unacked_connected", 1),
            ("max_unacked_bytes", 65536),
            ("unacked_burst", 1),
            ("max_connections", 1),
            ("max_connections_per_ip", 1),
            ("max_sessions_per_account", 1),
            ("auth_failures_before_backoff", 1),
            ("auth_backoff_max_entries", 1),
            ("auth_log_lines_per_minute", 1),
            ("password_changes_per_hour", 1),
            ("max_read_rate", 1024),
            ("max_output_buffer", 65536),
        )
    }
    # A roster result must fit in the output buffer with its XML around it:
    # the default follows a smaller buffer, a value set explicitly must fit.
    if "max_roster_size" not in table:
        counts["max_roster_size"] = min(defaults.max_roster_size, counts["max_output_buffer"] // 2)
    elif counts["max_roster_size"] > counts["max_output_buffer"] // 2:
        raise loader.error(
            "limits.max_roster_size",
            f"is {counts['max_roster_size']}, more than half of limits.max_output_buffer"
            f" ({counts['max_output_buffer']})",
        )
    counts["max_auth_attempts"] = loader.integer(  # RFC 6120 §6.4.5: 2 to 5 retries
        table,
        "max_auth_attempts",
        "limits.max_auth_attempts",
        defaults.max_auth_attempts,
        minimum=1,
        maximum=6,
    )
    raw_resume = table.get("resume_timeout", defaults.resume_timeout)
    resume_timeout = (  # 0 turns stream resumption off
        0.0
        if raw_resume == 0 and not isinstance(raw_resume, bool)
        else loader.number(
            table, "resume_timeout", "limits.resume_timeout", defaults.resume_timeout
        )
    )
    idle_timeout = loader.number(
        table, "idle_timeout", "limits.idle_timeout", defaults.idle_timeout
    )
    raw_stall = table.get("output_stall_timeout", defaults.output_stall_timeout)
    stall = (  # 0: over max_output_buffer is over, reading or not
        0.0
        if raw_stall == 0 and not isinstance(raw_stall, bool)
        else loader.number(
            table,
            "output_stall_timeout",
            "limits.output_stall_timeout",
            defaults.output_stall_timeout,
        )
    )
    return LimitsConfig(
        idle_timeout=idle_timeout,
        output_stall_timeout=stall,
        max_stanza_size=max_stanza_size,
        max_stanza_size_preauth=preauth,
        max_depth=max_depth,
        negotiation_timeout=timeout,
        resume_timeout=resume_timeout,
        **counts,
    )


def _load_metrics(loader: Loader, data: Table) -> MetricsConfig:
    table = loader.table(data, "metrics", "metrics")
    loader.check_keys(table, _METRICS_KEYS, "metrics.", "in [metrics]")
    defaults = MetricsConfig()
    address = loader.string(table, "address", "metrics.address", defaults.address)
    if not address or any(ch.isspace() for ch in address):
        raise loader.error(
            "metrics.address", f"must be an IP address or host name, got {address!r}"
        )
    return MetricsConfig(
        enabled=loader.boolean(table, "enabled", "metrics.enabled", defaults.enabled),
        address=address,
        port=loader.integer(table, "port", "metrics.port", defaults.port, minimum=0, maximum=65535),
    )


#: The environment variable naming the configuration file.
CONFIG_ENV: Final = "XMPP_TRIO_CONFIG"
#: Where a system-wide configuration file is looked for.
SYSTEM_CONFIG: Final = Path("/etc/xmpp-trio/xmpp.toml")


def find_config(explicit: Path | None) -> Path | None:
    """The configuration file a command uses, found the way admins expect:
    ``--config``, else ``$XMPP_TRIO_CONFIG``, else ``./xmpp.toml``, else
    ``/etc/xmpp-trio/xmpp.toml``; ``None`` (the built-in defaults) if none
    is given or exists. A file named by the option or the variable must exist."""
    if explicit is not None:
        return explicit
    named = os.environ.get(CONFIG_ENV)
    if named:
        return Path(named)
    for candidate in (Path("xmpp.toml"), SYSTEM_CONFIG):
        if candidate.is_file():
            return candidate
    return None


def load_config(path: Path | None) -> ServerConfig:
    """Load and validate the configuration file at ``path``.

    ``None`` means no file: every setting takes its default (the data directory
    still honours ``$XMPP_TRIO_DATA``). Raise :class:`ConfigError` explaining the
    first problem found.
    """
    if path is None:
        return ServerConfig()
    path = Path(path).expanduser().absolute()
    try:
        with path.open("rb") as file:
            data: Table = tomllib.load(file)
    except FileNotFoundError:
        raise ConfigError("configuration file not found", path=path) from None
    except IsADirectoryError:
        raise ConfigError("is a directory, not a configuration file", path=path) from None
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror or exc}", path=path) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"not valid UTF-8 TOML: {exc}", path=path) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"invalid TOML: {exc}", path=path) from None

    loader = Loader(path)
    loader.check_keys(data, _TOP_KEYS, "", "at the top level")

    domains = _load_domains(loader, data)
    anonymous_domains = _load_domains(loader, data, "anonymous_domains", (), taken=domains)
    data_dir_value = loader.path_value(data, "data_dir", "data_dir")
    data_dir = data_dir_value if data_dir_value is not None else default_data_dir()
    log_level = loader.string(data, "log_level", "log_level", "info").lower()
    if log_level not in LOG_LEVELS:
        raise loader.error(
            "log_level", f"unknown level {log_level!r}; valid levels are: {', '.join(LOG_LEVELS)}"
        )
    log_format = loader.string(data, "log_format", "log_format", "text").lower()
    if log_format not in LOG_FORMATS:
        raise loader.error(
            "log_format", f"unknown format {log_format!r}; valid: {', '.join(LOG_FORMATS)}"
        )
    scram_iterations = loader.integer(
        data,
        "scram_iterations",
        "scram_iterations",
        10000,
        minimum=MIN_SCRAM_ITERATIONS,
        maximum=10_000_000,
    )
    config = ServerConfig(
        domains=domains,
        anonymous_domains=anonymous_domains,
        echo_service=loader.boolean(data, "echo_service", "echo_service", False),
        data_dir=data_dir,
        listeners=_load_listeners(loader, data),
        require_tls=loader.boolean(data, "require_tls", "require_tls", True),
        allow_plain=loader.boolean(data, "allow_plain", "allow_plain", True),
        allow_anonymous=loader.boolean(data, "allow_anonymous", "allow_anonymous", False),
        allow_registration=loader.boolean(data, "allow_registration", "allow_registration", False),
        sasl2=loader.boolean(data, "sasl2", "sasl2", True),
        fast_token_lifetime=loader.integer(
            data, "fast_token_lifetime", "fast_token_lifetime", 2592000, minimum=0, maximum=1 << 31
        ),
        fast_rotate_within=loader.integer(
            data, "fast_rotate_within", "fast_rotate_within", 1209600, minimum=0, maximum=1 << 31
        ),
        scram_iterations=scram_iterations,
        log_level=log_level,
        log_format=log_format,
        tls=_load_tls(loader, data),
        limits=_load_limits(loader, data),
        metrics=_load_metrics(loader, data),
        http=load_http(loader, data),
        pubsub=load_pubsub(loader, data),
        muc=load_muc(loader, data, domains + anonymous_domains),
        components=load_components(loader, data, domains + anonymous_domains),
        admin=load_admin(loader, data),
        directory=load_directory(loader, data, domains + anonymous_domains),
        federation=load_federation(loader, data),
        mam=load_mam(loader, data),
        mam_writer_thread=load_mam_writer_thread(loader, data),
        mam_writer=load_mam_writer(loader, data),
        gc=load_gc(loader, data),
        runtime=load_runtime(loader, data),
        config_path=path,
    )
    services = (
        config.echo_domain,
        config.pubsub_domain,
        config.muc_domain,
        config.directory_domain,
    )
    upload = f"upload.{domains[0]}" if config.http.upload else None
    check_component_domains(loader, config.components, (*services, upload))
    return config
