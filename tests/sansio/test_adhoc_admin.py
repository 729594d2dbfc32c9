"""The XEP-0133 commands that read or write the stores, sans-IO: change
password, disable / re-enable, roster, last login, registered users, and the
message of the day (set, edit, delete, sent at login)."""

from __future__ import annotations

from collections.abc import Sequence
from xml.etree.ElementTree import Element, tostring

from xmpp_sansio.errors import StreamErrorCondition
from xmpp_sansio.forms import NS_DATA, Field, FieldType, Form, FormType, build_form, parse_form
from xmpp_sansio.jid import JID
from xmpp_sansio.sasl.credentials import ScramCredentials
from xmpp_sansio.server import Deliver, Effect, Router
from xmpp_sansio.server.adhoc import (
    NS_ADMIN,
    NS_COMMANDS,
    AdhocEngine,
    AdhocService,
    AdminCommands,
)
from xmpp_sansio.server.disco import DiscoService
from xmpp_sansio.server.echo import EchoService
from xmpp_sansio.server.effects import (
    AccountCreate,
    AccountDisable,
    AccountPassword,
    Disconnect,
    MotdSet,
    Persist,
)
from xmpp_sansio.testing import seeded_rng, x

ADMIN, USER = 1, 2
C = f"{{{NS_COMMANDS}}}"
ACCOUNTS = ("admin", "juliet", "romeo")


class Facts:
    def registered(self, domain: str) -> list[JID]:
        return [JID(local, domain, None) for local in ACCOUNTS]

    def last_logout(self, account: JID) -> float | None:
        return 1_000_000_000.0 if account.local == "romeo" else None

    def roster(self, account: JID) -> list[tuple[str, str, str]]:
        return [("romeo@example.com", "Romeo", "both")]


class World:
    def __init__(self, motd: dict[str, str] | None = None, *, defer: bool = False) -> None:
        holder: list[AdhocService] = []
        self.admin = AdminCommands(
            lambda jid: str(jid) == "admin@example.com",
            lambda: holder[0].online,
            lambda jid: jid.local in ACCOUNTS,
            lambda: {"example.com"},
            Facts(),
            motd,
        )
        holder.append(
            AdhocService(AdhocEngine(self.admin.commands()), self.admin, defer_derivations=defer)
        )
        self.service = holder[0]
        self.router = Router(
            ["example.com"],
            rng=seeded_rng(3),
            account_exists=lambda local, domain: local in ACCOUNTS,
            services=[*holder, DiscoService()],
            hosts={"echo.example.com": EchoService()},
            clock=lambda: 2000.0,
        )
        self.router.bind(ADMIN, JID.parse("admin@example.com/desk"))
        self.router.bind(USER, JID.parse("juliet@example.com/balcony"))

    def run(self, node: str, **values: str | tuple[str, ...]) -> list[Effect]:
        """Execute ``node``; submit ``values`` if it asks for a form."""
        first = self._send(Element(f"{C}command", {"node": f"{NS_ADMIN}#{node}"}))
        if any(isinstance(e, Persist) for e in first):
            return first  # completed at once, its answer held until the write
        command = reply_of(first).find(f"{C}command")
        if command is None or command.get("status") != "executing":
            return first
        fields = [Field("FORM_TYPE", FieldType.HIDDEN, values=(NS_ADMIN,))]
        for var, v in values.items():
            fields.append(Field(var, values=v if isinstance(v, tuple) else (v,)))
        el = Element(
            f"{C}command",
            {"node": f"{NS_ADMIN}#{node}", "sessionid": command.get("sessionid") or ""},
        )
        el.append(build_form(Form(FormType.SUBMIT, fields=tuple(fields))))
        return self._send(el)

    def _send(self, command: Element) -> list[Effect]:
        iq = x(f"<iq type='set' id='a1' to='example.com'>{tostring(command).decode()}</iq>")
        return self.router.route(ADMIN, iq)


