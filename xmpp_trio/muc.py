"""Multi-user chat (XEP-0045) for Trio clients: join, leave, talk, change
nick, configure, manage affiliations and roles, invite.

:class:`Rooms` sends the stanzas built by :mod:`xmpp_sansio.client.muc` over a
stream with ``send`` and ``request`` (a :class:`~xmpp_trio.client.Client`),
and follows the joined rooms from the stanzas its owner hands to
:meth:`Rooms.feed` (the owner reads the stream: an ``IMClient`` with
``presence_stanzas=True`` passes every stanza on, a bot its dispatcher)::

    rooms = Rooms(client)
    nursery.start_soon(pump)          # for stanza in im.stanzas(): rooms.feed(stanza)
    view = await rooms.join(JID.parse("lobby@conference.localhost"), "juliet")
    await rooms.say(view.room, "Hello")
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Protocol
from xml.etree.ElementTree import Element

import trio

from xmpp_sansio.client import muc
from xmpp_sansio.client.muc import RoomEvent, RoomEventKind, RoomView
from xmpp_sansio.forms import Form, parse_form
from xmpp_sansio.jid import JID
from xmpp_sansio.server.muc.permissions import Affiliation, Role
from xmpp_sansio.server.muc.room import parse_jid
from xmpp_sansio.server.muc.stanzas import MUC_ADMIN, MUC_OWNER

__all__ = ["JoinError", "Rooms"]


class _Stream(Protocol):
    async def send(self, stanza: Element) -> None: ...
    async def request(self, iq: Element, *, timeout: float = 30.0) -> Element: ...


class JoinError(Exception):
    """The room refused the join (§7.2): ``condition`` says why."""

    def __init__(self, room: JID, condition: str) -> None:
        super().__init__(f"{room}: {condition}")
        self.room = room
        self.condition = condition


class Rooms:
    """The rooms of one client session (see the module docstring)."""

    def __init__(self, stream: _Stream, *, timeout: float = 30.0) -> None:
        self.stream = stream
        self.timeout = timeout
        self.views: dict[JID, RoomView] = {}
        self._waiting: dict[JID, tuple[trio.Event, list[RoomEvent]]] = {}
        self._changed = trio.Event()

    def room_of(self, stanza: Element) -> JID | None:
        """The room ``stanza`` comes from, if this client is in it or joining it."""
        sender = parse_jid(stanza.get("from"))
        return None if sender is None or sender.bare not in self.views else sender.bare

    def feed(self, stanza: Element) -> RoomEvent | None:
        """Note a received stanza; the room event it makes, if any (a
        presence or the subject of a room this client joins or joined)."""
        room = self.room_of(stanza)
        if room is None:
            return None
        view = self.views[room]
        if stanza.tag.endswith("}message"):
            view.handle_message(stanza)
            return None
        if not stanza.tag.endswith("}presence"):
            return None
        event = view.handle_presence(stanza)
        self._changed.set()
        self._changed = trio.Event()
        waiting = self._waiting.get(room)
        if (
            event is not None
            and waiting is not None
            and event.kind
            in (
                RoomEventKind.JOINED,
                RoomEventKind.JOIN_FAILED,
            )
        ):
            waiting[1].append(event)
            waiting[0].set()
        return event

    async def join(
        self,
        room: JID,
        nick: str,
        *,
        password: str | None = None,
        maxstanzas: int | None = None,
        seconds: int | None = None,
    ) -> RoomView:
        """Enter ``room`` as ``nick`` and wait for the room's answer (§7.2.2);
        raises :class:`JoinError` with the error condition if refused."""
        room = room.bare
        view = self.views.setdefault(room, RoomView(room))
        done = trio.Event()
        self._waiting[room] = (done, [])
        try:
            await self.stream.send(
                muc.join_presence(
                    room, nick, password=password, maxstanzas=maxstanzas, seconds=seconds
                )
            )
            with trio.fail_after(self.timeout):
                await done.wait()
            (event,) = self._waiting[room][1][:1]
        finally:
            del self._waiting[room]
        if event.kind is RoomEventKind.JOIN_FAILED:
            if not view.joined:
                del self.views[room]
            raise JoinError(room, event.condition or "undefined-condition")
        return view

    async def wait_joined(self, room: JID) -> RoomView:
        """Wait until this client is in ``room`` (joined through :meth:`send_join`)."""
        while True:
            view = self.views.get(room.bare)
            if view is not None and view.joined:
                return view
            await self._changed.wait()

    async def send_join(self, room: JID, nick: str, *, maxstanzas: int | None = None) -> None:
        """Send the join without waiting (the room's answer arrives through
        :meth:`feed`), as a bot does for the rooms in its file."""
        self.views.setdefault(room.bare, RoomView(room.bare))
        await self.stream.send(muc.join_presence(room.bare, nick, maxstanzas=maxstanzas))

    async def leave(self, room: JID, status: str | None = None) -> None:
        view = self.views.pop(room.bare, None)
        if view is not None and view.nick is not None:
            await self.stream.send(muc.leave_presence(room.bare, view.nick, status))

    async def say(self, room: JID, body: str) -> None:
        """§7.4: a message to everyone in ``room``."""
        await self.stream.send(muc.groupchat(room.bare, body))

    async def change_nick(self, room: JID, nick: str) -> None:
        """§7.6 (the room answers through :meth:`feed`)."""
        await self.stream.send(muc.nick_presence(room.bare, nick))

    async def get_config(self, room: JID) -> Form:
        """§10.2: the room's configuration form (owners only)."""
        answer = await self.stream.request(muc.config_request(room.bare, ""), timeout=self.timeout)
        x = answer.find(f"{{{MUC_OWNER}}}query/{{jabber:x:data}}x")
        if x is None:
            raise ValueError("the room sent no configuration form")
        return parse_form(x)

    async def configure(
        self, room: JID, values: Mapping[str, str | bool | int | Iterable[str]]
    ) -> None:
        """§10.2: submit ``values`` (none: accept the defaults, an instant room)."""
        await self.stream.request(muc.config_submit(room.bare, "", values), timeout=self.timeout)

    async def set_affiliation(
        self, room: JID, jid: JID, affiliation: Affiliation | str, reason: str | None = None
    ) -> None:
        await self.stream.request(
            muc.affiliation_request(room.bare, "", jid, affiliation, reason), timeout=self.timeout
        )

    async def get_affiliations(self, room: JID, affiliation: Affiliation | str) -> list[JID]:
        answer = await self.stream.request(
            muc.affiliation_list_request(room.bare, "", affiliation), timeout=self.timeout
        )
        items = answer.iter(f"{{{MUC_ADMIN}}}item")
        return [JID.parse(item.get("jid", "")) for item in items if item.get("jid")]

    async def set_role(
        self, room: JID, nick: str, role: Role | str, reason: str | None = None
    ) -> None:
        """Kick (``none``), voice (``participant``/``visitor``), moderator."""
        await self.stream.request(
            muc.role_request(room.bare, "", nick, role, reason), timeout=self.timeout
        )

    async def invite(
        self, room: JID, jid: JID, reason: str | None = None, *, direct: bool = False
    ) -> None:
        """Mediated (§7.8.2) or, with ``direct``, XEP-0249 invitation."""
        if direct:
            await self.stream.send(muc.direct_invitation(jid, room.bare, reason=reason))
        else:
            await self.stream.send(muc.mediated_invitation(room.bare, jid, reason))

    async def destroy(
        self, room: JID, *, reason: str | None = None, venue: JID | None = None
    ) -> None:
        await self.stream.request(
            muc.destroy_request(room.bare, "", reason=reason, venue=venue), timeout=self.timeout
        )
