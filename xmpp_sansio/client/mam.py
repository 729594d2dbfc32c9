"""Client side of message archives (XEP-0313): query builders and result
parsers, and the catch-up walk as a pure state machine (the Trio helper in
:mod:`xmpp_trio.mam` drives it)."""

from __future__ import annotations

from dataclasses import dataclass
from xml.etree.ElementTree import Element, SubElement

from ..delay import find_delay, format_datetime
from ..jid import JID
from ..stanza import IqType, make_iq

__all__ = ["ArchiveResult", "CatchUp", "Fin", "parse_fin", "parse_result", "query_iq"]

MAM = "urn:xmpp:mam:2"
RSM = "http://jabber.org/protocol/rsm"
DATA = "jabber:x:data"
FORWARD = "urn:xmpp:forward:0"


def query_iq(
    id: str,
    queryid: str,
    *,
    to: JID | None = None,
    with_: JID | None = None,
    start: float | None = None,
    end: float | None = None,
    after_id: str | None = None,
    before_id: str | None = None,
    ids: tuple[str, ...] | None = None,
    max: int | None = None,
    after: str | None = None,
    before: str | None = None,
    flip: bool = False,
) -> Element:
    """An archive query (XEP-0313 §4.1) with its form and RSM set
    (XEP-0059 §2); ``to`` a room's JID for a room archive, ``None`` for the
    user's own; ``before=""`` asks for the last page."""
    query = Element(f"{{{MAM}}}query", queryid=queryid)
    fields = {
        "with": None if with_ is None else [str(with_)],
        "start": None if start is None else [format_datetime(start)],
        "end": None if end is None else [format_datetime(end)],
        "after-id": None if after_id is None else [after_id],
        "before-id": None if before_id is None else [before_id],
        "ids": None if ids is None else list(ids),
    }
    if any(v is not None for v in fields.values()):
        x = SubElement(query, f"{{{DATA}}}x", type="submit")
        ft = SubElement(x, f"{{{DATA}}}field", var="FORM_TYPE", type="hidden")
        SubElement(ft, f"{{{DATA}}}value").text = MAM
        for var, values in fields.items():
            if values is not None:
                field = SubElement(x, f"{{{DATA}}}field", var=var)
                for value in values:
                    SubElement(field, f"{{{DATA}}}value").text = value
    if max is not None or after is not None or before is not None:
        rsm = SubElement(query, f"{{{RSM}}}set")
        if max is not None:
            SubElement(rsm, f"{{{RSM}}}max").text = str(max)
        if after is not None:
            SubElement(rsm, f"{{{RSM}}}after").text = after
        if before is not None:
            SubElement(rsm, f"{{{RSM}}}before").text = before or None
    if flip:
        SubElement(query, f"{{{MAM}}}flip-page")
    return make_iq(IqType.SET, id, query, to)


@dataclass(frozen=True, slots=True)
class ArchiveResult:
    """One result message (XEP-0313 §4.2): the archived ``message``, its
    archive ``id``, when it was archived (``stamp``), its ``queryid``."""

    id: str
    queryid: str | None
    stamp: float | None
    message: Element


def parse_result(message: Element) -> ArchiveResult | None:
    """The archive result a message carries, or ``None``."""
    result = message.find(f"{{{MAM}}}result")
    if result is None or result.get("id") is None:
        return None
    forwarded = result.find(f"{{{FORWARD}}}forwarded")
    if forwarded is None:
        return None
    inner = forwarded.find("{jabber:client}message")
    if inner is None:
        return None
    delay = find_delay(forwarded)
    return ArchiveResult(
        result.get("id", ""), result.get("queryid"), None if delay is None else delay.stamp, inner
    )


@dataclass(frozen=True, slots=True)
class Fin:
    """The ``<fin/>`` of a query's iq result (XEP-0313 §4.3)."""

    complete: bool
    first: str | None
    last: str | None
    count: int | None

    @property
    def bounds(self) -> frozenset[str]:
        """The ids of the page's first and last results (XEP-0059 §2.6):
        results a client must have read before the page is whole."""
        return frozenset(i for i in (self.first, self.last) if i is not None)


def parse_fin(iq: Element) -> Fin | None:
    """The ``<fin/>`` of an iq result, or ``None`` if it has none."""
    fin = iq.find(f"{{{MAM}}}fin")
    if fin is None:
        return None
    rsm = fin.find(f"{{{RSM}}}set")

    def text(tag: str) -> str | None:
        return None if rsm is None else rsm.findtext(f"{{{RSM}}}{tag}")

    raw_count = text("count")
    return Fin(
        fin.get("complete") in ("true", "1"),
        text("first"),
        text("last"),
        int(raw_count) if raw_count is not None and raw_count.isdigit() else None,
    )


class CatchUp:
    """Page an archive forward from the last id a device saw (``since``;
    ``None``: from the start): :meth:`next_query` builds each query,
    :meth:`page_done` takes its ``<fin/>``; :attr:`done` once the archive
    has no more (XEP-0313 §4.3 ``complete``)."""

    def __init__(self, since: str | None, *, to: JID | None = None, page: int = 50) -> None:
        self.last = since
        self.to = to
        self.page = page
        self.done = False
        self._n = 0

    def next_query(self, id: str) -> tuple[str, Element]:
        """The next query iq and its queryid."""
        self._n += 1
        queryid = f"catchup-{self._n}"
        return queryid, query_iq(id, queryid, to=self.to, max=self.page, after=self.last)

    def page_done(self, fin: Fin) -> None:
        """The page's ``<fin/>`` came: go on after its last item."""
        if fin.last is not None:
            self.last = fin.last
        self.done = fin.complete or fin.last is None
