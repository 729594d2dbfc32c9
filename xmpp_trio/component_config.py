"""The ``[components]`` section of the server configuration: external
components (XEP-0114) and their shared secrets; see docs/components.md::

    [components]
    when_away = "bounce"     # stanzas for a component not connected: "bounce" or "queue"
    max_queue = 1000         # stanzas held per component while it is away (then bounced)
    on_conflict = "refuse"   # a second connection for a domain: "refuse" or "replace"

    [components.secrets]     # component domain = shared secret
    "gw.example.org" = "a long random secret"

Components connect to a ``kind = "component"`` listener (conventionally
127.0.0.1 port 5347). Secrets never appear in logs, errors or reprs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final

from xmpp_sansio.jid import JID
from xmpp_sansio.server.component import ComponentSettings, OnConflict, WhenAway

from .config_loader import Loader as _Loader

__all__ = ["COMPONENT_KEYS", "ComponentsConfig", "check_component_domains", "load_components"]

COMPONENT_KEYS: Final = ("when_away", "max_queue", "on_conflict", "secrets")


@dataclass(frozen=True, slots=True)
class ComponentsConfig:
    """The ``[components]`` section: ``secrets`` maps each component domain
    (normalised) to its shared secret (kept out of the repr)."""

    secrets: Mapping[str, str] = field(default_factory=dict, repr=False)
    settings: ComponentSettings = field(default_factory=ComponentSettings)

    @property
    def domains(self) -> tuple[str, ...]:
        return tuple(sorted(self.secrets))


def _choice(loader: _Loader, table: Mapping[str, object], key: str, default: str) -> str:
    allowed = {"when_away": ("bounce", "queue"), "on_conflict": ("refuse", "replace")}[key]
    value = loader.string(table, key, f"components.{key}", default)
    if value not in allowed:
        raise loader.error(
            f"components.{key}", f"must be one of {', '.join(allowed)}, got {value!r}"
        )
    return value


def load_components(
    loader: _Loader, data: Mapping[str, object], domains: tuple[str, ...]
) -> ComponentsConfig:
    """Read and check ``[components]`` (``domains``: the account domains,
    which no component may take)."""
    table = loader.table(data, "components", "components")
    loader.check_keys(table, COMPONENT_KEYS, "components.", "in [components]")
    raw = loader.table(table, "secrets", "components.secrets")
    secrets: dict[str, str] = {}
    for name, secret in raw.items():
        where = f"components.secrets.{name}"
        try:
            domain = JID.parse(name).domain
        except ValueError:
            raise loader.error(where, "is not a domain name") from None
        if JID.parse(name) != JID.from_parts(None, domain, None):
            raise loader.error(where, "must be a bare domain (no user, no resource)")
        if domain in domains:
            raise loader.error(where, f"{domain} is also an account domain")
        if domain in secrets:
            raise loader.error(where, f"{domain} is listed twice")
        if not isinstance(secret, str) or not secret:
            # The value is a secret: never repeat it in the message.
            raise loader.error(where, "must be a non-empty string (the shared secret)")
        secrets[domain] = secret
    settings = ComponentSettings(
        when_away=WhenAway(_choice(loader, table, "when_away", "bounce")),
        max_queue=loader.integer(
            table, "max_queue", "components.max_queue", 1000, minimum=0, maximum=1_000_000
        ),
        on_conflict=OnConflict(_choice(loader, table, "on_conflict", "refuse")),
    )
    return ComponentsConfig(secrets, settings)


def check_component_domains(
    loader: _Loader, components: ComponentsConfig, services: Iterable[str | None]
) -> None:
    """No component may take the domain of one of the server's own
    ``services`` (``echo.``, ``pubsub.``, ``conference.``, ``vjud.``, ``upload.``)."""
    taken = set(services)
    for domain in components.domains:
        if domain in taken:
            raise loader.error(
                f"components.secrets.{domain}", f"{domain} is a service of this server"
            )
