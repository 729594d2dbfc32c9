"""Service administration (XEP-0133) as ad-hoc commands on the server's own
JID, for the administrators named in the configuration.

Each command is a fixed form (:func:`~xmpp_sansio.server.adhoc.engine.simple`)
whose completion calls the same operations as the admin socket
(:mod:`xmpp_sansio.server.admin`): an announcement is
:func:`~xmpp_sansio.server.admin.announcement`, ending sessions is the
router's ``EndSessions`` (what ``Kick`` does), a deleted account is the
``AccountDelete`` write XEP-0077 in-band removal uses. Nodes (XEP-0133 §4):
``add-user``, ``delete-user``, ``end-user-session``,
``change-user-password``, ``get-online-users-num``, ``get-online-users-list``,
``announce``, and ``ping`` (a one-stage command that answers "pong").
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from datetime import UTC, datetime
from typing import Final, Protocol

from ...disco import DiscoItem, DiscoItems
from ...forms import Field, FieldType, Form, FormType
from ...jid import JID, InvalidJID
from ..admin import (
    MAX_TEXT,
    add_account,
    announcement,
    change_password,
    delete_account,
    disable_account,
    end_account_sessions,
    set_motd,
)
from ..effects import MotdSet, Outcome, Route
from ..stages import Context
from .engine import Action, Call, Command, CommandInputError, Note, Step, simple

__all__ = ["GROUPS", "NS_ADMIN", "AdminCommands", "AdminFacts", "NoFacts", "admin_commands"]

NS_ADMIN: Final = "http://jabber.org/protocol/admin"
#: The most accounts one delete or end-session command takes.
MAX_ACCOUNTS: Final = 100
#: The most registered users one list shows (the count is exact).
MAX_LISTED: Final = 1000


#: The nodes an administrator sees on the server's disco#items (the issue's
#: seed listing, as Prosody's and ejabberd's): node -> (name, its commands).
GROUPS: Final = {
    "announce": ("Announcements", ("announce", "set-motd", "edit-motd", "delete-motd")),
    "config": ("Configuration", ("ping",)),
    "user": (
        "User Management",
        (
            "add-user",
            "delete-user",
            "disable-user",
            "reenable-user",
            "change-user-password",
            "end-user-session",
            "get-user-roster",
            "get-user-lastlogin",
        ),
    ),
    "online users": ("Online Users", ()),
    "all users": ("All Users", ()),
}


class AdminFacts(Protocol):
    """What the commands read from the stores (short reads, answered by the
    I/O layer's stores in the router call)."""

    def registered(self, domain: str) -> list[JID]:
        """The accounts of ``domain``."""
        ...

    def last_logout(self, account: JID) -> float | None:
        """When ``account``'s last session ended (XEP-0012), if known."""
        ...

    def roster(self, account: JID) -> list[tuple[str, str, str]]:
        """``account``'s roster: (JID, name, subscription) each."""
        ...


class NoFacts:
    """:class:`AdminFacts` of a server with no stores (tests)."""

    def registered(self, domain: str) -> list[JID]:
        return []

    def last_logout(self, account: JID) -> float | None:
        return None

    def roster(self, account: JID) -> list[tuple[str, str, str]]:
        return []


def _form(title: str, *fields: Field) -> Form:
    hidden = Field("FORM_TYPE", FieldType.HIDDEN, values=(NS_ADMIN,))
    return Form(FormType.FORM, title=title, fields=(hidden, *fields))


def _done(text: str, *outcomes: Outcome) -> Step:
    return Step(notes=(Note(text),), outcomes=outcomes)


def _result(*fields: Field) -> Step:
    hidden = Field("FORM_TYPE", FieldType.HIDDEN, values=(NS_ADMIN,))
    return Step(Form(FormType.RESULT, fields=(hidden, *fields)))


class AdminCommands:
    """The XEP-0133 commands of one server; ``is_admin(bare)`` is the access
    rule, ``online()`` the full JIDs of the bound sessions, ``domains`` the
    local domains (accounts elsewhere are refused with ``bad-request``)."""

    def __init__(
        self,
        is_admin: Callable[[JID], bool],
        online: Callable[[], Collection[JID]],
        account_exists: Callable[[JID], bool],
        domains: Callable[[], Collection[str]],
        facts: AdminFacts | None = None,
        motd: dict[str, str] | None = None,
    ) -> None:
        self.is_admin = is_admin
        self.online = online
        self.account_exists = account_exists
        self.domains = domains
        self.facts: AdminFacts = facts if facts is not None else NoFacts()
        #: The message of the day of each domain (kept in step by :meth:`committed`).
        self.motd: dict[str, str] = dict(motd or {})

    def committed(self, op: object) -> None:
        """A committed write: the message of the day changes once stored."""
        if type(op) is MotdSet:
            if op.text is None:
                self.motd.pop(op.domain, None)
            else:
                self.motd[op.domain] = op.text

    def group_items(self, node: str | None, entity: JID) -> DiscoItems | None:
        """An administrator's disco#items of the server: with ``node`` None
        the group nodes (appended to the service hosts by the caller), else
        a group's commands, or the online or all users (XEP-0030 §4.2,
        XEP-0133 §3); ``None`` for another node."""
        if node is None:
            return DiscoItems(tuple(DiscoItem(entity, n, name) for n, (name, _) in GROUPS.items()))
        group = GROUPS.get(node)
        if group is None:
            return None
        if node == "online users":
            users = sorted({jid.bare for jid in self.online()}, key=str)
            return DiscoItems(tuple(DiscoItem(u) for u in users[:MAX_LISTED]), node)
        if node == "all users":
            users = sorted(self.facts.registered(entity.domain), key=str)
            return DiscoItems(tuple(DiscoItem(u) for u in users[:MAX_LISTED]), node)
        return DiscoItems(
            tuple(
                DiscoItem(entity, c if c == "ping" else f"{NS_ADMIN}#{c}", None) for c in group[1]
            ),
            node,
        )

    def motd_for(self, session: JID) -> list[Outcome]:
        """The message of the day for a session that just bound (XEP-0133
        §4.24: sent to users when they log in), as a headline."""
        text = self.motd.get(session.domain)
        if text is None or session.local is None:
            return []
        return [Route(m) for m in announcement(session.domain, text, [session])]

    def _allowed(self, requester: JID) -> bool:
        return self.is_admin(requester.bare)

    def _account(self, form: Form, var: str) -> JID:
        raw = form.value(var)
        if raw is None or not raw.strip():
            raise CommandInputError(var, "a JID is required")
        return self._parse_account(var, raw.strip())

    def _parse_account(self, var: str, raw: str) -> JID:
        try:
            jid = JID.parse(raw)
        except InvalidJID as exc:
            raise CommandInputError(var, f"{raw!r} is not a JID ({exc})") from None
        if jid.local is None or jid.resource is not None or jid.domain not in self.domains():
            raise CommandInputError(var, f"{raw!r} is not a local account (user@domain)")
        return jid

    def _accounts(self, form: Form, var: str) -> list[JID]:
        raws = [v.strip() for v in form.values(var) if v.strip()]
        if not raws:
            raise CommandInputError(var, "at least one JID is required")
        if len(raws) > MAX_ACCOUNTS:
            raise CommandInputError(var, f"at most {MAX_ACCOUNTS} accounts")
        return [self._parse_account(var, raw) for raw in raws]

    # -- the commands ------------------------------------------------------------------

    def commands(self) -> list[Command]:
        """Every command, in the order disco#items lists them."""
        a = self._allowed
        jid_multi = Field("accountjids", FieldType.JID_MULTI, "The Jabber ID(s)", required=True)
        one_jid = Field("accountjid", FieldType.JID_SINGLE, "The Jabber ID", required=True)
        motd_field = Field("motd", FieldType.TEXT_MULTI, "Message of the Day", required=True)
        return [
            simple(
                f"{NS_ADMIN}#add-user",
                "Add User",
                a,
                [
                    _form(
                        "Adding a User",
                        Field("accountjid", FieldType.JID_SINGLE, "The Jabber ID", required=True),
                        Field("password", FieldType.TEXT_PRIVATE, "The password", required=True),
                        Field("password-verify", FieldType.TEXT_PRIVATE, "Retype password"),
                    )
                ],
                self._add_user,
            ),
            simple(
                f"{NS_ADMIN}#delete-user",
                "Delete User",
                a,
                [_form("Deleting a User", jid_multi)],
                self._delete_user,
            ),
            simple(
                f"{NS_ADMIN}#end-user-session",
                "End User Session",
                a,
                [_form("Ending a User Session", jid_multi)],
                self._end_session,
            ),
            simple(
                f"{NS_ADMIN}#get-online-users-num",
                "Get Number of Online Users",
                a,
                [],
                self._online_num,
            ),
            simple(
                f"{NS_ADMIN}#get-online-users-list",
                "Get List of Online Users",
                a,
                [],
                self._online_list,
            ),
            simple(
                f"{NS_ADMIN}#announce",
                "Send Announcement to Online Users",
                a,
                [
                    _form(
                        "Making an Announcement",
                        Field("subject", FieldType.TEXT_SINGLE, "Subject"),
                        Field("announcement", FieldType.TEXT_MULTI, "Announcement", required=True),
                    )
                ],
                self._announce,
            ),
            simple(
                f"{NS_ADMIN}#change-user-password",
                "Change User Password",
                a,
                [
                    _form(
                        "Changing a User Password",
                        Field("accountjid", FieldType.JID_SINGLE, "The Jabber ID", required=True),
                        Field("password", FieldType.TEXT_PRIVATE, "The password", required=True),
                    )
                ],
                self._change_password,
            ),
            simple(
                f"{NS_ADMIN}#disable-user",
                "Disable User",
                a,
                [_form("Disabling a User", jid_multi)],
                self._disable,
            ),
            simple(
                f"{NS_ADMIN}#reenable-user",
                "Re-Enable User",
                a,
                [_form("Re-Enabling a User", jid_multi)],
                self._reenable,
            ),
            simple(
                f"{NS_ADMIN}#get-user-roster",
                "Get User Roster",
                a,
                [_form("Getting a User's Roster", one_jid)],
                self._roster,
            ),
            simple(
                f"{NS_ADMIN}#get-user-lastlogin",
                "Get User Last Login Time",
                a,
                [_form("Getting a User's Last Login Time", one_jid)],
                self._last_login,
            ),
            simple(
                f"{NS_ADMIN}#get-registered-users-num",
                "Get Number of Registered Users",
                a,
                [],
                self._registered_num,
            ),
            simple(
                f"{NS_ADMIN}#get-registered-users-list",
                "Get List of Registered Users",
                a,
                [],
                self._registered_list,
            ),
            simple(
                f"{NS_ADMIN}#set-motd",
                "Set Message of the Day",
                a,
                [_form("Setting the Message of the Day", motd_field)],
                self._set_motd,
            ),
            _EditMotd(self),
            simple(
                f"{NS_ADMIN}#delete-motd",
                "Delete Message of the Day",
                a,
                [],
                lambda ctx, call: _done(
                    "message of the day deleted", set_motd(call.entity.domain, None)
                ),
            ),
            simple("ping", "Ping", a, [], lambda ctx, call: _done("pong")),
        ]

    def _add_user(self, ctx: Context, call: Call) -> Step:
        form = call.forms[-1]
        account = self._account(form, "accountjid")
        password = form.value("password") or ""
        verify = form.value("password-verify")
        if verify is not None and verify != password:
            raise CommandInputError("password-verify", "the passwords differ")
        if not password:
            raise CommandInputError("password", "a password is required")
        if self.account_exists(account):
            raise CommandInputError("accountjid", f"{account} exists already")
        return _done(f"{account} added", add_account(account, password))

    def _delete_user(self, ctx: Context, call: Call) -> Step:
        accounts = self._existing_many(call.forms[-1], "accountjids")
        deletes = [delete_account(account) for account in accounts]
        return _done(f"deleted {len(accounts)} account(s)", *deletes)

    def _end_session(self, ctx: Context, call: Call) -> Step:
        accounts = self._accounts(call.forms[-1], "accountjids")
        ends = [end_account_sessions(account) for account in accounts]
        return _done(f"ended the sessions of {len(accounts)} account(s)", *ends)

    def _change_password(self, ctx: Context, call: Call) -> Step:
        form = call.forms[-1]
        account = self._existing(form, "accountjid")
        password = form.value("password") or ""
        if not password:
            raise CommandInputError("password", "a password is required")
        return _done(f"password of {account} changed", change_password(account, password))

    def _existing(self, form: Form, var: str) -> JID:
        account = self._account(form, var)
        if not self.account_exists(account):
            raise CommandInputError(var, f"{account} does not exist")
        return account

    def _existing_many(self, form: Form, var: str) -> list[JID]:
        accounts = self._accounts(form, var)
        for account in accounts:
            if not self.account_exists(account):
                raise CommandInputError(var, f"{account} does not exist")
        return accounts

    def _disable(self, ctx: Context, call: Call) -> Step:
        accounts = self._existing_many(call.forms[-1], "accountjids")
        writes = [disable_account(account, True) for account in accounts]
        return _done(f"disabled {len(accounts)} account(s)", *writes)

    def _reenable(self, ctx: Context, call: Call) -> Step:
        accounts = self._existing_many(call.forms[-1], "accountjids")
        writes = [disable_account(account, False) for account in accounts]
        return _done(f"re-enabled {len(accounts)} account(s)", *writes)

    def _roster(self, ctx: Context, call: Call) -> Step:
        account = self._existing(call.forms[-1], "accountjid")
        items = tuple(
            (
                Field("jid", values=(jid,)),
                Field("name", values=(name,)),
                Field("subscription", values=(subscription,)),
            )
            for jid, name, subscription in self.facts.roster(account)
        )
        reported = (
            Field("jid", FieldType.JID_SINGLE, "JID"),
            Field("name", FieldType.TEXT_SINGLE, "Name"),
            Field("subscription", FieldType.TEXT_SINGLE, "Subscription"),
        )
        hidden = Field("FORM_TYPE", FieldType.HIDDEN, values=(NS_ADMIN,))
        fields = (hidden, Field("accountjid", FieldType.JID_SINGLE, values=(str(account),)))
        return Step(Form(FormType.RESULT, fields=fields, reported=reported, items=items))

    def _last_login(self, ctx: Context, call: Call) -> Step:
        account = self._existing(call.forms[-1], "accountjid")
        if any(jid.bare == account for jid in self.online()):
            when = "online now"
        else:
            logout = self.facts.last_logout(account)
            when = "" if logout is None else _utc(logout)
        return _result(
            Field("accountjid", FieldType.JID_SINGLE, values=(str(account),)),
            Field("lastlogin", label="Online now, or when the last session ended", values=(when,)),
        )

    def _registered_num(self, ctx: Context, call: Call) -> Step:
        count = len(self.facts.registered(call.entity.domain))
        return _result(Field("registeredusersnum", values=(str(count),)))

    def _registered_list(self, ctx: Context, call: Call) -> Step:
        users = sorted(str(j) for j in self.facts.registered(call.entity.domain))[:MAX_LISTED]
        return _result(Field("registereduserjids", FieldType.TEXT_MULTI, values=tuple(users)))

    def _set_motd(self, ctx: Context, call: Call) -> Step:
        text = "\n".join(call.forms[-1].values("motd")).strip()
        if not text:
            raise CommandInputError("motd", "the message is empty")
        if len(text) > MAX_TEXT:
            raise CommandInputError("motd", f"longer than {MAX_TEXT} characters")
        return _done("message of the day set", set_motd(call.entity.domain, text))

    def _online_num(self, ctx: Context, call: Call) -> Step:
        count = len({jid.bare for jid in self.online()})
        return _result(Field("onlineusersnum", values=(str(count),)))

    def _online_list(self, ctx: Context, call: Call) -> Step:
        users = sorted({str(jid.bare) for jid in self.online()})
        return _result(Field("onlineuserjids", FieldType.TEXT_MULTI, values=tuple(users)))

    def _announce(self, ctx: Context, call: Call) -> Step:
        form = call.forms[-1]
        text = "\n".join(form.values("announcement")).strip()
        if not text:
            raise CommandInputError("announcement", "the announcement is empty")
        if len(text) > MAX_TEXT:
            raise CommandInputError("announcement", f"longer than {MAX_TEXT} characters")
        domain = str(call.entity)
        routes = [Route(m) for m in announcement(domain, text, sorted(self.online(), key=str))]
        return _done(f"sent to {len(routes)} session(s)", *routes)


class _EditMotd(Command):
    """XEP-0133 §4.25: the set-motd form, filled with the current message."""

    node = f"{NS_ADMIN}#edit-motd"
    name = "Edit Message of the Day"

    def __init__(self, commands: AdminCommands) -> None:
        self.commands = commands

    def allowed(self, requester: JID) -> bool:
        return self.commands.is_admin(requester.bare)

    def run(self, ctx: Context, call: Call) -> Step:
        if call.forms:
            return self.commands._set_motd(ctx, call)
        current = self.commands.motd.get(call.entity.domain, "")
        field = Field(
            "motd",
            FieldType.TEXT_MULTI,
            "Message of the Day",
            required=True,
            values=tuple(current.split("\n")) if current else (),
        )
        return Step(_form("Editing the Message of the Day", field), actions=(Action.COMPLETE,))


def _utc(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def admin_commands(
    is_admin: Callable[[JID], bool],
    online: Callable[[], Collection[JID]],
    account_exists: Callable[[JID], bool],
    domains: Callable[[], Collection[str]],
) -> list[Command]:
    """The XEP-0133 commands (see :class:`AdminCommands`)."""
    return AdminCommands(is_admin, online, account_exists, domains).commands()
