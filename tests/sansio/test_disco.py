"""Tests for xmpp_sansio.disco: service discovery (XEP-0030, XEP-0128) and
entity capabilities (XEP-0115, XEP-0390), with the XEPs' own test vectors."""

from __future__ import annotations

from dataclasses import replace
from random import Random
from xml.etree.ElementTree import Element, fromstring

import pytest
from hypothesis import given
from hypothesis import strategies as st

from xmpp_sansio.disco import (
    Caps,
    DiscoError,
    DiscoInfo,
    DiscoItem,
    DiscoItems,
    Identity,
    build_disco_info,
    build_disco_items,
    caps2_element,
    caps2_hashes,
    caps2_input,
    caps2_node,
    caps_element,
    caps_string,
    caps_ver,
    info_query,
    items_query,
    parse_caps,
    parse_caps2,
    parse_caps2_node,
    parse_disco_info,
    parse_disco_items,
    verify_caps,
    verify_caps2,
)
from xmpp_sansio.forms import Field, FieldType, Form, FormType
from xmpp_sansio.jid import JID
from xmpp_sansio.xml.writer import serialize

INFO = "{http://jabber.org/protocol/disco#info}"
ITEMS = "{http://jabber.org/protocol/disco#items}"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"

MUC = "http://jabber.org/protocol/muc"
CAPS = "http://jabber.org/protocol/caps"
DISCO_INFO = "http://jabber.org/protocol/disco#info"
DISCO_ITEMS = "http://jabber.org/protocol/disco#items"

# XEP-0115 §5.2.
SIMPLE = DiscoInfo(
    identities=(Identity("client", "pc", "Exodus 0.9.1"),),
    features=(CAPS, DISCO_INFO, DISCO_ITEMS, MUC),
)

# XEP-0115 §5.3, as the XEP writes it.
COMPLEX_XML = """
<query xmlns='http://jabber.org/protocol/disco#info'
       node='http://psi-im.org#q07IKJEyjvHSyhy//CH0CxmKi8w='>
  <identity xml:lang='en' category='client' name='Psi 0.11' type='pc'/>
  <identity xml:lang='el' category='client' name='\u03a8 0.11' type='pc'/>
  <feature var='http://jabber.org/protocol/caps'/>
  <feature var='http://jabber.org/protocol/disco#info'/>
  <feature var='http://jabber.org/protocol/disco#items'/>
  <feature var='http://jabber.org/protocol/muc'/>
  <x xmlns='jabber:x:data' type='result'>
    <field var='FORM_TYPE' type='hidden'>
      <value>urn:xmpp:dataforms:softwareinfo</value>
    </field>
    <field var='ip_version' type='text-multi' >
      <value>ipv4</value>
      <value>ipv6</value>
    </field>
    <field var='os'>
      <value>Mac</value>
    </field>
    <field var='os_version'>
      <value>10.5.1</value>
    </field>
    <field var='software'>
      <value>Psi</value>
    </field>
    <field var='software_version'>
      <value>0.11</value>
    </field>
  </x>
</query>
"""

# XEP-0390 §4.5.1 (features shuffled by the XEP).
CAPS2_SIMPLE_XML = """
<query xmlns="http://jabber.org/protocol/disco#info">
  <identity category="client" name="BombusMod" type="mobile"/>
  <feature var="http://jabber.org/protocol/si"/>
  <feature var="http://jabber.org/protocol/bytestreams"/>
  <feature var="http://jabber.org/protocol/chatstates"/>
  <feature var="http://jabber.org/protocol/disco#info"/>
  <feature var="http://jabber.org/protocol/disco#items"/>
  <feature var="urn:xmpp:ping"/>
  <feature var="jabber:iq:time"/>
  <feature var="jabber:iq:privacy"/>
  <feature var="jabber:iq:version"/>
  <feature var="http://jabber.org/protocol/rosterx"/>
  <feature var="urn:xmpp:time"/>
  <feature var="jabber:x:oob"/>
  <feature var="http://jabber.org/protocol/ibb"/>
  <feature var="http://jabber.org/protocol/si/profile/file-transfer"/>
  <feature var="urn:xmpp:receipts"/>
  <feature var="jabber:iq:roster"/>
  <feature var="jabber:iq:last"/>
</query>
"""

