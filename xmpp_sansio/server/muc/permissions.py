"""Roles and affiliations (XEP-0045 §5) as data.

:data:`ROLE_PRIVILEGES` is the table "Privileges Associated With Roles"
(§5.1.1) and :data:`AFFILIATION_PRIVILEGES` the table "Privileges Associated
With Affiliations" (§5.2.1), with the entries marked "Yes*"/"No*" (default,
configurable) at their defaults; :func:`role_privileges` applies a room's
configuration to them. :func:`initial_role` is the table "Initial Role Based
on Affiliation" (§5.1.2). :func:`role_change_error` and
:func:`affiliation_change_error` state who may change whose role or
affiliation (§8, §9, §10), as the error to answer or ``None``.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum, StrEnum
from typing import TYPE_CHECKING, Final

from ...errors import StanzaErrorCondition

if TYPE_CHECKING:
    from .config import RoomConfig

__all__ = [
    "AFFILIATION_PRIVILEGES",
    "ROLE_PRIVILEGES",
    "Affiliation",
    "AffiliationPrivilege",
    "Role",
    "RolePrivilege",
    "affiliation_change_error",
    "affiliation_privileges",
    "initial_role",
    "role_change_error",
    "role_privileges",
]


class Role(StrEnum):
    """An occupant's role, for one visit (§5.1)."""

    MODERATOR = "moderator"
    PARTICIPANT = "participant"
    VISITOR = "visitor"
    NONE = "none"


class Affiliation(StrEnum):
    """A user's long-lived affiliation with a room, by bare JID (§5.2)."""

    OWNER = "owner"
    ADMIN = "admin"
    MEMBER = "member"
    NONE = "none"
    OUTCAST = "outcast"

    @property
    def rank(self) -> int:
        """Owner 4, admin 3, member 2, none 1, outcast 0."""
        return _RANK[self]


_RANK: Final = {
    Affiliation.OWNER: 4,
    Affiliation.ADMIN: 3,
    Affiliation.MEMBER: 2,
    Affiliation.NONE: 1,
    Affiliation.OUTCAST: 0,
}


class RolePrivilege(Enum):
    """The rows of §5.1.1."""

    PRESENT = "Present in Room"
    RECEIVE_MESSAGES = "Receive Messages"
    RECEIVE_PRESENCE = "Receive Occupant Presence"
    BROADCAST_PRESENCE = "Broadcast Presence to All Occupants"
    CHANGE_AVAILABILITY = "Change Availability Status"
    CHANGE_NICK = "Change Room Nickname"
    SEND_PRIVATE = "Send Private Messages"
    INVITE = "Invite Other Users"
    SEND_TO_ALL = "Send Messages to All"
    MODIFY_SUBJECT = "Modify Subject"
    KICK = "Kick Participants and Visitors"
    GRANT_VOICE = "Grant Voice"
    REVOKE_VOICE = "Revoke Voice"


class AffiliationPrivilege(Enum):
    """The rows of §5.2.1."""

    ENTER_OPEN = "Enter Open Room"
    REGISTER = "Register with Open Room"
    RETRIEVE_MEMBER_LIST = "Retrieve Member List"
    ENTER_MEMBERS_ONLY = "Enter Members-Only Room"
    BAN = "Ban Members and Unaffiliated Users"
    EDIT_MEMBER_LIST = "Edit Member List"
    ASSIGN_MODERATOR = "Assign and Remove Moderator Role"
    EDIT_ADMIN_LIST = "Edit Admin List"
    EDIT_OWNER_LIST = "Edit Owner List"
    CHANGE_CONFIG = "Change Room Configuration"
    DESTROY = "Destroy Room"


_R = RolePrivilege
_VISITOR: Final = frozenset(
    {
        _R.PRESENT,
        _R.RECEIVE_MESSAGES,
        _R.RECEIVE_PRESENCE,
        _R.BROADCAST_PRESENCE,  # Yes*
        _R.CHANGE_AVAILABILITY,  # Yes*
        _R.CHANGE_NICK,  # Yes*
        _R.SEND_PRIVATE,  # Yes*
        _R.INVITE,  # Yes*
    }
)
_PARTICIPANT: Final = _VISITOR | {_R.SEND_TO_ALL, _R.MODIFY_SUBJECT}  # subject: Yes*

#: §5.1.1 at its defaults (the "*" rows as the table shows them).
ROLE_PRIVILEGES: Final[Mapping[Role, frozenset[RolePrivilege]]] = {
    Role.NONE: frozenset(),
    Role.VISITOR: _VISITOR,
    Role.PARTICIPANT: _PARTICIPANT,
    Role.MODERATOR: frozenset(RolePrivilege),
}

_A = AffiliationPrivilege
_ADMIN: Final = frozenset(
    {
        _A.ENTER_OPEN,
        _A.RETRIEVE_MEMBER_LIST,
        _A.ENTER_MEMBERS_ONLY,
        _A.BAN,
        _A.EDIT_MEMBER_LIST,
        _A.ASSIGN_MODERATOR,
    }
)

