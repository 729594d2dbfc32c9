"""The ``[muc]`` section of the server configuration (XEP-0045 multi-user
chat at ``conference.<first domain>``); see docs/muc.md::

    [muc]
    enabled = true                # serve multi-user chat (XEP-0045)
    domain = ""                   # empty: conference.<first domain>
    room_creators = "local"       # "anyone", "local" (this server's users) or "admins"
    admins = []                   # bare JIDs who may create rooms when room_creators = "admins"
    max_rooms = 10000             # rooms in all
    max_rooms_per_user = 100      # rooms one user may own
    max_occupants = 1000          # occupants per room (caps each room's max users)
    max_history = 100             # messages of history kept per room
    max_subject_length = 1024     # characters of a room subject
    max_nick_length = 64          # characters of a nick
    default_persistent = false    # the configuration of new rooms...
    default_public = true
    default_members_only = false
    default_moderated = false
    default_whois = "moderators"  # or "anyone" (non-anonymous rooms)
    default_max_users = 100
    default_history_length = 20
    default_allow_invites = false
    default_change_subject = false
    default_allow_pm = "anyone"   # "anyone", "participants", "moderators" or "none"
    default_archiving = true      # archive new rooms (with [mam] enabled)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from xmpp_sansio.jid import JID
from xmpp_sansio.server.muc.config import MucLimits, RoomConfig
from xmpp_sansio.server.muc.service import MucSettings

from .config_loader import Loader as _Loader

__all__ = ["MUC_KEYS", "MucConfig", "load_muc"]

MUC_KEYS: Final = (
    "enabled",
    "domain",
    "room_creators",
    "admins",
    "max_rooms",
    "max_rooms_per_user",
    "max_occupants",
    "max_history",
    "max_subject_length",
    "max_nick_length",
    "default_persistent",
    "default_public",
    "default_members_only",
    "default_moderated",
    "default_whois",
    "default_max_users",
    "default_history_length",
    "default_allow_invites",
    "default_change_subject",
    "default_allow_pm",
    "default_archiving",
)


@dataclass(frozen=True, slots=True)
class MucConfig:
    """The ``[muc]`` section; ``domain`` empty means ``conference.<first domain>``."""

    enabled: bool = True
    domain: str = ""
    settings: MucSettings = field(default_factory=MucSettings)

    def host(self, domains: tuple[str, ...]) -> str | None:
        """Where the service answers, or ``None`` when it is off."""
        if not self.enabled:
            return None
        return self.domain or f"conference.{domains[0]}"


def _choice(
    loader: _Loader, table: Mapping[str, object], key: str, default: str, allowed: tuple[str, ...]
) -> str:
    value = loader.string(table, key, f"muc.{key}", default)
    if value not in allowed:
        raise loader.error(f"muc.{key}", f"must be one of {', '.join(allowed)}, got {value!r}")
    return value


def load_muc(loader: _Loader, data: Mapping[str, object], domains: tuple[str, ...]) -> MucConfig:
    """Read and check ``[muc]``."""
    table = loader.table(data, "muc", "muc")
    loader.check_keys(table, MUC_KEYS, "muc.", "in [muc]")
    limits, config = MucLimits(), RoomConfig()
    big = 1_000_000

    def count(key: str, default: int, minimum: int = 1, maximum: int = big) -> int:
        return loader.integer(table, key, f"muc.{key}", default, minimum=minimum, maximum=maximum)

    def flag(key: str, default: bool) -> bool:
        return loader.boolean(table, key, f"muc.{key}", default)

    domain = loader.string(table, "domain", "muc.domain", "")
    if domain:
        try:
            domain = JID.parse(domain).domain
        except ValueError:
            raise loader.error("muc.domain", f"is not a domain name: {domain!r}") from None
        if domain in domains:
            raise loader.error("muc.domain", f"{domain} is also an account domain")
    raw_admins = table.get("admins", [])
    if not isinstance(raw_admins, list) or not all(isinstance(a, str) for a in raw_admins):
        raise loader.error("muc.admins", "must be an array of JIDs (strings)")
    try:
        admins = frozenset(JID.parse(a).bare for a in raw_admins)
    except ValueError as exc:
        raise loader.error("muc.admins", f"has an invalid JID: {exc}") from None
    new_limits = MucLimits(
        max_rooms=count("max_rooms", limits.max_rooms),
        max_rooms_per_user=count("max_rooms_per_user", limits.max_rooms_per_user),
        max_occupants=count("max_occupants", limits.max_occupants, 2, 100_000),
        max_history=count("max_history", limits.max_history, 0, 10_000),
        max_subject_length=count("max_subject_length", limits.max_subject_length, 1, 65_536),
        max_nick_length=count("max_nick_length", limits.max_nick_length, 1, 1023),
    )
    default = RoomConfig(
        persistent=flag("default_persistent", config.persistent),
        public=flag("default_public", config.public),
        members_only=flag("default_members_only", config.members_only),
        moderated=flag("default_moderated", config.moderated),
        whois=_choice(loader, table, "default_whois", config.whois, ("moderators", "anyone")),
        max_users=count("default_max_users", config.max_users, 2, new_limits.max_occupants),
        history_length=count(
            "default_history_length", config.history_length, 0, new_limits.max_history
        ),
        allow_invites=flag("default_allow_invites", config.allow_invites),
        change_subject=flag("default_change_subject", config.change_subject),
        allow_pm=_choice(
            loader,
            table,
            "default_allow_pm",
            config.allow_pm,
            ("anyone", "participants", "moderators", "none"),
        ),
        archiving=flag("default_archiving", config.archiving),
    )
    creators = _choice(loader, table, "room_creators", "local", ("anyone", "local", "admins"))
    settings = MucSettings(new_limits, default, creators, admins)  # type: ignore[arg-type]
    return MucConfig(flag("enabled", True), domain, settings)
