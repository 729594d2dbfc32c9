"""aioxmpp (0.13, default settings apart from trusting the test CA) reads a
message archive (XEP-0313) for the MAM wire test.

aioxmpp ships no MAM service, only the parts a MAM query is made of: its
IQ machinery, XEP-0059 result set management (``aioxmpp.rsm``), XEP-0004
forms (``aioxmpp.forms``) and XEP-0297 forwarding (``aioxmpp.misc``). The
three XEP-0313 v2 elements (``query``, ``fin``, ``result``, §4) are
declared here as XSOs on those parts, the way an aioxmpp application
would; everything on the wire is aioxmpp's.

Usage: aioxmpp_mam.py JID PASSWORD HOST PORT CAFILE TO COUNT

Sends COUNT chat messages ``m0``... to TO, then prints one JSON line per
way of reading the archive: ``{"event": "forward", "bodies": [...],
"pages": N}`` (pages of 5 after the last id of the previous page, until
``complete``), ``{"event": "reverse", ...}`` (pages of 5 before the first
id, from the last page: an empty ``<before/>``), ``{"event": "with",
"count": N, "bodies": [...]}`` (one page with a ``with`` filter and no
``max``), then ``{"event": "end"}``.
"""

from __future__ import annotations

import asyncio
import sys

import aioxmpp
import aioxmpp.dispatcher
import aioxmpp.forms
import aioxmpp.misc
import aioxmpp.rsm.xso as rsm
import aioxmpp.xso as xso
from aioxmpp_common import emit, make_client

MAM = "urn:xmpp:mam:2"


@aioxmpp.IQ.as_payload_class
class Query(xso.XSO):  # type: ignore[misc]
    """XEP-0313 §4: ``<query/>`` with its form and result set."""

    TAG = (MAM, "query")
    queryid = xso.Attr("queryid", default=None)
    form = xso.Child([aioxmpp.forms.Data])
    rsm = xso.Child([rsm.ResultSetMetadata])


@aioxmpp.IQ.as_payload_class
class Fin(xso.XSO):  # type: ignore[misc]
    """XEP-0313 §4.2: the ``<fin/>`` that ends a query."""

    TAG = (MAM, "fin")
    complete = xso.Attr("complete", type_=xso.Bool(), default=False)
    rsm = xso.Child([rsm.ResultSetMetadata])


class Result(xso.XSO):  # type: ignore[misc]
    """XEP-0313 §4.2: one archived message, forwarded (XEP-0297)."""

    TAG = (MAM, "result")
    queryid = xso.Attr("queryid", default=None)
    id_ = xso.Attr("id")
    forwarded = xso.Child([aioxmpp.misc.Forwarded])


aioxmpp.Message.xep0313_result = xso.Child([Result])


class Archive:
    """Queries of one client; the results of a query are collected by its id."""

    def __init__(self, client: aioxmpp.Client) -> None:
        self.client = client
        self.results: dict[str, list[Result]] = {}
        self.serial = 0
        dispatcher = client.summon(aioxmpp.dispatcher.SimpleMessageDispatcher)
        dispatcher.register_callback(None, None, self._on_message)

    def _on_message(self, message: aioxmpp.Message) -> None:
        result = message.xep0313_result
        if result is not None and result.queryid in self.results:
            self.results[result.queryid].append(result)

    async def query(
        self, page: rsm.ResultSetMetadata | None, with_: str | None = None
    ) -> tuple[list[Result], Fin]:
        """One query (XEP-0313 §4.1): its results, in the order they came, and its fin."""
        self.serial += 1
        queryid = f"q{self.serial}"
        self.results[queryid] = []
        form = aioxmpp.forms.Data(aioxmpp.forms.DataType.SUBMIT)
        form.fields.append(
            aioxmpp.forms.Field(type_=aioxmpp.forms.FieldType.HIDDEN, var="FORM_TYPE", values=[MAM])
        )
        if with_ is not None:
            form.fields.append(aioxmpp.forms.Field(var="with", values=[with_]))
        query = Query()
        query.queryid, query.form, query.rsm = queryid, form, page
        iq = aioxmpp.IQ(type_=aioxmpp.IQType.SET, payload=query)
        fin = await self.client.send(iq)
        # The results precede the fin on the stream (§4.2); they are
        # dispatched in order before the IQ's answer is.
        return self.results.pop(queryid), fin


def bodies(results: list[Result]) -> list[str]:
    return [r.forwarded.stanza.body.any() for r in results]


async def read_pages(archive: Archive, *, forward: bool) -> None:
    """Page the whole archive by 5 (XEP-0059 §2.2 and §2.5): forward from the
    start, after each page's last id; backward from an empty ``<before/>``,
    before each page's first id. Emits the bodies oldest first."""
    got: list[str] = []
    page = rsm.ResultSetMetadata.limit(5) if forward else rsm.ResultSetMetadata.last_page(5)
    pages = 0
    while True:
        results, fin = await archive.query(page)
        pages += 1
        got = got + bodies(results) if forward else bodies(results) + got
        edge = None if fin.rsm is None else fin.rsm.last if forward else fin.rsm.first
        if fin.complete or edge is None:
            break
        page = fin.rsm.next_page(max_=5) if forward else fin.rsm.previous_page(max_=5)
    emit(
        event="forward" if forward else "reverse", bodies=got if forward else got[::-1], pages=pages
    )


async def main() -> None:
    jid, password, host, port, cafile, to, count = sys.argv[1:8]
    client = make_client(jid, password, host, port, cafile)
    archive = Archive(client)
    async with client.connected():
        for i in range(int(count)):
            message = aioxmpp.Message(type_=aioxmpp.MessageType.CHAT, to=aioxmpp.JID.fromstr(to))
            message.body[None] = f"m{i}"
            await client.send(message)
        await read_pages(archive, forward=True)
        await read_pages(archive, forward=False)
        results, fin = await archive.query(None, with_=to)
        emit(
            event="with",
            count=fin.rsm.count if fin.rsm is not None else None,
            complete=fin.complete,
            bodies=bodies(results),
        )
    emit(event="end")


if __name__ == "__main__":
    asyncio.run(asyncio.wait_for(main(), 60))
