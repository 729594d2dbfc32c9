"""Ad-hoc commands (XEP-0050) and the XEP-0133 commands on the router, sans-IO:
what the requester sees on the wire for each action and each bad input."""

from __future__ import annotations

from collections.abc import Sequence
from xml.etree.ElementTree import Element, tostring

from hypothesis import given, settings
from hypothesis import strategies as st

from xmpp_sansio.disco import parse_disco_info, parse_disco_items
from xmpp_sansio.errors import StreamErrorCondition
from xmpp_sansio.forms import NS_DATA, Field, FieldType, Form, FormType, build_form, parse_form
from xmpp_sansio.jid import JID
from xmpp_sansio.server import Deliver, Effect, Router
from xmpp_sansio.server.adhoc import (
    NS_ADMIN,
    NS_COMMANDS,
    AdhocEngine,
    AdhocService,
    admin_commands,
)
from xmpp_sansio.server.effects import AccountCreate, AccountDelete, Disconnect, Persist
from xmpp_sansio.testing import seeded_rng, x

ADMIN, USER, OTHER = 1, 2, 3
C = f"{{{NS_COMMANDS}}}"
ACCOUNTS = {"admin", "juliet", "romeo"}


class World:
    def __init__(self, lifetime: float = 600.0) -> None:
        self.now = 1000.0
        holder: list[AdhocService] = []
        commands = admin_commands(
            lambda jid: str(jid) == "admin@example.com",
            lambda: holder[0].online,
            lambda jid: jid.local in ACCOUNTS,
            lambda: {"example.com"},
        )
        self.service = AdhocService(AdhocEngine(commands, session_lifetime=lifetime))
        holder.append(self.service)
        self.router = Router(
            ["example.com"],
            rng=seeded_rng(1),
            account_exists=lambda local, domain: local in ACCOUNTS,
            services=[self.service],
            clock=lambda: self.now,
        )
        self.router.bind(ADMIN, JID.parse("admin@example.com/desk"))
        self.router.bind(USER, JID.parse("juliet@example.com/balcony"))
        self.router.bind(OTHER, JID.parse("romeo@example.com/garden"))

    def send(self, session: int, body: str, type_: str = "set") -> list[Effect]:
        return self.router.route(
            session, x(f"<iq type='{type_}' id='c1' to='example.com'>{body}</iq>")
        )

    def command(
        self,
        session: int,
        node: str,
        action: str | None = None,
        sid: str | None = None,
        form: Form | None = None,
    ) -> Element:
        el = Element(f"{C}command", {"node": node})
        if action is not None:
            el.set("action", action)
        if sid is not None:
            el.set("sessionid", sid)
        if form is not None:
            el.append(build_form(form))
        return reply_of(self.send(session, tostring(el).decode()), session)


def reply_of(effects: Sequence[Effect], session: int) -> Element:
    mine = [e for e in effects if isinstance(e, Deliver) and e.session == session]
    assert len(mine) == 1, effects
    return mine[0].element


def condition(reply: Element) -> tuple[str, ...]:
    assert reply.get("type") == "error", reply
    error = reply.find("{jabber:client}error")
    assert error is not None
    return tuple(child.tag.rpartition("}")[2] for child in error if not child.tag.endswith("text"))


def text_of(reply: Element) -> str:
    t = reply.find("{jabber:client}error/{urn:ietf:params:xml:ns:xmpp-stanzas}text")
    return "" if t is None else t.text or ""


def submit(**values: str | tuple[str, ...]) -> Form:
    fields = [Field("FORM_TYPE", FieldType.HIDDEN, values=(NS_ADMIN,))]
    for var, v in values.items():
        fields.append(Field(var.replace("_", "-"), values=v if isinstance(v, tuple) else (v,)))
    return Form(FormType.SUBMIT, fields=tuple(fields))


def test_commands_listed_for_an_admin_only() -> None:
    w = World()
    query = f"<query xmlns='http://jabber.org/protocol/disco#items' node='{NS_COMMANDS}'/>"
    items = parse_disco_items(reply_of(w.send(ADMIN, query, "get"), ADMIN)[0])
    nodes = [i.node for i in items.items]
    assert f"{NS_ADMIN}#announce" in nodes and f"{NS_ADMIN}#add-user" in nodes and "ping" in nodes
    assert parse_disco_items(reply_of(w.send(USER, query, "get"), USER)[0]).items == ()


def test_command_node_disco_info_and_server_feature() -> None:
    w = World()
    node = f"{NS_ADMIN}#announce"
    q = f"<query xmlns='http://jabber.org/protocol/disco#info' node='{node}'/>"
    info = parse_disco_info(reply_of(w.send(ADMIN, q, "get"), ADMIN)[0])
    assert info.node == node and NS_COMMANDS in info.features and NS_DATA in info.features
    assert info.identities[0].type == "command-node"
    assert condition(reply_of(w.send(USER, q, "get"), USER)) == ("forbidden",)
    assert NS_COMMANDS in w.router.server_features()


