"""A room's configuration and the ``muc#roomconfig`` form (XEP-0045 §10.2,
§15.5.3), and the service's limits.

:class:`RoomConfig` is the configuration as data (what is stored for a
persistent room, see :meth:`RoomConfig.to_dict`); :func:`config_form` is the
form an owner gets (§10.2) and :func:`apply_submission` reads a submitted one
back, refusing bad values with ``not-acceptable`` (XEP-0004 §4).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any, Final

from ...forms import FORM_TYPE, Field, FieldType, Form, FormError, FormType, Option
from ...jid import JID

__all__ = [
    "ROOMCONFIG",
    "MucLimits",
    "RoomConfig",
    "apply_submission",
    "config_form",
]

ROOMCONFIG: Final = "http://jabber.org/protocol/muc#roomconfig"
_ROLES: Final = ("moderator", "participant", "visitor")
_PM: Final = ("anyone", "participants", "moderators", "none")
_MAXUSERS: Final = ("10", "20", "30", "50", "100", "200", "500", "1000")


@dataclass(frozen=True, slots=True)
class MucLimits:
    """The service's bounds (the ``[muc]`` section of the server config):
    rooms in all and per creating user (``resource-constraint`` beyond,
    §10.1.1), occupants per room (caps every room's ``max_users``;
    ``service-unavailable`` when full, §7.2.10), history messages kept per
    room (caps ``muc#maxhistoryfetch``), subject and nick length
    (``not-acceptable``, §7.2.9), and items of one admin request or
    invitation."""

    max_rooms: int = 10000
    max_rooms_per_user: int = 100
    max_occupants: int = 1000
    max_history: int = 100
    max_subject_length: int = 1024
    max_nick_length: int = 64
    max_items_per_request: int = 100


#: The room's archiving switch (XEP-0313 §5.1.2; the name Prosody's mod_muc_mam uses).
ENABLE_ARCHIVING: Final = "muc#roomconfig_enablearchiving"


@dataclass(frozen=True, slots=True)
class RoomConfig:
    """One room's settings (the ``muc#roomconfig`` fields, §15.5.3)."""

    name: str = ""
    description: str = ""
    persistent: bool = False
    public: bool = True
    members_only: bool = False
    moderated: bool = False
    password: str = ""  # empty: not password-protected
    whois: str = "moderators"  # or "anyone" (non-anonymous)
    max_users: int = 100
    history_length: int = 20
    presence_broadcast: tuple[str, ...] = _ROLES
    change_subject: bool = False
    allow_invites: bool = False
    allow_pm: str = "anyone"
    allow_register: bool = True
    logging: bool = False
    lang: str = ""
    #: Archive the room's messages (XEP-0313 §5.1.2; ``muc#roomconfig_enablearchiving``,
    #: the field Prosody's mod_muc_mam offers), when the server keeps archives.
    archiving: bool = True

    def to_dict(self) -> dict[str, Any]:
        """Plain data (JSON-ready) for the store."""
        data = asdict(self)
        data["presence_broadcast"] = list(self.presence_broadcast)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any], default: RoomConfig | None = None) -> RoomConfig:
        """The configuration stored by :meth:`to_dict` (unknown keys ignored,
        missing ones from ``default``)."""
        base = default or cls()
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        if "presence_broadcast" in known:
            known["presence_broadcast"] = tuple(known["presence_broadcast"])
        return replace(base, **known)

    @property
    def password_protected(self) -> bool:
        return bool(self.password)

    @property
    def non_anonymous(self) -> bool:
        return self.whois == "anyone"


def _bool(var: str, value: bool, label: str) -> Field:
    return Field(var, FieldType.BOOLEAN, label, values=("1" if value else "0",))


def _text(var: str, value: str, label: str) -> Field:
    return Field(var, FieldType.TEXT_SINGLE, label, values=(value,) if value else ())


def _list(var: str, value: str, label: str, options: tuple[str, ...]) -> Field:
    return Field(
        var,
        FieldType.LIST_SINGLE,
        label,
        values=(value,),
        options=tuple(Option(o) for o in options),
    )


