"""Tests for xmpp_sansio.delay (XEP-0203 delayed delivery, XEP-0082 DateTime)."""

from __future__ import annotations

from xml.etree.ElementTree import Element, fromstring

import pytest

from xmpp_sansio.delay import (
    DELAY_TAG,
    Delay,
    delay_element,
    find_delay,
    format_datetime,
    parse_datetime,
    parse_delay,
    with_delay,
)
from xmpp_sansio.jid import JID

# XEP-0082 §3.2 example: the first human steps on the Moon.
MOON = -14159025.0


def test_format_datetime_is_utc_with_z() -> None:
    assert format_datetime(0) == "1970-01-01T00:00:00Z"
    assert format_datetime(1031699305) == "2002-09-10T23:08:25Z"
    assert format_datetime(MOON) == "1969-07-21T02:56:15Z"


def test_format_datetime_truncates_fractions_unless_asked() -> None:
    assert format_datetime(1031699305.9999) == "2002-09-10T23:08:25Z"
    assert format_datetime(1031699305.25, digits=3) == "2002-09-10T23:08:25.250Z"
    assert format_datetime(1031699305.123456, digits=6) == "2002-09-10T23:08:25.123456Z"
    with pytest.raises(ValueError):
        format_datetime(0, digits=7)


def test_format_datetime_pads_small_years() -> None:
    assert format_datetime(-62135596800.0) == "0001-01-01T00:00:00Z"


@pytest.mark.parametrize(
    "text",
    [
        "1969-07-21T02:56:15Z",
        "1969-07-20T21:56:15-05:00",  # XEP-0082 §3.2 Houston time
        "1969-07-21T08:26:15+05:30",
        " 1969-07-21T02:56:15Z\n",
    ],
)
def test_parse_datetime_applies_offsets(text: str) -> None:
    assert parse_datetime(text) == MOON


def test_parse_datetime_keeps_fractions_to_the_microsecond() -> None:
    assert parse_datetime("2002-09-10T23:08:25.5Z") == 1031699305.5
    assert parse_datetime("2002-09-10T23:08:25.123456789Z") == pytest.approx(1031699305.123456)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "2002-09-10T23:08:25",  # TZD is mandatory
        "2002-09-10 23:08:25Z",
        "20020910T23:08:25Z",  # the legacy XEP-0091 form is not XEP-0082
        "2002-13-10T23:08:25Z",
        "2002-02-30T23:08:25Z",
        "2002-09-10T24:00:00Z",
        "2002-09-10T23:60:00Z",
        "2002-09-10T23:08:25+15:00",
        "2002-09-10T23:08:25+01:60",
        "2002-09-10T23:08:25.Z",
        "\uff12\uff10\uff10\uff12-09-10T23:08:25Z",  # fullwidth digits
    ],
)
def test_parse_datetime_rejects_other_forms(text: str) -> None:
    with pytest.raises(ValueError):
        parse_datetime(text)


def test_format_and_parse_round_trip() -> None:
    for stamp in (0.0, 1.0, 1031699305.0, 4102444800.0, MOON):
        assert parse_datetime(format_datetime(stamp)) == stamp


def test_delay_element_matches_xep_0203_example() -> None:
    el = delay_element(1031699305, JID.parse("capulet.com"), "Offline Storage")
    assert el.tag == "{urn:xmpp:delay}delay"
    assert el.attrib == {"stamp": "2002-09-10T23:08:25Z", "from": "capulet.com"}
    assert el.text == "Offline Storage"
    assert delay_element(0).attrib == {"stamp": "1970-01-01T00:00:00Z"}


def test_parse_delay_reads_every_field() -> None:
    el = fromstring(
        "<delay xmlns='urn:xmpp:delay' from='juliet@capulet.com/balcony'"
        " stamp='2002-09-10T23:41:07Z'>\n  Offline Storage\n</delay>"
    )
    assert parse_delay(el) == Delay(
        1031701267.0, JID.parse("juliet@capulet.com/balcony"), "Offline Storage"
    )
    bare = fromstring("<delay xmlns='urn:xmpp:delay' stamp='1970-01-01T00:00:00Z'/>")
    assert parse_delay(bare) == Delay(0.0)


@pytest.mark.parametrize(
    "xml",
    [
        "<delay xmlns='urn:xmpp:delay'/>",
        "<delay xmlns='urn:xmpp:delay' stamp='yesterday'/>",
        "<delay xmlns='urn:xmpp:delay' stamp='2002-09-10T23:41:07Z' from='@bad'/>",
        "<x xmlns='jabber:x:delay' stamp='20020910T23:41:07'/>",
    ],
)
def test_parse_delay_rejects_invalid_elements(xml: str) -> None:
    with pytest.raises(ValueError):
        parse_delay(fromstring(xml))


def test_find_delay_skips_invalid_ones() -> None:
    msg = fromstring(
        "<message xmlns='jabber:client'><body>hi</body>"
        "<delay xmlns='urn:xmpp:delay' stamp='bad'/>"
        "<delay xmlns='urn:xmpp:delay' stamp='1970-01-01T00:00:10Z'/></message>"
    )
    assert find_delay(msg) == Delay(10.0)
    assert find_delay(fromstring("<message xmlns='jabber:client'/>")) is None


def test_with_delay_replaces_forged_notation_from_the_same_entity() -> None:
    msg = fromstring(
        "<message xmlns='jabber:client' from='romeo@montague.net/orchard' to='juliet@capulet.com'>"
        "<body>hi</body>"
        "<delay xmlns='urn:xmpp:delay' from='capulet.com' stamp='1970-01-01T00:00:00Z'/>"
        "<delay xmlns='urn:xmpp:delay' from='room@muc.example' stamp='1970-01-01T00:00:05Z'/>"
        "</message>"
    )
    out = with_delay(msg, 1031699305, "capulet.com", "Offline Storage")
    delays = [(d.get("from"), d.get("stamp")) for d in out.iterfind(DELAY_TAG)]
    assert delays == [
        ("room@muc.example", "1970-01-01T00:00:05Z"),
        ("capulet.com", "2002-09-10T23:08:25Z"),
    ]
    assert out.attrib == msg.attrib
    # the original is untouched
    assert len(msg) == 3
    assert isinstance(out.find("{jabber:client}body"), Element)
