"""Bad input to rooms gets XEP-0045's answers, never an exception: random
sequences of malformed and hostile requests from occupants and outsiders."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from muc_world import MUC, ROOM, World, error_condition

NAMES = ("owner", "alice", "bob")
VALUES = (
    "",
    "owner",
    "admin",
    "member",
    "none",
    "outcast",
    "moderator",
    "visitor",
    "x" * 300,
    "@@",
    "a@b/c",
)

TEMPLATES = (
    "<presence to='{room}/{v}'><x xmlns='{muc}'><password>{v}</password><history maxstanzas='{v}' seconds='{v}' since='{v}' maxchars='{v}'/></x></presence>",
    "<presence to='{room}/{v}' type='unavailable'/>",
    "<presence to='{room}' type='error'/>",
    "<presence to='{room}/{v}' type='probe'/>",
    "<message to='{room}' type='groupchat'><subject>{v}</subject></message>",
    "<message to='{room}/{v}' type='chat'><body>{v}</body></message>",
    "<message to='{room}'><x xmlns='{muc}#user'><invite to='{v}'/><decline to='{v}'/></x></message>",
    "<iq type='set' id='a' to='{room}'><query xmlns='{muc}#admin'><item nick='{v}' role='{v}'/></query></iq>",
    "<iq type='set' id='a' to='{room}'><query xmlns='{muc}#admin'><item jid='{v}' affiliation='{v}'/><item/></query></iq>",
    "<iq type='get' id='a' to='{room}'><query xmlns='{muc}#admin'><item affiliation='{v}' role='{v}'/></query></iq>",
    "<iq type='set' id='c' to='{room}'><query xmlns='{muc}#owner'><x xmlns='jabber:x:data' type='submit'><field var='muc#roomconfig_maxusers'><value>{v}</value></field><field var='muc#roomconfig_whois'><value>{v}</value></field><field var='muc#roomconfig_presencebroadcast'><value>{v}</value></field><field var='muc#roomconfig_persistentroom'><value>{v}</value></field></x></query></iq>",
    "<iq type='set' id='c' to='{room}'><query xmlns='{muc}#owner'><x xmlns='jabber:x:data' type='bogus'/></query></iq>",
    "<iq type='set' id='d' to='{room}'><query xmlns='{muc}#owner'><destroy jid='{v}'/></query></iq>",
    "<iq type='set' id='r' to='{room}'><query xmlns='jabber:iq:register'><x xmlns='jabber:x:data' type='submit'><field var='muc#register_roomnick'><value>{v}</value></field></x></query></iq>",
    "<iq type='set' id='m' to='{room}'><moderate id='{v}' xmlns='urn:xmpp:message-moderate:1'><retract xmlns='urn:xmpp:message-retract:1'/></moderate></iq>",
    "<iq type='get' id='p' to='{room}/{v}'><ping xmlns='urn:xmpp:ping'/></iq>",
    "<message to='{room}'><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#request</value></field><field var='muc#role'><value>{v}</value></field><field var='muc#roomnick'><value>{v}</value></field><field var='muc#request_allow'><value>{v}</value></field></x></message>",
    "<iq type='get' id='n' to='{room}'><query xmlns='http://jabber.org/protocol/disco#info' node='{v}'/></iq>",
    "<iq type='result' id='p' to='{room}/{v}'/>",
)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(NAMES), st.sampled_from(TEMPLATES), st.sampled_from(VALUES)),
        max_size=25,
    )
)
def test_no_request_sequence_raises_and_requests_are_answered(
    steps: list[tuple[str, str, str]],
) -> None:
    w = World()
    w.create()
    for name, template, value in steps:
        stanza = template.format(room=ROOM, muc=MUC, v=value)
        w.send(name, stanza)
        got = w.take(name)
        others = {other: w.take(other) for other in NAMES if other != name}
        if "type='set'" in stanza or "type='get'" in stanza:
            # Every request gets its one answer: a result or an error; or, sent
            # to another occupant's JID, it is forwarded to that occupant
            # (XEP-0045, "Business Rules: IQ": the room forwards it), whose
            # client answers it.
            forwarded = [
                g
                for taken in others.values()
                for g in taken
                if g.tag.endswith("iq") and g.get("type") == "get" and g.get("id") == "p"
            ]
            if "ping" in stanza and forwarded:
                assert not [g for g in got if g.tag.endswith("iq")], (stanza, got)
                assert len(forwarded) == 1, (stanza, forwarded)
                continue
            answers = [g for g in got if g.tag.endswith("iq")]
            assert len(answers) == 1, (stanza, got)
            assert answers[0].get("type") in ("result", "error")
            if answers[0].get("type") == "error":
                assert error_condition(answers[0]) is not None
