"""The client side of ad-hoc commands (xmpp_sansio.client.adhoc): requests
as XEP-0050 §3.4 shows them, and the answers read back."""

from __future__ import annotations

from xml.etree.ElementTree import Element, SubElement

import pytest
from hypothesis import given
from hypothesis import strategies as st

from xmpp_sansio.client.adhoc import (
    NS_COMMANDS,
    command_request,
    commands_query,
    parse_command_response,
)
from xmpp_sansio.forms import NS_DATA, Field, Form, FormType, build_form

C = f"{{{NS_COMMANDS}}}"


def test_requests_carry_node_action_session_and_form() -> None:
    assert commands_query().get("node") == NS_COMMANDS
    form = Form(FormType.SUBMIT, fields=(Field("x", values=("1",)),))
    el = command_request("ping", "complete", "s1", form)
    assert el.tag == f"{C}command"
    assert el.attrib == {"node": "ping", "action": "complete", "sessionid": "s1"}
    assert el.find(f"{{{NS_DATA}}}x") is not None


def test_an_executing_answer_is_read_with_its_actions_notes_and_form() -> None:
    el = Element(f"{C}command", {"node": "n", "sessionid": "s", "status": "executing"})
    actions = SubElement(el, f"{C}actions", {"execute": "next"})
    SubElement(actions, f"{C}prev")
    SubElement(actions, f"{C}next")
    SubElement(el, f"{C}note", {"type": "warn"}).text = "careful"
    el.append(build_form(Form(FormType.FORM, fields=(Field("a"),))))
    answer = parse_command_response(el)
    assert answer.executing and answer.sessionid == "s"
    assert answer.actions == ("prev", "next") and answer.default == "next"
    assert answer.notes == (("warn", "careful"),)
    assert answer.form is not None and "a" in answer.form


def test_not_a_command_is_refused() -> None:
    with pytest.raises(ValueError):
        parse_command_response(Element("{jabber:iq:version}query"))


@given(
    st.sampled_from(["executing", "completed", "canceled"]),
    st.lists(st.sampled_from(["prev", "next", "complete"]), unique=True),
)
def test_status_and_actions_round_trip(status: str, acts: list[str]) -> None:
    el = Element(f"{C}command", {"node": "n", "sessionid": "s", "status": status})
    if acts:
        actions = SubElement(el, f"{C}actions")
        for a in acts:
            SubElement(actions, f"{C}{a}")
    answer = parse_command_response(el)
    assert answer.status == status
    assert set(answer.actions) == set(acts)
    assert answer.default == (answer.actions[-1] if acts else None)
