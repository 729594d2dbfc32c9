"""The user's ad-hoc command ``urn:xmpp:sasl:2#clients`` (XEP-0050), sans
I/O: listed only to local users with SASL2 clients, it offers their own
clients and revokes the chosen ones with ``Persist(ClientRevoke)``; another
account's client id is refused, and nothing chosen writes nothing."""

from __future__ import annotations

import pytest

from xmpp_sansio.errors import StreamErrorCondition
from xmpp_sansio.forms import Field, Form, FormType
from xmpp_sansio.jid import JID
from xmpp_sansio.server.adhoc import Call, CommandInputError
from xmpp_sansio.server.adhoc.clients import ClientInfo, clients_command
from xmpp_sansio.server.effects import ClientRevoke, Disconnect, Persist
from xmpp_sansio.server.stages import Context

JULIET = JID.parse("juliet@capulet.example/balcony")
ROMEO = JID.parse("romeo@montague.example/orchard")
CLIENTS = {
    JULIET.bare: [ClientInfo("d4565fa7-4d72-4749-b3d3-740edbf87770", "AwesomeXMPP", "phone")],
    JID.parse("nurse@capulet.example"): [
        ClientInfo("aaaaaaaa-0000-4000-8000-000000000000", None, None)
    ],
}
COMMAND = clients_command(
    lambda jid: CLIENTS.get(jid, []), lambda jid: jid.domain == "capulet.example"
)
CTX = Context(0.0, bytes)


def submit(*ids: str) -> Form:
    return Form(FormType.SUBMIT, fields=(Field("revoke", values=ids),))


def test_only_local_users_with_clients_see_it() -> None:
    assert COMMAND.allowed(JULIET)
    assert not COMMAND.allowed(ROMEO)  # not a local user
    assert not COMMAND.allowed(JID.parse("tybalt@capulet.example/x"))  # no SASL2 client


def test_the_form_lists_the_requesters_own_clients_and_revokes_the_chosen() -> None:
    first = COMMAND.run(CTX, Call(JULIET, JID.parse("capulet.example"), ()))
    assert first.form is not None and not first.completed
    field = first.form.field("revoke")
    assert field is not None
    assert [o.value for o in field.options] == ["d4565fa7-4d72-4749-b3d3-740edbf87770"]
    done = COMMAND.run(
        CTX,
        Call(
            JULIET, JID.parse("capulet.example"), (submit("d4565fa7-4d72-4749-b3d3-740edbf87770"),)
        ),
    )
    assert done.completed
    assert done.outcomes == (
        Persist(ClientRevoke(JULIET.bare, "d4565fa7-4d72-4749-b3d3-740edbf87770")),
    )
    nothing = COMMAND.run(CTX, Call(JULIET, JID.parse("capulet.example"), (submit(),)))
    assert nothing.outcomes == ()


def test_another_accounts_client_is_refused() -> None:
    with pytest.raises(CommandInputError, match="no such client"):
        COMMAND.run(
            CTX,
            Call(
                JULIET,
                JID.parse("capulet.example"),
                (submit("aaaaaaaa-0000-4000-8000-000000000000"),),
            ),
        )


def test_the_revoked_clients_live_sessions_end_with_not_authorized_after_the_write() -> None:
    agent = "d4565fa7-4d72-4749-b3d3-740edbf87770"
    live = {(JULIET.bare, agent): [7, 9]}
    command = clients_command(
        lambda jid: CLIENTS.get(jid, []),
        lambda jid: jid.domain == "capulet.example",
        lambda account, client: live.get((account, client), []),
    )
    done = command.run(CTX, Call(JULIET, JID.parse("capulet.example"), (submit(agent),)))
    ended = tuple(Disconnect(s, StreamErrorCondition.NOT_AUTHORIZED) for s in (7, 9))
    assert done.outcomes == (Persist(ClientRevoke(JULIET.bare, agent), then=ended),)
