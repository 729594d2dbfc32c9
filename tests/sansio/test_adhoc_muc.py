"""The administrators' ``destroy-room`` command (XEP-0045 §10.9 from
XEP-0050), sans-IO: occupants leave with ``<destroy/>`` and the reason."""

from __future__ import annotations

from xml.etree.ElementTree import Element, tostring

from xmpp_sansio.forms import Field, Form, FormType, build_form
from xmpp_sansio.jid import JID
from xmpp_sansio.server import Deliver, Router
from xmpp_sansio.server.adhoc import NS_COMMANDS, AdhocEngine, AdhocService
from xmpp_sansio.server.adhoc.muc_admin import destroy_room_command
from xmpp_sansio.server.muc.service import MucService
from xmpp_sansio.testing import seeded_rng, x

ADMIN, ROMEO = 1, 2
C = f"{{{NS_COMMANDS}}}"
MUC_USER = "{http://jabber.org/protocol/muc#user}"


def test_an_admin_destroys_a_room_and_its_occupants_are_told() -> None:
    muc = MucService()
    engine = AdhocEngine([destroy_room_command(muc, lambda jid: str(jid) == "admin@example.com")])
    router = Router(
        ["example.com"],
        rng=seeded_rng(4),
        account_exists=lambda local, domain: True,
        services=[AdhocService(engine)],
        hosts={"conference.example.com": muc},
        clock=lambda: 100.0,
    )
    router.bind(ADMIN, JID.parse("admin@example.com/desk"))
    router.bind(ROMEO, JID.parse("romeo@example.com/garden"))
    router.route(
        ROMEO,
        x(
            "<presence to='verona@conference.example.com/romeo'>"
            "<x xmlns='http://jabber.org/protocol/muc'/></presence>"
        ),
    )
    assert JID.parse("verona@conference.example.com") in muc.rooms

    def send(session: int, command: Element) -> list[Deliver]:
        iq = x(f"<iq type='set' id='d1' to='example.com'>{tostring(command).decode()}</iq>")
        return [e for e in router.route(session, iq) if isinstance(e, Deliver)]

    refused = send(ROMEO, Element(f"{C}command", {"node": "destroy-room"}))
    assert refused[0].element.get("type") == "error"
    [first] = send(ADMIN, Element(f"{C}command", {"node": "destroy-room"}))
    command = first.element.find(f"{C}command")
    assert command is not None
    submit = Element(
        f"{C}command", {"node": "destroy-room", "sessionid": command.get("sessionid") or ""}
    )
    values = {"roomjid": "verona@conference.example.com", "reason": "the feud is over"}
    fields = tuple(Field(k, values=(v,)) for k, v in values.items())
    submit.append(build_form(Form(FormType.SUBMIT, fields=fields)))
    delivered = send(ADMIN, submit)
    [gone] = [d for d in delivered if d.session == ROMEO]
    assert gone.element.get("type") == "unavailable"
    assert gone.element.findtext(f"{MUC_USER}x/{MUC_USER}destroy/{MUC_USER}reason") == (
        "the feud is over"
    )
    assert JID.parse("verona@conference.example.com") not in muc.rooms
    [done] = [d for d in delivered if d.session == ADMIN]
    assert done.element.find(f"{C}command").get("status") == "completed"  # type: ignore[union-attr]
