"""The ``[federation]`` section of the server configuration (server-to-server,
RFC 6120 §13; see docs/federation.md)::

    [federation]
    enabled = false               # listen for and route to other domains (off by default)
    port = 5269                   # the s2s listener when enabled (0: any free port)
    require_valid_certificates = false  # true: no dialback on an untrusted certificate
    dialback = true               # Server Dialback (XEP-0220) when EXTERNAL is not possible
    cafile = ""                   # CA bundle for peers' certificates (empty: the system store)
    allow = []                    # only these remote domains (empty: any)
    deny = []                     # never these remote domains
    hosts = {}                    # static overrides, "domain" = "host:port" (no DNS)
    connect_timeout = 30          # seconds to reach and authenticate a remote server
    idle_timeout = 300            # seconds an unused s2s stream is kept open
    send_timeout = 60             # seconds a write may wait on a remote that stops reading
    max_queue = 1000              # stanzas held per remote domain while connecting
    max_streams_per_domain = 4    # s2s streams with one remote domain, both ways
    max_domain_pairs = 1000       # domain pairs one stream may carry (XEP-0220 §2.6)
    piggyback = true              # our other domains share an open stream to a remote (XEP-0220 §2.6)
    bidi = true                   # one TCP connection both ways with a peer that supports XEP-0288
    max_inbound_rate = 1000000    # bytes/s read from one remote domain, all its streams (burst: twice)
    ping_interval = 0             # seconds: XEP-0199 ping an outbound link idle that long (0: off)
    ping_timeout = 30             # seconds to answer that ping; else the link closes
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from xmpp_sansio.jid import JID, InvalidJID

from .config_loader import Loader as _Loader

__all__ = ["FEDERATION_KEYS", "FederationConfig", "load_federation"]

FEDERATION_KEYS: Final = (
    "enabled",
    "port",
    "require_valid_certificates",
    "dialback",
    "cafile",
    "allow",
    "deny",
    "hosts",
    "connect_timeout",
    "idle_timeout",
    "send_timeout",
    "max_queue",
    "max_streams_per_domain",
    "max_domain_pairs",
    "piggyback",
    "bidi",
    "max_inbound_rate",
    "ping_interval",
    "ping_timeout",
)


@dataclass(frozen=True, slots=True)
class FederationConfig:
    """The ``[federation]`` section (defaults as documented above)."""

    enabled: bool = False
    port: int = 5269
    require_valid_certificates: bool = False
    dialback: bool = True
    cafile: str = ""
    allow: frozenset[str] = frozenset()
    deny: frozenset[str] = frozenset()
    hosts: Mapping[str, tuple[str, int]] = field(default_factory=dict)
    connect_timeout: float = 30.0
    idle_timeout: float = 300.0
    send_timeout: float = 60.0
    max_queue: int = 1000
    max_streams_per_domain: int = 4
    max_domain_pairs: int = 1000
    piggyback: bool = True
    bidi: bool = True
    max_inbound_rate: int = 1_000_000
    ping_interval: float = 0.0
    ping_timeout: float = 30.0

    def allows(self, domain: str) -> bool:
        """Whether stanzas may go to and come from the remote ``domain``:
        not denied, and allowed when an allow list is given."""
        return domain not in self.deny and (not self.allow or domain in self.allow)


def _domain(loader: _Loader, key: str, value: object) -> str:
    if not isinstance(value, str):
        raise loader.error(key, f"must be a domain name (string), not {value!r}")
    try:
        jid = JID.parse(value)
    except InvalidJID:
        raise loader.error(key, f"is not a domain name: {value!r}") from None
    if jid.local is not None or jid.resource is not None:
        raise loader.error(key, f"is not a domain name: {value!r}")
    return jid.domain


def _domains(loader: _Loader, table: Mapping[str, object], key: str) -> frozenset[str]:
    raw = table.get(key, [])
    if not isinstance(raw, list):
        raise loader.error(f"federation.{key}", "must be an array of domain names")
    return frozenset(_domain(loader, f"federation.{key}", v) for v in raw)


def _hosts(loader: _Loader, table: Mapping[str, object]) -> dict[str, tuple[str, int]]:
    raw = table.get("hosts", {})
    if not isinstance(raw, dict):
        raise loader.error("federation.hosts", 'must be a table of "domain" = "host:port"')
    hosts: dict[str, tuple[str, int]] = {}
    for name, value in raw.items():
        key = f"federation.hosts.{name}"
        domain = _domain(loader, key, name)
        host, sep, port = value.rpartition(":") if isinstance(value, str) else ("", "", "")
        host = host.removeprefix("[").removesuffix("]")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise loader.error(key, f'must be "host:port", not {value!r}')
        hosts[domain] = (host, int(port))
    return hosts


def load_federation(loader: _Loader, data: Mapping[str, object]) -> FederationConfig:
    """Read and check ``[federation]``."""
    table = loader.table(data, "federation", "federation")
    loader.check_keys(table, FEDERATION_KEYS, "federation.", "in [federation]")

    def count(key: str, default: int, minimum: int = 1, maximum: int = 1_000_000) -> int:
        return loader.integer(
            table, key, f"federation.{key}", default, minimum=minimum, maximum=maximum
        )

    def seconds(key: str, default: float) -> float:
        return loader.number(table, key, f"federation.{key}", default)

    return FederationConfig(
        enabled=loader.boolean(table, "enabled", "federation.enabled", False),
        port=count("port", 5269, minimum=0, maximum=65535),
        require_valid_certificates=loader.boolean(
            table, "require_valid_certificates", "federation.require_valid_certificates", False
        ),
        dialback=loader.boolean(table, "dialback", "federation.dialback", True),
        cafile=loader.string(table, "cafile", "federation.cafile", ""),
        allow=_domains(loader, table, "allow"),
        deny=_domains(loader, table, "deny"),
        hosts=_hosts(loader, table),
        connect_timeout=seconds("connect_timeout", 30.0),
        idle_timeout=seconds("idle_timeout", 300.0),
        send_timeout=seconds("send_timeout", 60.0),
        max_queue=count("max_queue", 1000),
        max_streams_per_domain=count("max_streams_per_domain", 4),
        max_domain_pairs=count("max_domain_pairs", 1000),
        piggyback=loader.boolean(table, "piggyback", "federation.piggyback", True),
        bidi=loader.boolean(table, "bidi", "federation.bidi", True),
        max_inbound_rate=count("max_inbound_rate", 1_000_000, minimum=1024, maximum=10**10),
        ping_interval=float(count("ping_interval", 0, minimum=0, maximum=86_400)),
        ping_timeout=seconds("ping_timeout", 30.0),
    )
