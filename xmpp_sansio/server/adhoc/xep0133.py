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
from typing import Final

from ...errors import StreamErrorCondition
from ...forms import Field, FieldType, Form, FormType
from ...jid import JID, InvalidJID
from ..admin import KICK_CONDITION, MAX_TEXT, announcement
from ..effects import AccountCreate, AccountDelete, EndSessions, Outcome, Persist, Route
from ..stages import Context
from .engine import Call, Command, CommandInputError, Note, Step, simple

__all__ = ["NS_ADMIN", "admin_commands"]

NS_ADMIN: Final = "http://jabber.org/protocol/admin"
#: The most accounts one delete or end-session command takes.
MAX_ACCOUNTS: Final = 100


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
    ) -> None:
        self.is_admin = is_admin
        self.online = online
        self.account_exists = account_exists
        self.domains = domains

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
        return _done(f"{account} added", Persist(AccountCreate(account, password)))

    def _delete_user(self, ctx: Context, call: Call) -> Step:
        accounts = self._accounts(call.forms[-1], "accountjids")
        outcomes: list[Outcome] = []
        for account in accounts:
            if not self.account_exists(account):
                raise CommandInputError("accountjids", f"{account} does not exist")
            # As XEP-0077 §3.2 removal: delete, then end the sessions (not-authorized).
            outcomes.append(
                Persist(
                    AccountDelete(account),
                    None,
                    (EndSessions(account, StreamErrorCondition.NOT_AUTHORIZED, removed=True),),
                )
            )
        return _done(f"deleted {len(accounts)} account(s)", *outcomes)

    def _end_session(self, ctx: Context, call: Call) -> Step:
        accounts = self._accounts(call.forms[-1], "accountjids")
        ends = [EndSessions(account, KICK_CONDITION) for account in accounts]
        return _done(f"ended the sessions of {len(accounts)} account(s)", *ends)

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


def admin_commands(
    is_admin: Callable[[JID], bool],
    online: Callable[[], Collection[JID]],
    account_exists: Callable[[JID], bool],
    domains: Callable[[], Collection[str]],
) -> list[Command]:
    """The XEP-0133 commands (see :class:`AdminCommands`)."""
    return AdminCommands(is_admin, online, account_exists, domains).commands()
