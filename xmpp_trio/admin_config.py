"""The ``[admin]`` section of the server configuration (and the top-level
``admins``, which it joins): who may run the
service administration commands (XEP-0133) and the limits of ad-hoc command
sessions (XEP-0050); see docs/admin.md::

    [admin]
    admins = []                   # bare JIDs of the administrators (XEP-0133)
    command_session_lifetime = 600  # seconds an idle ad-hoc session lives
    max_command_sessions = 10     # ad-hoc sessions one full JID may hold at once
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from xmpp_sansio.jid import JID

from .config_loader import Loader as _Loader

__all__ = [
    "ADMIN_KEYS",
    "DIRECTORY_KEYS",
    "AdminConfig",
    "DirectoryConfig",
    "load_admin",
    "load_directory",
]

ADMIN_KEYS: Final = ("admins", "command_session_lifetime", "max_command_sessions")


@dataclass(frozen=True, slots=True)
class AdminConfig:
    """The ``[admin]`` section."""

    admins: frozenset[JID] = frozenset()
    command_session_lifetime: int = 600
    max_command_sessions: int = 10


def _admins(loader: _Loader, raw: object, name: str) -> list[JID]:
    if not isinstance(raw, list) or not all(isinstance(a, str) for a in raw):
        raise loader.error(name, "must be an array of JIDs (strings)")
    try:
        admins = [JID.parse(a) for a in raw]
    except ValueError as exc:
        raise loader.error(name, f"has an invalid JID: {exc}") from None
    for jid in admins:
        if jid.local is None or jid.resource is not None:
            raise loader.error(name, f"{jid} is not an account's bare JID")
    return admins


def load_admin(loader: _Loader, data: Mapping[str, object]) -> AdminConfig:
    """Read and check ``[admin]`` and the top-level ``admins`` (the two
    lists are joined)."""
    table = loader.table(data, "admin", "admin")
    loader.check_keys(table, ADMIN_KEYS, "admin.", "in [admin]")
    admins = _admins(loader, table.get("admins", []), "admin.admins")
    admins += _admins(loader, data.get("admins", []), "admins")
    return AdminConfig(
        frozenset(admins),
        loader.integer(
            table,
            "command_session_lifetime",
            "admin.command_session_lifetime",
            600,
            minimum=1,
            maximum=86400,
        ),
        loader.integer(
            table, "max_command_sessions", "admin.max_command_sessions", 10, minimum=1, maximum=1000
        ),
    )


DIRECTORY_KEYS: Final = ("enabled", "domain", "listed_by_default", "max_results")


@dataclass(frozen=True, slots=True)
class DirectoryConfig:
    """The ``[directory]`` section: the user directory (XEP-0055) at
    ``vjud.<first domain>`` unless ``domain`` says otherwise."""

    enabled: bool = True
    domain: str = ""
    listed_by_default: bool = False
    max_results: int = 50

    def host(self, domains: tuple[str, ...]) -> str | None:
        """Where the directory answers, or ``None`` when it is off."""
        if not self.enabled:
            return None
        return self.domain or f"vjud.{domains[0]}"


def load_directory(
    loader: _Loader, data: Mapping[str, object], domains: tuple[str, ...]
) -> DirectoryConfig:
    """Read and check ``[directory]``::

    [directory]
    enabled = true                # the user directory (XEP-0055) at vjud.<first domain>
    domain = ""                   # empty: vjud.<first domain>
    listed_by_default = false     # users are found only once they opt in
    max_results = 50              # rows one search returns
    """
    table = loader.table(data, "directory", "directory")
    loader.check_keys(table, DIRECTORY_KEYS, "directory.", "in [directory]")
    domain = loader.string(table, "domain", "directory.domain", "")
    if domain:
        try:
            domain = JID.parse(domain).domain
        except ValueError:
            raise loader.error("directory.domain", f"is not a domain name: {domain!r}") from None
        if domain in domains:
            raise loader.error("directory.domain", f"{domain} is also an account domain")
    return DirectoryConfig(
        loader.boolean(table, "enabled", "directory.enabled", True),
        domain,
        loader.boolean(table, "listed_by_default", "directory.listed_by_default", False),
        loader.integer(
            table, "max_results", "directory.max_results", 50, minimum=1, maximum=10_000
        ),
    )
