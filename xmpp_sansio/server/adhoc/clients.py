"""A user's ad-hoc command (XEP-0050) to see and revoke their own SASL2
clients (XEP-0388 §2.3 user agents) and the FAST tokens they hold
(XEP-0484): node ``urn:xmpp:sasl:2#clients`` on the server's JID. The
first stage lists the requester's clients as a list-multi (id, software,
device); the ones chosen are revoked by a ``Persist`` of
:class:`~..effects.ClientRevoke`, answered once committed, and their live
sessions then end with the stream error ``not-authorized`` (RFC 6120
§4.9.3.12: the credentials they logged in with, a XEP-0484 token among them,
are no longer valid), as ``xmpp-trio revoke`` ends them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

from ...errors import StreamErrorCondition
from ...forms import Field, FieldType, Form, FormType, Option
from ...jid import JID
from ..effects import ClientRevoke, Disconnect, Persist, SessionId
from ..stages import Context
from .engine import Action, Call, Command, CommandInputError, Note, Step

__all__ = ["CLIENTS_NODE", "ClientInfo", "clients_command"]

CLIENTS_NODE: Final = "urn:xmpp:sasl:2#clients"
#: The stream error that ends a revoked client's sessions (as the CLI's).
_REVOKED: Final = StreamErrorCondition.NOT_AUTHORIZED


@dataclass(frozen=True, slots=True)
class ClientInfo:
    """One client of an account, as the command shows it."""

    id: str
    software: str | None
    device: str | None


def clients_command(
    clients_of: Callable[[JID], Sequence[ClientInfo]],
    is_local: Callable[[JID], bool],
    sessions_of: Callable[[JID, str], Sequence[SessionId]] = lambda account, client: (),
) -> Command:
    """The command; ``clients_of(account)`` reads the account's clients,
    ``is_local(jid)`` tells this server's users, ``sessions_of(account,
    client_id)`` the live sessions that client has open. Only a local user
    with SASL2 clients sees and may run it (XEP-0050 §4.4)."""

    class _Clients(Command):
        node = CLIENTS_NODE
        name = "Manage my clients"

        def allowed(self, requester: JID) -> bool:
            # Listed to the local users who have SASL2 clients to manage.
            account = requester.bare
            return requester.local is not None and is_local(account) and bool(clients_of(account))

        def run(self, ctx: Context, call: Call) -> Step:
            account = call.requester.bare
            known = {c.id: c for c in clients_of(account)}
            if not call.forms:
                options = tuple(
                    Option(c.id, f"{c.software or 'unknown software'} ({c.device or '-'}) {c.id}")
                    for c in known.values()
                )
                form = Form(
                    FormType.FORM,
                    title="Your clients",
                    instructions=("Choose the clients to revoke: they must log in again.",),
                    fields=(Field("revoke", FieldType.LIST_MULTI, "Revoke", options=options),),
                )
                return Step(form, actions=(Action.COMPLETE,))
            chosen = call.forms[-1].values("revoke")
            unknown = [c for c in chosen if c not in known]
            if unknown:
                raise CommandInputError("revoke", f"no such client: {unknown[0]}")
            if not chosen:
                return Step(notes=(Note("nothing revoked"),))
            ops = tuple(
                Persist(
                    ClientRevoke(account, c),
                    then=tuple(Disconnect(sid, _REVOKED) for sid in sessions_of(account, c)),
                )
                for c in chosen
            )
            return Step(notes=(Note(f"revoked {len(chosen)} clients"),), outcomes=ops)

    return _Clients()