def config_form(
    config: RoomConfig,
    owners: tuple[JID, ...],
    admins: tuple[JID, ...],
    limits: MucLimits,
    *,
    archive: bool = False,
) -> Form:
    """The configuration form of §10.2 (Example 163) with ``config``'s values;
    with ``archive`` (the server keeps room archives) the archiving switch."""
    maxusers = tuple(o for o in _MAXUSERS if int(o) <= limits.max_occupants)
    if str(config.max_users) not in maxusers:
        maxusers = (*maxusers, str(config.max_users))
    fields = (
        Field(FORM_TYPE, FieldType.HIDDEN, values=(ROOMCONFIG,)),
        _text("muc#roomconfig_roomname", config.name, "Natural-Language Room Name"),
        _text("muc#roomconfig_roomdesc", config.description, "Short Description of Room"),
        _text("muc#roomconfig_lang", config.lang, "Natural Language for Room Discussions"),
        _bool("muc#roomconfig_persistentroom", config.persistent, "Make Room Persistent?"),
        _bool("muc#roomconfig_publicroom", config.public, "Make Room Publicly Searchable?"),
        _bool("muc#roomconfig_membersonly", config.members_only, "Make Room Members-Only?"),
        _bool("muc#roomconfig_moderatedroom", config.moderated, "Make Room Moderated?"),
        _bool(
            "muc#roomconfig_passwordprotectedroom",
            config.password_protected,
            "Password Required to Enter?",
        ),
        Field(
            "muc#roomconfig_roomsecret",
            FieldType.TEXT_PRIVATE,
            "Password",
            values=(config.password,) if config.password else (),
        ),
        _list(
            "muc#roomconfig_whois",
            config.whois,
            "Who May Discover Real JIDs?",
            ("moderators", "anyone"),
        ),
        _list(
            "muc#roomconfig_maxusers",
            str(config.max_users),
            "Maximum Number of Occupants",
            maxusers,
        ),
        _text(
            "muc#maxhistoryfetch", str(config.history_length), "Maximum Number of History Messages"
        ),
        Field(
            "muc#roomconfig_presencebroadcast",
            FieldType.LIST_MULTI,
            "Roles for which Presence is Broadcasted",
            values=config.presence_broadcast,
            options=tuple(Option(r) for r in _ROLES),
        ),
        _bool(
            "muc#roomconfig_changesubject",
            config.change_subject,
            "Allow Occupants to Change Subject?",
        ),
        _bool(
            "muc#roomconfig_allowinvites", config.allow_invites, "Allow Occupants to Invite Others?"
        ),
        _list(
            "muc#roomconfig_allowpm", config.allow_pm, "Roles that May Send Private Messages", _PM
        ),
        _bool(
            "muc#register_allow", config.allow_register, "Allow Users to Register with the Room?"
        ),
        _bool("muc#roomconfig_enablelogging", config.logging, "Enable Public Logging?"),
        *((_bool(ENABLE_ARCHIVING, config.archiving, "Enable Archiving?"),) if archive else ()),
        Field(
            "muc#roomconfig_roomadmins",
            FieldType.JID_MULTI,
            "Full List of Room Admins",
            values=tuple(str(j) for j in admins),
        ),
        Field(
            "muc#roomconfig_roomowners",
            FieldType.JID_MULTI,
            "Full List of Room Owners",
            values=tuple(str(j) for j in owners),
        ),
    )
    return Form(FormType.FORM, title="Configuration for room", fields=fields)


def _choice(form: Form, var: str, allowed: tuple[str, ...], current: str) -> str:
    value = form.value(var)
    if value is None:
        return current
    if value not in allowed:
        raise FormError(f"field {var!r}: {value!r} is not one of {', '.join(allowed)}")
    return value


def _count(form: Form, var: str, current: int, upto: int) -> int:
    value = form.int_value(var)
    if value is None:
        return current
    if not 0 <= value <= upto:
        raise FormError(f"field {var!r}: {value} is not between 0 and {upto}")
    return value


def apply_submission(
    config: RoomConfig, form: Form, limits: MucLimits
) -> tuple[RoomConfig, tuple[JID, ...] | None, tuple[JID, ...] | None]:
    """``config`` changed by the submitted ``form`` (fields left out keep
    their value, §10.2), with the submitted owner and admin lists (``None``
    when absent). Raises :class:`~xmpp_sansio.forms.FormError` for a value
    out of its options or limits."""

    def flag(var: str, current: bool) -> bool:
        value = form.bool_value(var)
        return current if value is None else value

    protected = flag("muc#roomconfig_passwordprotectedroom", config.password_protected)
    secret = form.value("muc#roomconfig_roomsecret")
    password = (config.password if secret is None else secret) if protected else ""
    if protected and not password:
        raise FormError("a password-protected room needs muc#roomconfig_roomsecret")
    maxusers_raw = form.value("muc#roomconfig_maxusers")
    if maxusers_raw is None:
        max_users = config.max_users
    elif maxusers_raw == "none":
        max_users = limits.max_occupants
    else:
        max_users = _count(form, "muc#roomconfig_maxusers", config.max_users, limits.max_occupants)
    broadcast = config.presence_broadcast
    if "muc#roomconfig_presencebroadcast" in form:
        values = form.values("muc#roomconfig_presencebroadcast")
        if any(v not in _ROLES for v in values):
            raise FormError("muc#roomconfig_presencebroadcast: unknown role")
        broadcast = tuple(r for r in _ROLES if r in values)
    new = replace(
        config,
        name=form.value("muc#roomconfig_roomname")
        or ("" if "muc#roomconfig_roomname" in form else config.name),
        description=form.value("muc#roomconfig_roomdesc")
        or ("" if "muc#roomconfig_roomdesc" in form else config.description),
        lang=form.value("muc#roomconfig_lang")
        or ("" if "muc#roomconfig_lang" in form else config.lang),
        persistent=flag("muc#roomconfig_persistentroom", config.persistent),
        public=flag("muc#roomconfig_publicroom", config.public),
        members_only=flag("muc#roomconfig_membersonly", config.members_only),
        moderated=flag("muc#roomconfig_moderatedroom", config.moderated),
        password=password,
        whois=_choice(form, "muc#roomconfig_whois", ("moderators", "anyone"), config.whois),
        max_users=max_users,
        history_length=_count(
            form, "muc#maxhistoryfetch", config.history_length, limits.max_history
        ),
        presence_broadcast=broadcast,
        change_subject=flag("muc#roomconfig_changesubject", config.change_subject),
        allow_invites=flag("muc#roomconfig_allowinvites", config.allow_invites),
        allow_pm=_choice(form, "muc#roomconfig_allowpm", _PM, config.allow_pm),
        allow_register=flag("muc#register_allow", config.allow_register),
        logging=flag("muc#roomconfig_enablelogging", config.logging),
        archiving=flag(ENABLE_ARCHIVING, config.archiving),
    )
    owners = (
        form.jid_values("muc#roomconfig_roomowners")
        if "muc#roomconfig_roomowners" in form
        else None
    )
    admins = (
        form.jid_values("muc#roomconfig_roomadmins")
        if "muc#roomconfig_roomadmins" in form
        else None
    )
    return new, owners, admins
