"""XEP-0313 requests and answers as elements: the query form and its RSM
set (XEP-0059) parsed into an :class:`~.store.ArchiveQuery`, result
messages, ``<fin/>``, preferences and metadata."""

from __future__ import annotations

from dataclasses import dataclass
from xml.etree.ElementTree import Element, SubElement, fromstring

from ...delay import delay_element, format_datetime, parse_datetime
from ...errors import StanzaErrorCondition
from ...forms import FormError, parse_form
from ...jid import JID, InvalidJID
from .store import ArchivedMessage, ArchivePage, ArchiveQuery, Prefs

__all__ = [
    "EXTENDED",
    "MAM",
    "QueryError",
    "fin_element",
    "metadata_element",
    "parse_prefs",
    "parse_query",
    "prefs_element",
    "query_form",
    "result_message",
]

MAM = "urn:xmpp:mam:2"
EXTENDED = "urn:xmpp:mam:2#extended"
RSM = "http://jabber.org/protocol/rsm"
FORWARD = "urn:xmpp:forward:0"
DATA = "jabber:x:data"
_KNOWN = frozenset(("FORM_TYPE", "with", "start", "end", "after-id", "before-id", "ids"))


class QueryError(Exception):
    """A query the server refuses with ``condition`` (XEP-0313 §4, §5)."""

    def __init__(self, condition: StanzaErrorCondition, text: str) -> None:
        super().__init__(text)
        self.condition = condition
        self.text = text


@dataclass(frozen=True, slots=True)
class ParsedQuery:
    """A query: the page to load, its ``queryid``, and ``<flip-page/>``."""

    query: ArchiveQuery
    queryid: str | None
    flip: bool


def _bad(text: str) -> QueryError:
    return QueryError(StanzaErrorCondition.BAD_REQUEST, text)


def parse_query(
    el: Element, archive: JID, *, default_max: int, max_page: int, max_ids: int
) -> ParsedQuery:
    """The ``<query xmlns='urn:xmpp:mam:2'/>`` of an iq set (XEP-0313 §4.1).
    ``max`` is capped at ``max_page`` (XEP-0059 §2.1: at most the server's
    limit); raises :class:`QueryError` for a bad form (``bad-request``), an
    unknown field (``feature-not-implemented``, §4.1.3), more than
    ``max_ids`` ids; an RSM ``<index/>`` (XEP-0059 §2.5) is a page by
    position: a non-negative integer, without ``<after/>`` or ``<before/>``."""
    fields: dict[str, tuple[str, ...]] = {}
    x = el.find(f"{{{DATA}}}x")
    if x is not None:
        try:
            form = parse_form(x)
        except FormError as exc:
            raise _bad(f"bad form: {exc}") from None
        if form.form_type not in (None, MAM):
            raise _bad("FORM_TYPE is not urn:xmpp:mam:2")
        for f in form.fields:
            if f.var is None:
                continue
            if f.var not in _KNOWN:
                raise QueryError(
                    StanzaErrorCondition.FEATURE_NOT_IMPLEMENTED, f"unknown field {f.var!r}"
                )
            fields[f.var] = tuple(v.strip() for v in f.values if v.strip())

    def one(var: str) -> str | None:
        values = fields.get(var, ())
        if len(values) > 1:
            raise _bad(f"field {var!r} has several values")
        return values[0] if values else None

    with_: JID | None = None
    if (raw := one("with")) is not None:
        try:
            with_ = JID.parse(raw)
        except InvalidJID:
            raise _bad("'with' is not a JID") from None
    stamps: dict[str, float | None] = {}
    for var in ("start", "end"):
        raw = one(var)
        try:
            stamps[var] = None if raw is None else parse_datetime(raw)
        except ValueError:
            raise _bad(f"{var!r} is not a date-time") from None
    ids: tuple[str, ...] | None = None
    if "ids" in fields:
        ids = tuple(dict.fromkeys(fields["ids"]))
        if len(ids) > max_ids:
            raise QueryError(StanzaErrorCondition.POLICY_VIOLATION, f"at most {max_ids} ids")
    limit, after, before, index = default_max, None, None, None
    rsm = el.find(f"{{{RSM}}}set")
    if rsm is not None:
        raw_max = rsm.findtext(f"{{{RSM}}}max")
        if raw_max is not None:
            if not raw_max.strip().isdigit():
                raise _bad("RSM max is not a number")
            limit = int(raw_max.strip())
        raw_index = rsm.findtext(f"{{{RSM}}}index")
        if raw_index is not None:
            if not raw_index.strip().isdigit():
                raise _bad("RSM index is not a number")
            # Past any set (XEP-0059 §2.5: an empty page), and a store integer.
            index = min(int(raw_index.strip()), 1 << 62)
        after = rsm.findtext(f"{{{RSM}}}after")
        before_el = rsm.find(f"{{{RSM}}}before")
        before = None if before_el is None else (before_el.text or "")
        if after is not None and not after:
            raise _bad("empty RSM after")
        if after is not None and before is not None:
            raise _bad("RSM after and before together")
        if index is not None and (after is not None or before is not None):
            raise _bad("RSM index with after or before")
    query = ArchiveQuery(
        archive=archive,
        max=min(limit, max_page),
        with_=with_,
        start=stamps["start"],
        end=stamps["end"],
        after_id=one("after-id"),
        before_id=one("before-id"),
        ids=ids,
        after=after,
        before=before,
        index=index,
    )
    return ParsedQuery(query, el.get("queryid"), el.find(f"{{{MAM}}}flip-page") is not None)


