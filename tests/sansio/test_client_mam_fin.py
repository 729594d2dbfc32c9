"""The client's reading of a MAM query's ``<fin/>`` (XEP-0313 §4.3, RSM
XEP-0059 §2.6): the ids a page must hold before it is whole."""

from __future__ import annotations

from xml.etree.ElementTree import fromstring

from xmpp_sansio.client.mam import parse_fin


def fin_iq(rsm: str) -> str:
    return (
        "<iq xmlns='jabber:client' type='result' id='q1'>"
        "<fin xmlns='urn:xmpp:mam:2' complete='true'>"
        f"<set xmlns='http://jabber.org/protocol/rsm'>{rsm}</set></fin></iq>"
    )


def test_a_page_is_bounded_by_its_first_and_last_ids() -> None:
    fin = parse_fin(fromstring(fin_iq("<first>a1</first><last>a9</last><count>9</count>")))
    assert fin is not None and fin.complete and fin.count == 9
    assert fin.bounds == {"a1", "a9"}


def test_an_empty_page_waits_for_no_result() -> None:
    fin = parse_fin(fromstring(fin_iq("<count>0</count>")))
    assert fin is not None and fin.bounds == frozenset()