_COMPLEX_FEATURES = [
    "games:board",
    "http://jabber.org/protocol/activity",
    "http://jabber.org/protocol/activity+notify",
    "http://jabber.org/protocol/bytestreams",
    "http://jabber.org/protocol/chatstates",
    "http://jabber.org/protocol/commands",
    "http://jabber.org/protocol/disco#info",
    "http://jabber.org/protocol/disco#items",
    "http://jabber.org/protocol/evil",
    "http://jabber.org/protocol/feature-neg",
    "http://jabber.org/protocol/geoloc",
    "http://jabber.org/protocol/geoloc+notify",
    "http://jabber.org/protocol/ibb",
    "http://jabber.org/protocol/iqibb",
    "http://jabber.org/protocol/mood",
    "http://jabber.org/protocol/mood+notify",
    "http://jabber.org/protocol/rosterx",
    "http://jabber.org/protocol/si",
    "http://jabber.org/protocol/si/profile/file-transfer",
    "http://jabber.org/protocol/tune",
    "http://www.facebook.com/xmpp/messages",
    "http://www.xmpp.org/extensions/xep-0084.html#ns-metadata+notify",
    "jabber:iq:avatar",
    "jabber:iq:browse",
    "jabber:iq:dtcp",
    "jabber:iq:filexfer",
    "jabber:iq:ibb",
    "jabber:iq:inband",
    "jabber:iq:jidlink",
    "jabber:iq:last",
    "jabber:iq:oob",
    "jabber:iq:privacy",
    "jabber:iq:roster",
    "jabber:iq:time",
    "jabber:iq:version",
    "jabber:x:data",
    "jabber:x:event",
    "jabber:x:oob",
    "urn:xmpp:avatar:metadata+notify",
    "urn:xmpp:ping",
    "urn:xmpp:receipts",
    "urn:xmpp:time",
]

# XEP-0390 §4.5.2.
CAPS2_COMPLEX_XML = (
    '<query xmlns="http://jabber.org/protocol/disco#info">'
    '<identity category="client" name="Tkabber" type="pc" xml:lang="en"/>'
    '<identity category="client" name="\u0422\u043a\u0430\u0431\u0431\u0435\u0440" type="pc" xml:lang="ru"/>'
    + "".join(f'<feature var="{f}"/>' for f in _COMPLEX_FEATURES)
    + '<x xmlns="jabber:x:data" type="result">'
    '<field type="hidden" var="FORM_TYPE"><value>urn:xmpp:dataforms:softwareinfo</value></field>'
    '<field var="software"><value>Tkabber</value></field>'
    '<field var="software_version"><value>0.11.1-svn-20111216-mod (Tcl/Tk 8.6b2)</value></field>'
    '<field var="os"><value>Windows</value></field>'
    '<field var="os_version"><value>XP</value></field>'
    "</x></query>"
)


def softwareinfo(**values: str) -> Form:
    return Form(
        FormType.RESULT,
        fields=(
            Field("FORM_TYPE", FieldType.HIDDEN, values=("urn:xmpp:dataforms:softwareinfo",)),
            *(Field(var, values=(value,)) for var, value in values.items()),
        ),
    )


# ---------------------------------------------------------------------------
# disco#info and disco#items


