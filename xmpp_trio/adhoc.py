"""Ad-hoc commands (XEP-0050) from a Trio :class:`~xmpp_trio.client.Client`:
list an entity's commands and run one to the end, answering each stage's
form with a callback. The protocol is :mod:`xmpp_sansio.client.adhoc`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from xml.etree.ElementTree import Element

from xmpp_sansio.client.adhoc import (
    CommandResponse,
    command_request,
    commands_query,
    parse_command_list,
    parse_command_response,
)
from xmpp_sansio.disco import DiscoItem
from xmpp_sansio.forms import Form
from xmpp_sansio.stanza import IqType, make_iq

from .client import Client

__all__ = ["MAX_STAGES", "list_commands", "run_command"]

#: The most stages :func:`run_command` goes through before it cancels.
MAX_STAGES = 32

Answer = Callable[[CommandResponse], Awaitable[Form | None]]


def _payload(iq: Element) -> Element:
    child = next(iter(iq), None)
    if child is None:
        raise ValueError("an empty answer")
    return child


async def list_commands(client: Client, jid: str) -> tuple[DiscoItem, ...]:
    """The commands ``jid`` offers this client (XEP-0050 §2.2)."""
    answer = await client.request(make_iq(IqType.GET, "", commands_query(), to=jid))
    return parse_command_list(_payload(answer))


async def run_command(
    client: Client, jid: str, node: str, answer: Answer | None = None
) -> CommandResponse:
    """Run the command ``node`` at ``jid``: execute it, then give each stage's
    form to ``answer`` and submit what it returns (``complete`` when the stage
    allows it, else ``next``); ``None`` from ``answer`` (or no ``answer``)
    cancels. Returns the last answer (``completed`` or ``canceled``); raises
    :class:`~xmpp_trio.client.IqErrorResponse` for an error."""

    async def send(payload: Element) -> CommandResponse:
        iq = await client.request(make_iq(IqType.SET, "", payload, to=jid))
        return parse_command_response(_payload(iq))

    response = await send(command_request(node))
    for _ in range(MAX_STAGES):
        if not response.executing:
            return response
        form = None if answer is None else await answer(response)
        if form is None:
            return await send(command_request(node, "cancel", response.sessionid))
        action = "complete" if "complete" in response.actions else "next"
        response = await send(command_request(node, action, response.sessionid, form))
    return await send(command_request(node, "cancel", response.sessionid))
