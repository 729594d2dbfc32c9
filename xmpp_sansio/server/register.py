"""In-Band Registration (XEP-0077) for authenticated accounts: password
change and account removal.

Registering a *new* account happens before authentication, on the stream
(XEP-0077 §3.1.1), with the codecs of :mod:`xmpp_sansio.register`; this
service handles what a bound session may do, by XEP-0077 (version 2.4)
section:

* §3.1: an IQ-get of ``<query xmlns='jabber:iq:register'/>`` from a
  registered entity is answered with ``<registered/>``, the username on file
  and an empty ``<password/>``.
* §3.3 User Changes Password: an IQ-set with ``<username/>`` and
  ``<password/>`` (or the equivalent data form) changes the password.
  A missing username or password is a ``bad-request`` ("does not contain
  complete information"; an empty password "MUST NOT" change the password,
  so it is refused the same way), and so is a username that is not the
  sender's own (as Prosody answers); password changes switched off give
  ``not-allowed``; a password PRECIS OpaqueString rejects gives
  ``not-acceptable`` (RFC 6120 §8.3.3.9). Error replies do not carry the
  request's payload ("SHOULD NOT return the original XML").
* §3.2 Entity Cancels an Existing Registration: an IQ-set with only
  ``<remove/>`` deletes the account, answers with an IQ-result, and then, as
  scenario 1 says ("the server SHOULD then return a <not-authorized/>
  stream error and terminate all active sessions for the entity"), ends
  every session of the account with the ``not-authorized`` stream error.
  Removal switched off gives ``not-allowed``, an account that no longer
  exists ``registration-required`` (the table of §3.2).
* §10 Determining Support: the ``jabber:iq:register`` server feature.

Password changes derive new credentials (PBKDF2, slow by design). With
``defer_password_changes`` the service does not call the directory itself:
a valid request becomes a :class:`PasswordChange` the I/O layer takes with
:meth:`RegistrationService.take_password_changes`, carries out off its event
loop (and may rate-limit), and reports with
:meth:`RegistrationService.password_change_finished`, which builds the reply.

The service answers requests with no ``to``, ``to`` the server's domain
(XEP-0077's own examples use both) or ``to`` the sender's bare JID, sent from
a bound session of this router. A request for another account is left to the
router (``service-unavailable``: accounts offer no registration).

After a removal the service returns
:class:`~xmpp_sansio.server.effects.EndSessions` with ``removed``: the router
ends the account's sessions with ``not-authorized``, then calls every
observer of ``AccountRemoved``, so each deletes what it stored for the account
(roster, vCard, private XML...).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar, Protocol
from xml.etree.ElementTree import Element

from ..errors import StanzaErrorCondition, StreamErrorCondition
from ..jid import JID, InvalidJID
from ..register import (
    REGISTER,
    RegistrationError,
    parse_registration,
    registered_response,
    username_to_localpart,
)
from ..sasl.credentials import normalize_password
from ..stanza import Iq, IqType, error_reply, iq_result
from .effects import AccountDelete, EndSessions, Persist, Reply, StoreOp
from .service import Deferred, IqService
from .stages import (
    Context,
)

if TYPE_CHECKING:
    from .effects import Outcome

__all__ = ["AccountDirectory", "MemoryAccountDirectory", "PasswordChange", "RegistrationService"]

_QUERY = f"{{{REGISTER}}}query"


class AccountDirectory(Protocol):
    """The account database, as far as :class:`RegistrationService` needs it.

    ``local`` and ``domain`` are normalised (from a JID). Every method is
    durable when it returns; creating accounts is outside this contract.
    :class:`RegistrationService` removes accounts only through :meth:`apply`
    (its ``Persist`` effects).

    The contract a backend implements; ``tests/test_store_contract.py`` checks it
    for every backend.
    """

    def change_password(self, local: str, domain: str, password: str) -> None:
        """Replace the password of ``local@domain``.

        Raise :class:`LookupError` if there is no such account and
        :class:`ValueError` if the password is not acceptable.
        """
        ...

    def delete(self, local: str, domain: str) -> None:
        """Delete the account ``local@domain``; raise :class:`LookupError` if
        there is no such account."""
        ...

    def apply(self, ops: Sequence[StoreOp]) -> None:
        """Carry out ``ops`` (:class:`AccountDelete`: one that is gone already
        is no error) in order, all or nothing."""
        ...


class MemoryAccountDirectory:
    """:class:`AccountDirectory` in memory (tests, the store contract suite):
    passwords in clear by ``(local, domain)``; an empty password is refused,
    as the SQLite account store refuses it."""

    def __init__(self) -> None:
        self.passwords: dict[tuple[str, str], str] = {}

    def create(self, local: str, domain: str, password: str) -> None:
        """Add an account (not part of the protocol: accounts are created
        outside the services)."""
        self.passwords[(local, domain)] = password

    def change_password(self, local: str, domain: str, password: str) -> None:
        if (local, domain) not in self.passwords:
            raise LookupError(f"{local}@{domain}")
        if not password:
            raise ValueError("the password must not be empty")
        self.passwords[(local, domain)] = password

    def delete(self, local: str, domain: str) -> None:
        if self.passwords.pop((local, domain), None) is None:
            raise LookupError(f"{local}@{domain}")

    def apply(self, ops: Sequence[StoreOp]) -> None:
        passwords = dict(self.passwords)
        for op in ops:
            if not isinstance(op, AccountDelete) or op.account.local is None:
                raise TypeError(f"not an account op: {op!r}")
            passwords.pop((op.account.local, op.account.domain), None)
        self.passwords = passwords


@dataclass(frozen=True, slots=True)
class PasswordChange:
    """A valid password change (XEP-0077 §3.3) waiting for the I/O layer.

    ``account`` is the bare JID, ``password`` PRECIS-valid; ``request`` is the
    IQ to answer through :meth:`RegistrationService.password_change_finished`.
    """

    account: JID
    password: str = field(repr=False)
    request: Element = field(repr=False)


class RegistrationService(IqService):
    """XEP-0077 password change and account removal (see the module docstring)."""

    server_features: ClassVar[tuple[str, ...]] = (REGISTER,)

    def __init__(
        self,
        accounts: AccountDirectory,
        *,
        allow_password_change: bool = True,
        allow_removal: bool = True,
        instructions: str | None = None,
        defer_password_changes: bool = False,
    ) -> None:
        self.accounts = accounts
        self.defer_password_changes = defer_password_changes
        self._password_changes: list[PasswordChange] = []
        #: Set when a password change is deferred (shared with the ad-hoc service).
        self.deferred = Deferred()
        self.allow_password_change = allow_password_change
        self.allow_removal = allow_removal
        #: The ``<instructions/>`` of the answer to an IQ-get (§3.1), if any.
        self.instructions = instructions

    def handle_iq(self, ctx: Context, iq: Iq, to: JID | None) -> list[Outcome] | None:
        query = iq.payload
        if query is None or query.tag != _QUERY or not iq.is_request:
            return None
        sender = iq.from_
        if sender is None or self.server.session_by_jid(sender) is None:
            return None  # not from a local session: no registration service here
        if sender.local is None or (to is not None and to != sender.bare):
            return None  # another account (or a session without an account)
        if iq.type is IqType.GET:
            return [
                Reply(iq_result(iq.element, registered_response(sender.local, self.instructions)))
            ]
        try:
            request = parse_registration(query)
        except RegistrationError as exc:
            return self._error(iq, exc.condition, exc.text)
        if request.remove:
            return self._remove(iq, sender.bare)
        return self._change_password(iq, sender.bare, request.username, request.password)

    def take_password_changes(self) -> list[PasswordChange]:
        """The deferred password changes not handed out yet (oldest first)."""
        changes, self._password_changes = self._password_changes, []
        return changes

    def password_change_finished(
        self, change: PasswordChange, error: StanzaErrorCondition | None = None
    ) -> list[Outcome]:
        """The reply to a deferred password change: a result, or ``error``
        (``registration-required`` for a vanished account, ``not-acceptable``
        for a refused password, ``resource-constraint`` when rate-limited)."""
        if error is None:
            return self._password_changed(change.request, change.account)
        return [Reply(error_reply(change.request, error))]

    def _password_changed(self, request: Element, account: JID) -> list[Outcome]:
        """Answer a done password change, then end the account's other
        sessions with ``reset`` (RFC 6120 §4.9.3.16: the credentials they were
        opened with are no longer valid; they log in again)."""
        try:
            requester = self.server.session_by_jid(JID.parse(request.get("from", "")))
        except InvalidJID:
            requester = None
        return [
            Reply(iq_result(request)),
            EndSessions(
                account.bare,
                StreamErrorCondition.RESET,
                keep=None if requester is None else requester.id,
            ),
        ]

    # ------------------------------------------------------------------

    def _change_password(
        self, iq: Iq, account: JID, username: str | None, password: str | None
    ) -> list[Outcome]:
        """XEP-0077 §3.3."""
        if not self.allow_password_change:
            return self._error(iq, StanzaErrorCondition.NOT_ALLOWED, "password changes are off")
        if username is None or password is None:
            return self._error(
                iq, StanzaErrorCondition.BAD_REQUEST, "both <username/> and <password/> are needed"
            )
        assert account.local is not None
        try:
            local = username_to_localpart(username, account.domain)
        except RegistrationError:
            local = None
        if local != account.local:
            return self._error(
                iq, StanzaErrorCondition.BAD_REQUEST, "the username is not the account's"
            )
        try:
            normalize_password(password)
            if self.defer_password_changes:
                self._password_changes.append(PasswordChange(account, password, iq.element))
                self.deferred.pending = True
                return []
            self.accounts.change_password(account.local, account.domain, password)
        except LookupError:
            return self._error(iq, StanzaErrorCondition.REGISTRATION_REQUIRED)
        except ValueError as exc:
            return self._error(iq, StanzaErrorCondition.NOT_ACCEPTABLE, str(exc))
        return self._password_changed(iq.element, account)

    def _remove(self, iq: Iq, account: JID) -> list[Outcome]:
        """XEP-0077 §3.2: delete, answer, then end every session of the account."""
        if not self.allow_removal:
            return self._error(iq, StanzaErrorCondition.NOT_ALLOWED, "account removal is off")
        if not self.server.account_exists(account):
            return self._error(iq, StanzaErrorCondition.REGISTRATION_REQUIRED)
        # Once the removal is committed: answer, then end every session of
        # the account (not-authorized, as §3.2 says for a removed account)
        # and let each service forget it (their writes: the next commit).
        return [
            Persist(
                AccountDelete(account.bare),
                iq.element,
                (
                    Reply(iq_result(iq.element)),
                    EndSessions(account.bare, StreamErrorCondition.NOT_AUTHORIZED, removed=True),
                ),
            )
        ]

    def _error(
        self, iq: Iq, condition: StanzaErrorCondition, text: str | None = None
    ) -> list[Outcome]:
        return [Reply(error_reply(iq.element, condition, text=text))]
