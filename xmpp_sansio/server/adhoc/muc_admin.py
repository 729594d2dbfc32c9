"""An administrator's ad-hoc command to destroy a chat room (XEP-0045 §10.9,
as the room's owner would): node ``destroy-room`` on the server's JID, with
the room's JID and an optional reason. Every occupant leaves with
``<destroy/>``; a persistent room is deleted from the store."""

from __future__ import annotations

from collections.abc import Callable
from xml.etree.ElementTree import Element, SubElement

from ...forms import Field, FieldType, Form, FormType
from ...jid import JID, InvalidJID
from ..muc.admin import destroy_room
from ..muc.service import MucService
from ..muc.stanzas import MUC_OWNER
from ..stages import Context
from .engine import Call, Command, CommandInputError, Note, Step, simple

__all__ = ["destroy_room_command"]


def destroy_room_command(muc: MucService, is_admin: Callable[[JID], bool]) -> Command:
    """The ``destroy-room`` command for the MUC service ``muc``."""

    def finish(ctx: Context, call: Call) -> Step:
        form = call.forms[-1]
        raw = (form.value("roomjid") or "").strip()
        try:
            jid = JID.parse(raw)
        except InvalidJID:
            raise CommandInputError("roomjid", f"{raw!r} is not a JID") from None
        room = muc.rooms.get(jid.bare)
        if room is None:
            raise CommandInputError("roomjid", f"there is no room {raw!r}")
        destroy = Element(f"{{{MUC_OWNER}}}destroy")
        reason = (form.value("reason") or "").strip()
        if reason:
            SubElement(destroy, f"{{{MUC_OWNER}}}reason").text = reason[:1024]
        outcomes = destroy_room(room, destroy)
        muc.rooms.pop(room.jid, None)
        return Step(notes=(Note(f"{room.jid} destroyed"),), outcomes=tuple(outcomes))

    form = Form(
        FormType.FORM,
        title="Destroying a Chat Room",
        fields=(
            Field("roomjid", FieldType.JID_SINGLE, "The room's JID", required=True),
            Field("reason", FieldType.TEXT_SINGLE, "Reason"),
        ),
    )
    return simple("destroy-room", "Destroy Chat Room", lambda r: is_admin(r.bare), [form], finish)