def reply_of(effects: Sequence[Effect], session: int = ADMIN) -> Element:
    mine = [
        e
        for e in effects
        if isinstance(e, Deliver) and e.session == session and e.element.tag.endswith("iq")
    ]
    assert len(mine) == 1, effects
    return mine[0].element


def result_form(effects: Sequence[Effect]) -> Form:
    x_el = reply_of(effects).find(f"{C}command/{{{NS_DATA}}}x")
    assert x_el is not None
    return parse_form(x_el)


def committed(w: World, effects: list[Effect]) -> list[Effect]:
    persists = [e for e in effects if isinstance(e, Persist)]
    assert persists, effects
    return w.router.persisted(persists)


def test_change_password_writes_the_new_password() -> None:
    w = World()
    effects = w.run("change-user-password", accountjid="juliet@example.com", password="n3w")
    assert [e.op for e in effects if isinstance(e, Persist)] == [
        AccountPassword(JID.parse("juliet@example.com"), "n3w")
    ]
    bad = w.run("change-user-password", accountjid="nobody@example.com", password="n3w")
    error = reply_of(bad)
    assert error.get("type") == "error" and "accountjid" in tostring(error).decode()


CREDS = (
    ScramCredentials(
        hash_name="sha256",
        salt=b"s" * 16,
        iterations=4096,
        stored_key=b"k" * 32,
        server_key=b"v" * 32,
    ),
)


def test_deferred_add_user_holds_its_write_and_answer_until_the_credentials_are_derived() -> None:
    w = World(defer=True)
    effects = w.run(
        "add-user", accountjid="nurse@example.com", password="pw", **{"password-verify": "pw"}
    )
    assert not effects  # nothing written, nothing answered yet
    assert w.service.derivations_pending
    assert w.service.deferred.pending  # what tells the I/O layer to take it
    (held,) = w.service.take_derivations()
    assert held.op == AccountCreate(JID.parse("nurse@example.com"), "pw")
    assert not w.service.derivations_pending and w.service.take_derivations() == []
    effects = w.router.drain(w.service.derived(held, CREDS))
    (write,) = [e for e in effects if isinstance(e, Persist)]
    assert write.op == AccountCreate(JID.parse("nurse@example.com"), "pw", CREDS)
    assert write.op.credentials == CREDS
    assert not [e for e in effects if isinstance(e, Deliver)]  # the answer follows the commit
    assert reply_of(committed(w, effects)).get("type") == "result"
    # An invalid password (PRECIS) found while deriving: not-acceptable.
    w.run("change-user-password", accountjid="juliet@example.com", password="x")
    (held,) = w.service.take_derivations()
    refused = reply_of(w.router.drain(w.service.derived(held, None)))
    assert refused.get("type") == "error" and "not-acceptable" in tostring(refused).decode()


def test_disable_ends_the_sessions_after_the_write_and_reenable_undoes_it() -> None:
    w = World()
    effects = w.run("disable-user", accountjids=("juliet@example.com",))
    assert [e.op for e in effects if isinstance(e, Persist)] == [
        AccountDisable(JID.parse("juliet@example.com"), True)
    ]
    after = committed(w, effects)
    assert [(e.session, e.condition) for e in after if isinstance(e, Disconnect)] == [
        (USER, StreamErrorCondition.NOT_AUTHORIZED)
    ]
    effects = w.run("reenable-user", accountjids=("juliet@example.com",))
    assert [e.op for e in effects if isinstance(e, Persist)] == [
        AccountDisable(JID.parse("juliet@example.com"), False)
    ]