def test_parse_disco_info_reads_identities_features_forms_and_node() -> None:
    info = parse_disco_info(fromstring(COMPLEX_XML))
    assert info.node == "http://psi-im.org#q07IKJEyjvHSyhy//CH0CxmKi8w="
    assert info.identities == (
        Identity("client", "pc", "Psi 0.11", "en"),
        Identity("client", "pc", "\u03a8 0.11", "el"),
    )
    assert info.features == (CAPS, DISCO_INFO, DISCO_ITEMS, MUC)
    assert info.has_feature(MUC) and not info.has_feature("urn:xmpp:ping")
    form = info.extension("urn:xmpp:dataforms:softwareinfo")
    assert form is not None and form.values("ip_version") == ("ipv4", "ipv6")
    assert info.extension("urn:other") is None


def test_parse_disco_info_keeps_duplicates_and_ignores_unknown_children() -> None:
    info = parse_disco_info(
        fromstring(
            f"<query xmlns='{DISCO_INFO[:-5]}#info'><feature var='a'/><feature var='a'/>"
            "<unknown xmlns='urn:example'/><identity category='c' type='t'/></query>"
        )
    )
    assert info == DiscoInfo((Identity("c", "t"),), ("a", "a"))


@pytest.mark.parametrize(
    "body",
    [
        "<identity type='pc'/>",  # XEP-0030 §3.1: category and type are required
        "<identity category='client'/>",
        "<identity category='' type='pc'/>",
        "<feature/>",
        "<x xmlns='jabber:x:data'/>",  # an invalid extension form
    ],
)
def test_parse_disco_info_rejects_what_xep_0030_forbids(body: str) -> None:
    with pytest.raises(DiscoError):
        parse_disco_info(fromstring(f"<query xmlns='{DISCO_INFO}'>{body}</query>"))


def test_parse_rejects_other_queries() -> None:
    with pytest.raises(DiscoError):
        parse_disco_info(items_query())
    with pytest.raises(DiscoError):
        parse_disco_items(info_query())


def test_build_disco_info_writes_xep_0030_elements() -> None:
    info = DiscoInfo(
        (Identity("server", "im", "Example", "en"), Identity("pubsub", "pep")),
        (DISCO_INFO, "urn:xmpp:ping"),
        (softwareinfo(software="xmpp-trio"),),
        node="n",
    )
    el = build_disco_info(info)
    assert el.tag == f"{INFO}query" and el.get("node") == "n"
    identities = el.findall(f"{INFO}identity")
    assert identities[0].attrib == {
        "category": "server",
        "type": "im",
        "name": "Example",
        XML_LANG: "en",
    }
    assert identities[1].attrib == {"category": "pubsub", "type": "pep"}
    assert [f.get("var") for f in el.findall(f"{INFO}feature")] == [DISCO_INFO, "urn:xmpp:ping"]
    assert el.find("{jabber:x:data}x") is not None
    assert info_query().attrib == {} and info_query("n").attrib == {"node": "n"}


def test_disco_items_parse_and_build() -> None:
    el = fromstring(
        f"<query xmlns='{DISCO_ITEMS}' node='music'>"
        "<item jid='people.shakespeare.lit' name='Directory of Characters'/>"
        "<item jid='catalog.shakespeare.lit' node='books'/></query>"
    )
    items = parse_disco_items(el)
    assert items == DiscoItems(
        (
            DiscoItem(JID.parse("people.shakespeare.lit"), name="Directory of Characters"),
            DiscoItem(JID.parse("catalog.shakespeare.lit"), node="books"),
        ),
        node="music",
    )
    built = build_disco_items(items)
    assert built.tag == f"{ITEMS}query" and built.get("node") == "music"
    assert built.findall(f"{ITEMS}item")[1].attrib == {
        "jid": "catalog.shakespeare.lit",
        "node": "books",
    }


@pytest.mark.parametrize("item", ["<item/>", "<item jid='a@b@c'/>"])
def test_parse_disco_items_rejects_items_without_a_valid_jid(item: str) -> None:
    with pytest.raises(DiscoError):
        parse_disco_items(fromstring(f"<query xmlns='{DISCO_ITEMS}'>{item}</query>"))