#: §5.2.1 ("N/A" is no).
AFFILIATION_PRIVILEGES: Final[Mapping[Affiliation, frozenset[AffiliationPrivilege]]] = {
    Affiliation.OUTCAST: frozenset(),
    Affiliation.NONE: frozenset({_A.ENTER_OPEN, _A.REGISTER}),
    Affiliation.MEMBER: frozenset({_A.ENTER_OPEN, _A.RETRIEVE_MEMBER_LIST, _A.ENTER_MEMBERS_ONLY}),
    Affiliation.ADMIN: _ADMIN,
    Affiliation.OWNER: _ADMIN
    | {_A.EDIT_ADMIN_LIST, _A.EDIT_OWNER_LIST, _A.CHANGE_CONFIG, _A.DESTROY},
}


def role_privileges(role: Role, config: RoomConfig) -> frozenset[RolePrivilege]:
    """``role``'s privileges in a room configured by ``config``: the "*"
    entries of §5.1.1 follow ``presence_broadcast``, ``allow_pm``,
    ``allow_invites`` and ``change_subject``."""
    privileges = set(ROLE_PRIVILEGES[role])
    if role is Role.NONE or role is Role.MODERATOR:
        return frozenset(privileges)
    if role.value not in config.presence_broadcast:
        privileges.discard(_R.BROADCAST_PRESENCE)
    if not config.allow_invites:
        privileges.discard(_R.INVITE)
    if (
        config.allow_pm == "none"
        or (config.allow_pm == "participants" and role is Role.VISITOR)
        or config.allow_pm == "moderators"
    ):
        privileges.discard(_R.SEND_PRIVATE)
    if role is Role.PARTICIPANT and not config.change_subject:
        privileges.discard(_R.MODIFY_SUBJECT)
    return frozenset(privileges)


def affiliation_privileges(
    affiliation: Affiliation, config: RoomConfig
) -> frozenset[AffiliationPrivilege]:
    """``affiliation``'s privileges; §5.2.1 note ***: members may not
    retrieve the member list of a semi-anonymous room."""
    privileges = AFFILIATION_PRIVILEGES[affiliation]
    if affiliation is Affiliation.MEMBER and config.whois != "anyone":
        return privileges - {_A.RETRIEVE_MEMBER_LIST}
    return privileges


def initial_role(affiliation: Affiliation, *, moderated: bool, members_only: bool) -> Role:
    """§5.1.2: the role a user enters with (``Role.NONE``: may not enter)."""
    if affiliation in (Affiliation.OWNER, Affiliation.ADMIN):
        return Role.MODERATOR
    if affiliation is Affiliation.MEMBER:
        return Role.PARTICIPANT
    if affiliation is Affiliation.OUTCAST or members_only:
        return Role.NONE
    return Role.VISITOR if moderated else Role.PARTICIPANT


def role_change_error(
    actor_affiliation: Affiliation,
    actor_role: Role,
    target_affiliation: Affiliation,
    target_role: Role,
    new_role: Role,
) -> StanzaErrorCondition | None:
    """Whether an occupant may set another's role (§8.2-§8.6, §9.6, §9.7):
    ``forbidden`` without the privilege, ``not-allowed`` against a higher
    affiliation or an admin's or owner's voice, ``None`` if it may.
    Granting or revoking moderator needs the admin affiliation (§5.2.1);
    kicking and voice need the moderator role (§5.1.1)."""
    if new_role is Role.MODERATOR or target_role is Role.MODERATOR:
        demoting = new_role is not Role.MODERATOR
        if (
            demoting
            and actor_role is Role.MODERATOR
            and target_affiliation.rank >= Affiliation.ADMIN.rank
        ):
            return StanzaErrorCondition.NOT_ALLOWED  # §8.2, §8.4: never an admin's or owner's
        if _A.ASSIGN_MODERATOR not in AFFILIATION_PRIVILEGES[actor_affiliation]:
            return StanzaErrorCondition.FORBIDDEN
        if target_affiliation.rank > actor_affiliation.rank:
            return StanzaErrorCondition.NOT_ALLOWED
        if new_role is not Role.MODERATOR and target_affiliation.rank >= Affiliation.ADMIN.rank:
            return StanzaErrorCondition.NOT_ALLOWED
        return None
    if actor_role is not Role.MODERATOR:
        return StanzaErrorCondition.FORBIDDEN
    if target_affiliation.rank >= Affiliation.ADMIN.rank:
        return StanzaErrorCondition.NOT_ALLOWED  # §8.2, §8.4: not an admin's or owner's
    if new_role is Role.NONE and target_affiliation.rank > actor_affiliation.rank:
        return StanzaErrorCondition.NOT_ALLOWED
    return None


def affiliation_change_error(
    actor: Affiliation, target: Affiliation, new: Affiliation
) -> StanzaErrorCondition | None:
    """Whether a user may change another's affiliation from ``target`` to
    ``new`` (§9.1-§9.5, §10.6-§10.9): owners may change any; admins may move
    users among none, member and outcast (``not-allowed`` for an admin's or
    owner's, §9.1) and only they; everyone else is ``forbidden``."""
    if actor is Affiliation.OWNER:
        return None
    if actor is not Affiliation.ADMIN:
        return StanzaErrorCondition.FORBIDDEN
    if new in (Affiliation.OWNER, Affiliation.ADMIN):
        return StanzaErrorCondition.FORBIDDEN
    if target.rank >= Affiliation.ADMIN.rank:
        return StanzaErrorCondition.NOT_ALLOWED
    return None
