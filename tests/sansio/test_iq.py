"""IQ request tracking (RFC 6120 §8.2.3)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from xmpp_sansio.errors import StanzaErrorCondition
from xmpp_sansio.iq import IqError, IqResult, IqTimeout, IqTracker
from xmpp_sansio.jid import JID


def iq(text: str) -> ET.Element:
    return ET.fromstring(text.replace("<iq", "<iq xmlns='jabber:client'", 1))


def tracker() -> IqTracker:
    t = IqTracker(rng=lambda n: b"\x01" * n)
    t.own_jid = JID.parse("juliet@example.com/balcony")
    return t


def test_request_gets_an_id_and_its_result_matches() -> None:
    t = tracker()
    request = iq("<iq type='get' to='romeo@example.net'><query xmlns='jabber:iq:version'/></iq>")
    iq_id = t.request(request, now=0, timeout=30)
    assert request.get("id") == iq_id
    outcome = t.handle(iq(f"<iq type='result' id='{iq_id}' from='romeo@example.net'><x/></iq>"))
    assert isinstance(outcome, IqResult) and outcome.payload is not None
    assert len(t) == 0


def test_response_from_another_entity_is_not_matched() -> None:
    t = tracker()
    iq_id = t.request(iq("<iq type='get' id='a' to='romeo@example.net'/>"), now=0, timeout=30)
    assert t.handle(iq(f"<iq type='result' id='{iq_id}' from='mallory@evil.example'/>")) is None
    assert len(t) == 1


@pytest.mark.parametrize("sender", [None, "juliet@example.com", "example.com"])
def test_request_to_own_account_accepts_server_answers(sender: str | None) -> None:
    t = tracker()
    t.request(
        iq("<iq type='get' id='r1'><query xmlns='jabber:iq:roster'/></iq>"), now=0, timeout=30
    )
    attr = f" from='{sender}'" if sender else ""
    assert isinstance(t.handle(iq(f"<iq type='result' id='r1'{attr}/>")), IqResult)


def test_error_response_carries_the_condition() -> None:
    t = tracker()
    t.request(iq("<iq type='set' id='e1' to='example.com'><x xmlns='y'/></iq>"), now=0, timeout=30)
    outcome = t.handle(
        iq(
            "<iq type='error' id='e1' from='example.com'><error type='cancel'>"
            "<service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"
        )
    )
    assert isinstance(outcome, IqError)
    assert outcome.error.condition is StanzaErrorCondition.SERVICE_UNAVAILABLE


def test_deadline_reports_timeouts_once() -> None:
    t = tracker()
    t.request(iq("<iq type='get' id='t1' to='a@b'/>"), now=10, timeout=5)
    t.request(iq("<iq type='get' id='t2' to='a@b'/>"), now=10, timeout=50)
    assert t.next_deadline() == 15
    assert t.handle_timer(14) == []
    assert t.handle_timer(15) == [IqTimeout("t1")]
    assert t.handle_timer(100) == [IqTimeout("t2")]
    assert t.next_deadline() is None


def test_results_are_not_requests() -> None:
    with pytest.raises(ValueError):
        tracker().request(iq("<iq type='result' id='x'/>"), now=0, timeout=1)