def query_form() -> Element:
    """The answer to a form request (XEP-0313 §4.1.1): the fields offered."""
    query = Element(f"{{{MAM}}}query")
    x = SubElement(query, f"{{{DATA}}}x", type="form")
    ft = SubElement(x, f"{{{DATA}}}field", var="FORM_TYPE", type="hidden")
    SubElement(ft, f"{{{DATA}}}value").text = MAM
    for var, kind in (
        ("with", "jid-single"),
        ("start", "text-single"),
        ("end", "text-single"),
        ("after-id", "text-single"),
        ("before-id", "text-single"),
        ("ids", "text-multi"),
    ):
        SubElement(x, f"{{{DATA}}}field", var=var, type=kind)
    return query


def result_message(
    to: JID, queryid: str | None, item: ArchivedMessage, by: JID, *, hide_real: bool = False
) -> Element:
    """One result (XEP-0313 §4.2): the archived message, forwarded
    (XEP-0297) with its archive time (XEP-0203); with ``hide_real`` without
    the room's ``<x xmlns='…muc#user'>`` naming the sender's real JID
    (§5.1.2: only for those who may see it at the time of the query)."""
    msg = Element("{jabber:client}message", {"to": str(to), "from": str(by)})
    attrs = {"id": item.sid}
    if queryid is not None:
        attrs["queryid"] = queryid
    result = SubElement(msg, f"{{{MAM}}}result", attrs)
    forwarded = SubElement(result, f"{{{FORWARD}}}forwarded")
    forwarded.append(delay_element(item.stamp))
    message = fromstring(item.stanza)
    if hide_real:
        for x in message.findall(MUC_USER_X):
            message.remove(x)
    forwarded.append(message)
    return msg


#: The room's note of a sender's real JID in its archive (XEP-0313 §5.1.2).
MUC_USER_X = "{http://jabber.org/protocol/muc#user}x"


def fin_element(page: ArchivePage, *, flip: bool, backward: bool = False) -> Element:
    """The ``<fin/>`` of the iq result (XEP-0313 §4.3, XEP-0059 §2.6). The
    first item's ``index`` (optional, §2.6) is given for pages read forward
    only: slixmpp 1.17 ends a backward walk when index + items = count, so an
    index on the last page would end it after one page."""
    fin = Element(f"{{{MAM}}}fin")
    if page.complete:
        fin.set("complete", "true")
    rsm = SubElement(fin, f"{{{RSM}}}set")
    items = page.items[::-1] if flip else page.items
    if items:
        first = SubElement(rsm, f"{{{RSM}}}first")
        first.text = items[0].sid
        if page.first_index is not None and not flip and not backward:
            first.set("index", str(page.first_index))
        SubElement(rsm, f"{{{RSM}}}last").text = items[-1].sid
    if page.count is not None:
        SubElement(rsm, f"{{{RSM}}}count").text = str(page.count)
    return fin


def metadata_element(first: ArchivedMessage | None, last: ArchivedMessage | None) -> Element:
    """The answer to a metadata query (XEP-0313 §6.2)."""
    meta = Element(f"{{{MAM}}}metadata")
    for tag, item in (("start", first), ("end", last)):
        if item is not None:
            SubElement(meta, f"{{{MAM}}}{tag}", id=item.sid, timestamp=format_datetime(item.stamp))
    return meta


def parse_prefs(el: Element) -> Prefs:
    """A ``<prefs/>`` set (XEP-0313 §6.1); raises :class:`QueryError`."""
    default = el.get("default", "always")
    if default not in ("always", "never", "roster"):
        raise _bad("default is not always, never or roster")
    lists: dict[str, tuple[JID, ...]] = {}
    for name in ("always", "never"):
        jids: list[JID] = []
        for holder in el.iterfind(f"{{{MAM}}}{name}"):
            for j in holder.iterfind(f"{{{MAM}}}jid"):
                try:
                    jids.append(JID.parse((j.text or "").strip()))
                except InvalidJID:
                    raise _bad("bad JID in prefs") from None
        lists[name] = tuple(dict.fromkeys(jids))
    return Prefs(default, lists["always"], lists["never"])


def prefs_element(prefs: Prefs) -> Element:
    """``<prefs/>`` as the server reports it (XEP-0313 §6.1)."""
    el = Element(f"{{{MAM}}}prefs", default=prefs.default)
    for name, jids in (("always", prefs.always), ("never", prefs.never)):
        holder = SubElement(el, f"{{{MAM}}}{name}")
        for jid in jids:
            SubElement(holder, f"{{{MAM}}}jid").text = str(jid)
    return el
