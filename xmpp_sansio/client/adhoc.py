"""Ad-hoc commands (XEP-0050) from the client side, sans-IO: the requests to
list commands and to run one, and the reading of the answers.

* :func:`commands_query`: the disco#items ``<query/>`` of the ``commands``
  node (XEP-0050 §2.2), read back with :func:`parse_command_list`;
* :func:`command_request`: a ``<command/>`` with an action, the session id
  and a submitted form (§3.4);
* :func:`parse_command_response`: a result's ``<command/>``: status,
  session id, allowed actions (and the default), notes and form.

The I/O layer sends them as iq ``set``/``get`` and loops; see
:func:`xmpp_trio.adhoc.run_command`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final
from xml.etree.ElementTree import Element

from ..disco import DiscoItem, items_query, parse_disco_items
from ..forms import Form, build_form, parse_form

__all__ = [
    "NS_COMMANDS",
    "CommandResponse",
    "command_request",
    "commands_query",
    "parse_command_list",
    "parse_command_response",
]

NS_COMMANDS: Final = "http://jabber.org/protocol/commands"
_C: Final = f"{{{NS_COMMANDS}}}"
_ACTIONS: Final = ("prev", "next", "complete")


@dataclass(frozen=True, slots=True)
class CommandResponse:
    """A ``<command/>`` answer (XEP-0050 §3.4)."""

    node: str
    sessionid: str | None
    status: str
    actions: tuple[str, ...] = ()
    default: str | None = None
    notes: tuple[tuple[str, str], ...] = ()  # (type, text)
    form: Form | None = None

    @property
    def executing(self) -> bool:
        return self.status == "executing"


def commands_query() -> Element:
    """The disco#items query of the commands node (XEP-0050 §2.2)."""
    return items_query(NS_COMMANDS)


def parse_command_list(query: Element) -> tuple[DiscoItem, ...]:
    """The commands of a disco#items answer."""
    return parse_disco_items(query).items


def command_request(
    node: str,
    action: str = "execute",
    sessionid: str | None = None,
    form: Form | None = None,
) -> Element:
    """A ``<command/>`` payload for an iq ``set`` (XEP-0050 §3.4)."""
    el = Element(f"{_C}command", {"node": node, "action": action})
    if sessionid is not None:
        el.set("sessionid", sessionid)
    if form is not None:
        el.append(build_form(form))
    return el


def parse_command_response(command: Element) -> CommandResponse:
    """Read a ``<command/>`` answer; raises ``ValueError`` if it is not one."""
    if command.tag != f"{_C}command":
        raise ValueError(f"not an ad-hoc command answer: {command.tag}")
    node = command.get("node") or ""
    status = command.get("status") or "executing"
    actions_el = command.find(f"{_C}actions")
    actions: tuple[str, ...] = ()
    default = None
    if actions_el is not None:
        actions = tuple(a for a in _ACTIONS if actions_el.find(f"{_C}{a}") is not None)
        default = actions_el.get("execute") or (actions[-1] if actions else None)
    notes = tuple((n.get("type") or "info", n.text or "") for n in command.findall(f"{_C}note"))
    x = command.find("{jabber:x:data}x")
    form = parse_form(x) if x is not None else None
    return CommandResponse(node, command.get("sessionid"), status, actions, default, notes, form)
