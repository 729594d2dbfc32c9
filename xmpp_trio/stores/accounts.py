"""The :class:`~xmpp_sansio.server.register.AccountDirectory` of XEP-0077
password changes and account removal, over the SQLite
:class:`~xmpp_trio.storage.AccountStore`.

Deleting an account here deletes its row and its SCRAM credentials only; the
data other stores keep for it (roster, vCard, private XML, offline messages)
is removed by the services' ``account_removed`` hooks, not by this adapter.
"""

from __future__ import annotations

from collections.abc import Sequence

from xmpp_sansio.server.effects import AccountDelete, StoreOp
from xmpp_trio.storage import AccountNotFound, AccountStore

__all__ = ["AccountDirectoryAdapter"]


class AccountDirectoryAdapter:
    """``AccountDirectory`` over an :class:`AccountStore`.

    New passwords get fresh salts and ``iterations`` PBKDF2 rounds for every
    SCRAM hash. That derivation runs synchronously in :meth:`change_password`
    (i.e. in the caller's thread, within the router call).
    """

    def __init__(self, store: AccountStore, iterations: int) -> None:
        if iterations < 1:
            raise ValueError("iterations must be positive")
        self._store = store
        self._iterations = iterations

    def change_password(self, local: str, domain: str, password: str) -> None:
        """Replace the password; LookupError if there is no such account,
        ValueError for an invalid password."""
        try:
            self._store.set_password(local, domain, password, iterations=self._iterations)
        except AccountNotFound as exc:
            raise LookupError(str(exc)) from exc

    def delete(self, local: str, domain: str) -> None:
        """Delete the account; LookupError if there is no such account."""
        try:
            self._store.delete(local, domain)
        except AccountNotFound as exc:
            raise LookupError(str(exc)) from exc

    def apply(self, ops: Sequence[StoreOp]) -> None:
        """Carry out ``ops`` (:class:`AccountDelete`) in one transaction of the
        account store (the server commits them with the other stores' ops:
        ``ServerServices.commit``)."""
        accounts: list[tuple[str, str]] = []
        for op in ops:
            if not isinstance(op, AccountDelete):
                raise TypeError(f"not an account op: {op!r}")
            accounts.append((op.account.local or "", op.account.domain))
        self._store.delete_many(accounts)