def test_roster_last_login_and_registered_users() -> None:
    w = World()
    roster = result_form(w.run("get-user-roster", accountjid="juliet@example.com"))
    assert [dict((f.var, f.value) for f in item) for item in roster.items] == [
        {"jid": "romeo@example.com", "name": "Romeo", "subscription": "both"}
    ]
    last = result_form(w.run("get-user-lastlogin", accountjid="romeo@example.com"))
    assert last.value("lastlogin") == "2001-09-09T01:46:40Z"
    online = result_form(w.run("get-user-lastlogin", accountjid="juliet@example.com"))
    assert online.value("lastlogin") == "online now"
    assert result_form(w.run("get-registered-users-num")).value("registeredusersnum") == "3"
    assert result_form(w.run("get-registered-users-list")).values("registereduserjids") == (
        "admin@example.com",
        "juliet@example.com",
        "romeo@example.com",
    )


def test_motd_set_then_sent_at_login_edit_shows_it_delete_forgets_it() -> None:
    w = World()
    effects = w.run("set-motd", motd="Masks tonight")
    assert [e.op for e in effects if isinstance(e, Persist)] == [
        MotdSet("example.com", "Masks tonight")
    ]
    committed(w, effects)
    bound = w.router.bind(3, JID.parse("romeo@example.com/garden"))
    [headline] = [e for e in bound if isinstance(e, Deliver) and e.session == 3]
    assert headline.element.get("type") == "headline"
    assert headline.element.findtext("{jabber:client}body") == "Masks tonight"
    # edit-motd's form holds the current text.
    first = w._send(Element(f"{C}command", {"node": f"{NS_ADMIN}#edit-motd"}))
    form = parse_form(reply_of(first).find(f"{C}command/{{{NS_DATA}}}x"))  # type: ignore[arg-type]
    assert form.values("motd") == ("Masks tonight",)
    committed(w, w.run("delete-motd"))
    assert [
        e for e in w.router.bind(4, JID.parse("romeo@example.com/hall")) if isinstance(e, Deliver)
    ] == []


def test_motd_refuses_an_empty_message() -> None:
    w = World()
    reply = reply_of(w.run("set-motd", motd="  "))
    assert reply.get("type") == "error" and "motd" in tostring(reply).decode()


def test_a_stored_motd_is_sent_from_the_start() -> None:
    w = World({"example.com": "Welcome"})
    bound = w.router.bind(3, JID.parse("romeo@example.com/garden"))
    assert [e.element.findtext("{jabber:client}body") for e in bound if isinstance(e, Deliver)] == [
        "Welcome"
    ]


def disco_items(
    w: World, session: int, node: str | None = None
) -> list[tuple[str, str | None, str | None]]:
    attr = "" if node is None else f" node='{node}'"
    iq = x(
        f"<iq type='get' id='d1' to='example.com'>"
        f"<query xmlns='http://jabber.org/protocol/disco#items'{attr}/></iq>"
    )
    answer = reply_of(w.router.route(session, iq), session)
    if answer.get("type") == "error":
        return [("error", None, None)]
    query = answer[0]
    return [(i.get("jid") or "", i.get("node"), i.get("name")) for i in query]


def test_an_admin_sees_the_seed_nodes_on_the_servers_disco_items() -> None:
    w = World()
    assert disco_items(w, ADMIN) == [
        ("echo.example.com", None, "Echo"),
        ("example.com", "announce", "Announcements"),
        ("example.com", "config", "Configuration"),
        ("example.com", "user", "User Management"),
        ("example.com", "online users", "Online Users"),
        ("example.com", "all users", "All Users"),
    ]
    assert disco_items(w, USER) == [("echo.example.com", None, "Echo")]  # as before
    assert disco_items(w, USER, "user") == [("error", None, None)]
    assert ("example.com", f"{NS_ADMIN}#add-user", None) in disco_items(w, ADMIN, "user")
    assert disco_items(w, ADMIN, "announce")[0] == ("example.com", f"{NS_ADMIN}#announce", None)
    assert disco_items(w, ADMIN, "online users") == [
        ("admin@example.com", None, None),
        ("juliet@example.com", None, None),
    ]
    assert [jid for jid, _, _ in disco_items(w, ADMIN, "all users")] == [
        "admin@example.com",
        "juliet@example.com",
        "romeo@example.com",
    ]