xml_text = st.text(st.characters(blacklist_categories=("Cs", "Cc", "Cn")), max_size=8)
nonempty = st.text(st.characters(blacklist_categories=("Cs", "Cc", "Cn")), min_size=1, max_size=8)
identities = st.builds(
    Identity,
    nonempty,
    nonempty,
    st.none() | xml_text,
    st.none() | st.sampled_from(["en", "el", "de-CH"]),
)
extension_forms = st.builds(
    lambda form_type, values: Form(
        FormType.RESULT,
        fields=(
            Field("FORM_TYPE", FieldType.HIDDEN, values=(form_type,)),
            *(Field(var, values=tuple(vs)) for var, vs in values.items()),
        ),
    ),
    nonempty,
    st.dictionaries(
        nonempty.filter(lambda v: v != "FORM_TYPE"), st.lists(xml_text, max_size=3), max_size=3
    ),
)
infos = st.builds(
    DiscoInfo,
    st.lists(identities, max_size=3).map(tuple),
    st.lists(xml_text, max_size=5).map(tuple),
    st.lists(extension_forms, max_size=2).map(tuple),
    st.none() | xml_text,
)
jids = st.sampled_from(
    ["example.com", "conference.example.com", "a@example.com", "a@example.com/r", "[::1]"]
).map(JID.parse)
items_strategy = st.builds(
    DiscoItems,
    st.lists(
        st.builds(DiscoItem, jids, st.none() | xml_text, st.none() | xml_text), max_size=4
    ).map(tuple),
    st.none() | xml_text,
)


@given(infos)
def test_disco_info_parse_of_build_is_identity(info: DiscoInfo) -> None:
    assert parse_disco_info(build_disco_info(info)) == info
    assert parse_disco_info(fromstring(serialize(build_disco_info(info)))) == info


@given(items_strategy)
def test_disco_items_parse_of_build_is_identity(items: DiscoItems) -> None:
    assert parse_disco_items(build_disco_items(items)) == items
    assert parse_disco_items(fromstring(serialize(build_disco_items(items)))) == items


# ---------------------------------------------------------------------------
# XEP-0115


def test_caps_ver_of_the_xep_0115_simple_example() -> None:
    # XEP-0115 §5.2.
    assert caps_string(SIMPLE) == (
        "client/pc//Exodus 0.9.1<http://jabber.org/protocol/caps<"
        "http://jabber.org/protocol/disco#info<http://jabber.org/protocol/disco#items<"
        "http://jabber.org/protocol/muc<"
    )
    assert caps_ver(SIMPLE) == "QgayPKawpkPSDYmwT/WM94uAlu0="
    assert caps_ver(SIMPLE, "sha-1") == "QgayPKawpkPSDYmwT/WM94uAlu0="


def test_caps_ver_of_the_xep_0115_complex_example() -> None:
    # XEP-0115 §5.3.
    info = parse_disco_info(fromstring(COMPLEX_XML))
    assert caps_string(info) == (
        "client/pc/el/\u03a8 0.11<client/pc/en/Psi 0.11<http://jabber.org/protocol/caps<"
        "http://jabber.org/protocol/disco#info<http://jabber.org/protocol/disco#items<"
        "http://jabber.org/protocol/muc<urn:xmpp:dataforms:softwareinfo<"
        "ip_version<ipv4<ipv6<os<Mac<os_version<10.5.1<software<Psi<software_version<0.11<"
    )
    assert caps_ver(info) == "q07IKJEyjvHSyhy//CH0CxmKi8w="
    assert verify_caps(info, "q07IKJEyjvHSyhy//CH0CxmKi8w=", "sha-1")


def test_caps_ver_with_other_hash_functions_and_unknown_ones() -> None:
    assert len(caps_ver(SIMPLE, "sha-256")) == 44
    with pytest.raises(ValueError):
        caps_ver(SIMPLE, "md5")