def test_single_stage_ping_completes_at_once() -> None:
    w = World()
    reply = w.command(ADMIN, "ping")
    command = reply.find(f"{C}command")
    assert command is not None and command.get("status") == "completed"
    note = command.find(f"{C}note")
    assert note is not None and note.text == "pong"


def test_non_admin_is_forbidden_and_unknown_node_not_found() -> None:
    w = World()
    for node in ("ping", f"{NS_ADMIN}#add-user", f"{NS_ADMIN}#get-online-users-list"):
        assert condition(w.command(USER, node)) == ("forbidden",)
    assert condition(w.command(ADMIN, "no-such-node")) == ("item-not-found",)


def test_online_users_list_and_count() -> None:
    w = World()
    reply = w.command(ADMIN, f"{NS_ADMIN}#get-online-users-list")
    command = reply.find(f"{C}command")
    assert command is not None and command.get("status") == "completed"
    form = parse_form(command.find(f"{{{NS_DATA}}}x"))  # type: ignore[arg-type]
    assert form.values("onlineuserjids") == (
        "admin@example.com",
        "juliet@example.com",
        "romeo@example.com",
    )
    w.router.unbind(OTHER)
    reply = w.command(ADMIN, f"{NS_ADMIN}#get-online-users-num")
    form = parse_form(reply.find(f"{C}command/{{{NS_DATA}}}x"))  # type: ignore[arg-type]
    assert form.value("onlineusersnum") == "2"


def test_announce_two_stages_reaches_every_online_session() -> None:
    w = World()
    first = w.command(ADMIN, f"{NS_ADMIN}#announce").find(f"{C}command")
    assert first is not None and first.get("status") == "executing"
    actions = first.find(f"{C}actions")
    assert actions is not None and actions.get("execute") == "complete"
    sid = first.get("sessionid")
    el = Element(
        f"{C}command",
        {"node": f"{NS_ADMIN}#announce", "sessionid": sid or "", "action": "complete"},
    )
    el.append(build_form(submit(announcement="the feast is tonight")))
    effects = w.send(ADMIN, tostring(el).decode())
    headlines = {
        e.session: e.element
        for e in effects
        if isinstance(e, Deliver) and e.element.tag.endswith("message")
    }
    assert set(headlines) == {ADMIN, USER, OTHER}
    assert all(
        m.get("type") == "headline" and m.get("from") == "example.com" for m in headlines.values()
    )
    body = headlines[USER].find("{jabber:client}body")
    assert body is not None and body.text == "the feast is tonight"
    done = reply_of([e for e in effects if not e.element.tag.endswith("message")], ADMIN)  # type: ignore[union-attr]
    assert done.find(f"{C}command").get("status") == "completed"  # type: ignore[union-attr]


def _start(w: World, node: str) -> str:
    command = w.command(ADMIN, node).find(f"{C}command")
    assert command is not None and command.get("status") == "executing"
    sid = command.get("sessionid")
    assert sid
    return sid


def test_add_user_persists_the_account_and_answers_after_the_commit() -> None:
    w = World()
    sid = _start(w, f"{NS_ADMIN}#add-user")
    el = Element(f"{C}command", {"node": f"{NS_ADMIN}#add-user", "sessionid": sid})
    el.append(
        build_form(
            submit(accountjid="nurse@example.com", password="s3cret", password_verify="s3cret")
        )
    )
    effects = w.send(ADMIN, tostring(el).decode())
    assert [type(e) for e in effects] == [Persist]
    persist = effects[0]
    assert isinstance(persist, Persist) and persist.op == AccountCreate(
        JID.parse("nurse@example.com"), "s3cret"
    )
    answered = w.router.persisted([persist])
    assert reply_of(answered, ADMIN).find(f"{C}command").get("status") == "completed"  # type: ignore[union-attr]


def test_add_user_bad_input_names_the_field_and_keeps_the_session() -> None:
    w = World()
    sid = _start(w, f"{NS_ADMIN}#add-user")
    cases = [
        (submit(password="x"), "accountjid"),
        (submit(accountjid="juliet@example.com", password="x"), "accountjid"),
        (submit(accountjid="nurse@elsewhere.org", password="x"), "accountjid"),
        (
            submit(accountjid="nurse@example.com", password="x", password_verify="y"),
            "password-verify",
        ),
    ]
    for form, field in cases:
        reply = w.command(ADMIN, f"{NS_ADMIN}#add-user", sid=sid, form=form)
        assert condition(reply) == ("bad-request",)
        assert field in text_of(reply)
    # The session is still there: a good form completes it.
    el = Element(f"{C}command", {"node": f"{NS_ADMIN}#add-user", "sessionid": sid})
    el.append(build_form(submit(accountjid="nurse@example.com", password="x")))
    assert isinstance(w.send(ADMIN, tostring(el).decode())[0], Persist)


