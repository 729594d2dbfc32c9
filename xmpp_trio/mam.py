"""Message archive catch-up for Trio clients and bots (XEP-0313): page a
user's archive, or a room's, forward from the last id a device saw."""

from __future__ import annotations

from collections.abc import Callable
from itertools import count
from xml.etree.ElementTree import Element

import trio

from xmpp_sansio.client.mam import ArchiveResult, CatchUp, Fin, parse_fin, parse_result
from xmpp_sansio.jid import JID

from .im import IMClient

__all__ = ["catch_up", "fetch_page"]

_ids = count(1)


async def fetch_page(
    client: IMClient,
    iq: Element,
    queryid: str,
    *,
    other: Callable[[Element], None] | None = None,
    timeout: float = 30.0,
) -> tuple[list[ArchiveResult], Fin]:
    """Send the query ``iq`` and collect its result messages (those with
    ``queryid``) until its iq result; the ``<fin/>``. Other stanzas read from
    :meth:`IMClient.stanzas` meanwhile go to ``other`` (dropped if ``None``).
    Raises what :meth:`IMClient.request` raises for an error answer."""
    results: list[ArchiveResult] = []
    answer: list[Element] = []
    failed: list[Exception] = []
    stanzas = client.stanzas()

    def take(stanza: Element) -> None:
        found = parse_result(stanza)
        if found is not None and found.queryid == queryid:
            results.append(found)
        elif other is not None:
            other(stanza)

    async with trio.open_nursery() as nursery:

        async def ask() -> None:
            try:
                # IMClient keeps its stream private; its own helpers ask it so.
                answer.append(await client._client.request(iq, timeout=timeout))
            except Exception as exc:  # re-raised as it is, not in a group
                failed.append(exc)
            nursery.cancel_scope.cancel()

        nursery.start_soon(ask)
        async for stanza in stanzas:
            take(stanza)
    if failed:
        raise failed[0]
    fin = parse_fin(answer[0]) if answer else None
    if fin is None:
        raise ValueError("the archive answered without <fin/>")
    # The results came before the iq result on the wire, but the iq result
    # is handed over in fewer steps than a message and may overtake the
    # last results: wait for the page's bounds that the <fin/> names
    # (``trio.TooSlowError`` after ``timeout``: never a page with a silent gap).
    with trio.fail_after(timeout):
        while not fin.bounds <= {r.id for r in results}:
            try:
                take(await stanzas.receive())
            except trio.EndOfChannel:
                break
    while True:  # and whatever else is already queued
        try:
            take(stanzas.receive_nowait())
        except (trio.WouldBlock, trio.EndOfChannel):
            break
    return results, fin


async def catch_up(
    client: IMClient,
    since: str | None,
    *,
    room: JID | None = None,
    page: int = 50,
    other: Callable[[Element], None] | None = None,
) -> list[ArchiveResult]:
    """Every archived message after the id ``since`` (``None``: the whole
    archive), oldest first; ``room``: a room's archive instead of the
    user's (bots reading room history). The last result's ``id`` is the
    ``since`` of the next catch-up."""
    walk = CatchUp(since, to=room, page=page)
    out: list[ArchiveResult] = []
    while not walk.done:
        queryid, iq = walk.next_query(f"mam-{next(_ids)}")
        results, fin = await fetch_page(client, iq, queryid, other=other)
        out.extend(results)
        walk.page_done(fin)
    return out