@given(infos, st.randoms(use_true_random=False))
def test_caps_ver_does_not_depend_on_order(info: DiscoInfo, rnd: Random) -> None:
    shuffled_identities = list(info.identities)
    shuffled_features = list(info.features)
    shuffled_forms = list(info.forms)
    for seq in (shuffled_identities, shuffled_features, shuffled_forms):
        rnd.shuffle(seq)
    shuffled = DiscoInfo(
        tuple(shuffled_identities), tuple(shuffled_features), tuple(shuffled_forms)
    )
    assert caps_ver(shuffled) == caps_ver(info)
    assert caps2_hashes(shuffled) == caps2_hashes(info)


def test_verify_caps_accepts_the_matching_ver_only() -> None:
    assert verify_caps(SIMPLE, "QgayPKawpkPSDYmwT/WM94uAlu0=", "sha-1")
    assert not verify_caps(SIMPLE, "66/0NaeaBKkwk85efJTGmU47vXI=", "sha-1")
    # XEP-0115 §5.4 step 2: an unsupported hash cannot be verified.
    assert not verify_caps(SIMPLE, "QgayPKawpkPSDYmwT/WM94uAlu0=", "md5")


def test_verify_caps_rejects_ill_formed_responses() -> None:
    # XEP-0115 §5.4 steps 3.3-3.5: duplicates make the response ill-formed even
    # when the hash would match.
    dup_identity = replace(SIMPLE, identities=SIMPLE.identities * 2)
    assert not verify_caps(dup_identity, caps_ver(dup_identity), "sha-1")
    dup_feature = replace(SIMPLE, features=(*SIMPLE.features, MUC))
    assert not verify_caps(dup_feature, caps_ver(dup_feature), "sha-1")
    two_forms = replace(SIMPLE, forms=(softwareinfo(os="Mac"), softwareinfo(os="Linux")))
    assert not verify_caps(two_forms, caps_ver(two_forms), "sha-1")
    two_types = replace(
        SIMPLE,
        forms=(
            Form(
                FormType.RESULT,
                fields=(Field("FORM_TYPE", FieldType.HIDDEN, values=("urn:a", "urn:b")),),
            ),
        ),
    )
    assert not verify_caps(two_types, caps_ver(two_types), "sha-1")


def test_forms_without_hidden_form_type_do_not_count() -> None:
    # XEP-0115 §5.4 step 3.6: ignore the form but continue.
    stray = Form(FormType.RESULT, fields=(Field("FORM_TYPE", values=("urn:x",)),))
    with_stray = replace(SIMPLE, forms=(stray,))
    assert caps_ver(with_stray) == caps_ver(SIMPLE)
    assert verify_caps(with_stray, "QgayPKawpkPSDYmwT/WM94uAlu0=", "sha-1")


def test_caps_element_and_parse_caps() -> None:
    c = caps_element("http://code.google.com/p/exodus", "QgayPKawpkPSDYmwT/WM94uAlu0=")
    assert c.tag == "{http://jabber.org/protocol/caps}c"
    assert c.attrib == {
        "hash": "sha-1",
        "node": "http://code.google.com/p/exodus",
        "ver": "QgayPKawpkPSDYmwT/WM94uAlu0=",
    }
    presence = Element("{jabber:client}presence")
    assert parse_caps(presence) is None
    presence.append(c)
    caps = parse_caps(presence)
    assert caps == Caps("http://code.google.com/p/exodus", "QgayPKawpkPSDYmwT/WM94uAlu0=")
    assert caps.disco_node == "http://code.google.com/p/exodus#QgayPKawpkPSDYmwT/WM94uAlu0="


def test_parse_caps_reads_the_legacy_format_and_skips_incomplete_elements() -> None:
    legacy = fromstring(
        f"<presence xmlns='jabber:client'><c xmlns='{CAPS}' node='http://a' ver='1.0' ext='x'/>"
        "</presence>"
    )
    assert parse_caps(legacy) == Caps("http://a", "1.0", None, "x")
    no_ver = fromstring(
        f"<presence xmlns='jabber:client'><c xmlns='{CAPS}' hash='sha-1' node='http://a'/>"
        "</presence>"
    )
    assert parse_caps(no_ver) is None