def test_delete_user_ends_their_sessions_after_the_commit() -> None:
    w = World()
    sid = _start(w, f"{NS_ADMIN}#delete-user")
    el = Element(f"{C}command", {"node": f"{NS_ADMIN}#delete-user", "sessionid": sid})
    el.append(build_form(submit(accountjids=("juliet@example.com",))))
    effects = w.send(ADMIN, tostring(el).decode())
    persist = effects[0]
    assert isinstance(persist, Persist) and persist.op == AccountDelete(
        JID.parse("juliet@example.com")
    )
    after = w.router.persisted([persist])
    disconnects = [e for e in after if isinstance(e, Disconnect)]
    assert [(d.session, d.condition) for d in disconnects] == [
        (USER, StreamErrorCondition.NOT_AUTHORIZED)
    ]
    assert w.router.sessions_of(JID.parse("juliet@example.com")) == []


def test_end_user_session_kicks_with_policy_violation() -> None:
    w = World()
    sid = _start(w, f"{NS_ADMIN}#end-user-session")
    form = submit(accountjids=("romeo@example.com",))
    el = Element(f"{C}command", {"node": f"{NS_ADMIN}#end-user-session", "sessionid": sid})
    el.append(build_form(form))
    effects = w.send(ADMIN, tostring(el).decode())
    assert [(e.session, e.condition) for e in effects if isinstance(e, Disconnect)] == [
        (OTHER, StreamErrorCondition.POLICY_VIOLATION)
    ]


def test_cancel_prev_and_session_errors() -> None:
    w = World()
    node = f"{NS_ADMIN}#announce"
    sid = _start(w, node)
    # prev on the first stage, and an action the stage does not offer: bad-action.
    assert condition(w.command(ADMIN, node, "prev", sid)) == ("bad-request", "bad-action")
    assert condition(w.command(ADMIN, node, "next", sid)) == ("bad-request", "bad-action")
    assert condition(w.command(ADMIN, node, "jump", sid)) == ("bad-request", "malformed-action")
    # Someone else's session, or an unknown one: bad-sessionid.
    assert condition(w.command(ADMIN, node, "cancel", "nope")) == ("bad-request", "bad-sessionid")
    other = World()
    assert condition(other.command(ADMIN, node, "cancel", sid)) == ("bad-request", "bad-sessionid")
    # A form that is not filled: bad-request naming the field.
    reply = w.command(ADMIN, node, "complete", sid, submit(subject="hi"))
    assert condition(reply) == ("bad-request",) and "announcement" in text_of(reply)
    canceled = w.command(ADMIN, node, "cancel", sid).find(f"{C}command")
    assert canceled is not None and canceled.get("status") == "canceled"
    assert condition(w.command(ADMIN, node, "complete", sid)) == ("bad-request", "bad-sessionid")


def test_sessions_expire_on_the_timer() -> None:
    w = World(lifetime=60)
    node = f"{NS_ADMIN}#announce"
    sid = _start(w, node)
    assert w.router.next_deadline() == 1060
    w.now = 1061
    w.router.handle_timer()
    reply = w.command(ADMIN, node, "complete", sid, submit(announcement="late"))
    assert condition(reply) == ("not-allowed", "session-expired")
    w.now = 1200
    w.router.handle_timer()
    reply = w.command(ADMIN, node, "complete", sid, submit(announcement="late"))
    assert condition(reply) == ("bad-request", "bad-sessionid")
    assert w.router.next_deadline() is None


def test_the_session_limit_per_requester() -> None:
    w = World()
    w.service.engine.max_sessions = 2
    _start(w, f"{NS_ADMIN}#announce")
    _start(w, f"{NS_ADMIN}#announce")
    assert condition(w.command(ADMIN, f"{NS_ADMIN}#announce")) == ("resource-constraint",)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.sampled_from(["execute", "next", "prev", "complete", "cancel", "bogus"]), max_size=8
    )
)
def test_any_action_sequence_gets_a_defined_answer(actions: list[str]) -> None:
    w = World()
    node = f"{NS_ADMIN}#add-user"
    sid: str | None = None
    for action in actions:
        form = submit(accountjid="nurse@example.com", password="p") if sid else None
        el = Element(f"{C}command", {"node": node, "action": action})
        if sid is not None:
            el.set("sessionid", sid)
        if form is not None:
            el.append(build_form(form))
        effects = w.send(ADMIN, tostring(el).decode())
        persists = [e for e in effects if isinstance(e, Persist)]
        if persists:
            effects = w.router.persisted(persists)
        reply = reply_of(effects, ADMIN)
        assert reply.get("type") in ("result", "error")
        command = reply.find(f"{C}command")
        if command is not None:
            sid = command.get("sessionid") if command.get("status") == "executing" else None
    assert w.service.engine.sessions() <= 1