# ---------------------------------------------------------------------------
# XEP-0390


def test_caps2_hashes_of_the_xep_0390_simple_example() -> None:
    # XEP-0390 §4.5.1.
    info = parse_disco_info(fromstring(CAPS2_SIMPLE_XML))
    assert caps2_input(info).endswith(b"\x1cclient\x1fmobile\x1f\x1fBombusMod\x1f\x1e\x1c\x1c")
    assert caps2_hashes(info, ("sha-256", "sha3-256")) == {
        "sha-256": "kzBZbkqJ3ADrj7v08reD1qcWUwNGHaidNUgD7nHpiw8=",
        "sha3-256": "79mdYAfU9rEdTOcWDO7UEAt6E56SUzk/g6TnqUeuD9Q=",
    }


def test_caps2_hashes_of_the_xep_0390_complex_example() -> None:
    # XEP-0390 §4.5.2.
    info = parse_disco_info(fromstring(CAPS2_COMPLEX_XML))
    assert caps2_hashes(info, ("sha-256", "sha3-256")) == {
        "sha-256": "u79ZroNJbdSWhdSp311mddz44oHHPsEBntQ5b1jqBSY=",
        "sha3-256": "XpUJzLAc93258sMECZ3FJpebkzuyNXDzRNwQog8eycg=",
    }
    assert verify_caps2(info, "sha-256", "u79ZroNJbdSWhdSp311mddz44oHHPsEBntQ5b1jqBSY=")
    assert not verify_caps2(info, "sha-256", "kzBZbkqJ3ADrj7v08reD1qcWUwNGHaidNUgD7nHpiw8=")
    assert not verify_caps2(info, "md5", "u79ZroNJbdSWhdSp311mddz44oHHPsEBntQ5b1jqBSY=")


def test_caps2_input_aborts_where_xep_0390_says_so() -> None:
    table = Form(
        FormType.RESULT,
        fields=(Field("FORM_TYPE", FieldType.HIDDEN, values=("urn:x",)),),
        reported=(Field("a"),),
    )
    untyped = Form(FormType.RESULT, fields=(Field("os", values=("Mac",)),))
    for form in (table, untyped):
        info = replace(SIMPLE, forms=(form,))
        with pytest.raises(DiscoError):
            caps2_hashes(info)
        assert not verify_caps2(info, "sha-256", "anything")


def test_caps2_element_round_trips_through_parse_caps2() -> None:
    hashes = {"sha-256": "u79Zro=", "sha3-256": "XpUJzL="}
    c = caps2_element(hashes)
    assert c.tag == "{urn:xmpp:caps}c"
    assert [(h.tag, h.get("algo"), h.text) for h in c] == [
        ("{urn:xmpp:hashes:2}hash", "sha-256", "u79Zro="),
        ("{urn:xmpp:hashes:2}hash", "sha3-256", "XpUJzL="),
    ]
    presence = Element("{jabber:client}presence")
    assert parse_caps2(presence) == {}
    presence.append(c)
    assert parse_caps2(presence) == hashes


def test_caps2_node_splits_at_the_last_full_stop() -> None:
    # XEP-0390 §4.3, §6.2: hash names may contain a full stop.
    assert caps2_node("sha-256", "abc=") == "urn:xmpp:caps#sha-256.abc="
    assert parse_caps2_node("urn:xmpp:caps#sha-256.abc=") == ("sha-256", "abc=")
    assert parse_caps2_node("urn:xmpp:caps#my.hash.abc=") == ("my.hash", "abc=")
    assert parse_caps2_node("http://psi-im.org#abc") is None
    assert parse_caps2_node("urn:xmpp:caps#nodot") is None
