"""Ad-hoc commands (XEP-0050), sans-IO: a registry of commands for one entity,
their sessions, and the ``<command/>`` protocol around them.

A :class:`Command` is stateless: for each stage it gets every form submitted
so far (:class:`Call`) and answers a :class:`Step` (a form to fill, notes,
the actions allowed next, and the outcomes once it completes). The
:class:`AdhocEngine` keeps the sessions (XEP-0050 §3.4): the forms and the
steps shown, so that ``prev`` shows the previous stage again and ``cancel``
forgets them; sessions expire ``session_lifetime`` seconds after their last
step (``now`` comes from the :class:`~xmpp_sansio.server.stages.Context`;
:meth:`AdhocEngine.expire` runs from a service's ``handle_timer``).

Errors (XEP-0050 §4.6): an unknown node is ``item-not-found``, a requester
the command's access rule refuses ``forbidden``, an action the stage does not
allow ``bad-request`` + ``<bad-action/>``, an unknown action ``bad-request`` +
``<malformed-action/>``, an unknown or foreign session ``bad-request`` +
``<bad-sessionid/>``, an expired one ``not-allowed`` + ``<session-expired/>``;
a form that does not fit the stage ``bad-request`` with a ``<text/>`` naming
the field.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Final
from xml.etree.ElementTree import Element, SubElement

from ...disco import DiscoInfo, DiscoItem, DiscoItems, Identity
from ...errors import StanzaErrorCondition
from ...forms import NS_DATA, Form, FormError, FormType, build_form, parse_form, validate_submission
from ...jid import JID
from ...stanza import Iq, error_reply, iq_result
from ..effects import Outcome, Persist, Reply, after_writes
from ..stages import Context

__all__ = [
    "NS_COMMANDS",
    "Action",
    "AdhocEngine",
    "Call",
    "Command",
    "CommandInputError",
    "Note",
    "Step",
]

NS_COMMANDS: Final = "http://jabber.org/protocol/commands"
_COMMAND_TAG: Final = f"{{{NS_COMMANDS}}}command"
_X_TAG: Final = f"{{{NS_DATA}}}x"


class Action(StrEnum):
    """The ``action`` of a ``<command/>`` request (XEP-0050 §3.4)."""

    EXECUTE = "execute"
    NEXT = "next"
    PREV = "prev"
    COMPLETE = "complete"
    CANCEL = "cancel"


@dataclass(frozen=True, slots=True)
class Note:
    """A ``<note/>`` (XEP-0050 §3.4): ``type`` is info, warn or error."""

    text: str
    type: str = "info"


@dataclass(frozen=True, slots=True)
class Step:
    """A command's answer to one stage. With ``actions`` (``next`` and/or
    ``complete``) the command goes on (status ``executing``) and ``form`` is
    what the requester fills; without, it has completed (status
    ``completed``): ``form`` is then the result and ``outcomes`` what it does
    (routes, ``Persist`` writes, ended sessions), carried out with the answer
    (the answer held until the writes are committed)."""

    form: Form | None = None
    notes: tuple[Note, ...] = ()
    actions: tuple[Action, ...] = ()
    outcomes: tuple[Outcome, ...] = ()

    @property
    def completed(self) -> bool:
        return not self.actions


@dataclass(frozen=True, slots=True)
class Call:
    """One stage of a command: who asks, of which entity, and the forms they
    submitted so far (one per stage, oldest first)."""

    requester: JID
    entity: JID
    forms: tuple[Form, ...]


class CommandInputError(ValueError):
    """A submitted form the command cannot use: answered ``bad-request``
    with ``field`` named in the text (the session stays where it was)."""

    def __init__(self, field: str | None, message: str) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field


class Command:
    """One ad-hoc command: its ``node``, its human ``name``, who may run it
    (:meth:`allowed`) and its stages (:meth:`run`)."""

    node: str = ""
    name: str = ""

    def allowed(self, requester: JID) -> bool:
        """XEP-0050 §4.4: may ``requester`` list and run this command?"""
        return True

    def run(self, ctx: Context, call: Call) -> Step:
        """The next stage, given the forms submitted so far."""
        raise NotImplementedError


@dataclass(slots=True)
class _Session:
    id: str
    owner: JID
    node: str
    steps: list[Step]
    forms: list[Form]
    expires: float


def _command_error(
    iq: Iq, condition: StanzaErrorCondition, specific: str | None = None, text: str | None = None
) -> list[Outcome]:
    el = error_reply(iq.element, condition, text=text)
    if specific is not None:
        error = el.find(el.tag.partition("}")[0] + "}error")
        assert error is not None
        error.append(Element(f"{{{NS_COMMANDS}}}{specific}"))
    return [Reply(el)]


class AdhocEngine:
    """The commands of one entity and their sessions (XEP-0050).

    ``session_lifetime``: seconds a session lives after its last step;
    ``max_sessions``: sessions one requester (full JID) may hold at once (a
    new one beyond it is refused with ``resource-constraint``)."""

    def __init__(
        self,
        commands: Iterable[Command] = (),
        *,
        session_lifetime: float = 600.0,
        max_sessions: int = 10,
    ) -> None:
        self.commands: dict[str, Command] = {}
        for command in commands:
            self.add(command)
        self.session_lifetime = session_lifetime
        self.max_sessions = max_sessions
        self._sessions: dict[str, _Session] = {}
        self._expired: dict[str, float] = {}  # id -> when it is forgotten

    def add(self, command: Command) -> None:
        """Register ``command`` (its node must be new)."""
        if not command.node or command.node in self.commands:
            raise ValueError(f"command node {command.node!r} is empty or taken")
        self.commands[command.node] = command

    # -- discovery (XEP-0050 §2) -----------------------------------------------------

    def items(self, requester: JID, entity: JID) -> DiscoItems:
        """disco#items of the ``commands`` node: the commands ``requester``
        may run (XEP-0050 §2.2, §4.4)."""
        return DiscoItems(
            tuple(
                DiscoItem(entity, c.node, c.name)
                for c in self.commands.values()
                if c.allowed(requester)
            ),
            NS_COMMANDS,
        )

    def info(self, node: str, requester: JID) -> DiscoInfo | None:
        """disco#info of a command's node (XEP-0050 §2.3), ``None`` if unknown
        or not the requester's to run."""
        command = self.commands.get(node)
        if command is None or not command.allowed(requester):
            return None
        return DiscoInfo(
            (Identity("automation", "command-node", command.name),),
            (NS_COMMANDS, NS_DATA),
            node=node,
        )

    # -- sessions ---------------------------------------------------------------------

    def sessions(self) -> int:
        """The number of live sessions."""
        return len(self._sessions)

    def next_deadline(self) -> float | None:
        """When the next session expires (or an expired one is forgotten)."""
        times = [s.expires for s in self._sessions.values()]
        times.extend(self._expired.values())
        return min(times) if times else None

    def expire(self, now: float) -> None:
        """Drop the sessions due at ``now``; they answer ``session-expired``
        for one more lifetime, then ``bad-sessionid``."""
        for sid, session in list(self._sessions.items()):
            if session.expires <= now:
                del self._sessions[sid]
                self._expired[sid] = now + self.session_lifetime
        for sid, until in list(self._expired.items()):
            if until <= now:
                del self._expired[sid]

    # -- the <command/> request (XEP-0050 §3) -----------------------------------------

    def handle(self, ctx: Context, iq: Iq, entity: JID) -> list[Outcome]:
        """Answer a ``<command/>`` iq ``set`` addressed to ``entity``."""
        command_el = iq.payload
        assert command_el is not None and command_el.tag == _COMMAND_TAG
        requester = iq.from_
        if requester is None:
            return _command_error(iq, StanzaErrorCondition.BAD_REQUEST)
        if iq.type.value != "set":
            return _command_error(iq, StanzaErrorCondition.BAD_REQUEST)
        node = command_el.get("node")
        command = self.commands.get(node or "")
        if command is None:
            return _command_error(iq, StanzaErrorCondition.ITEM_NOT_FOUND)
        if not command.allowed(requester):
            return _command_error(iq, StanzaErrorCondition.FORBIDDEN)
        raw_action = command_el.get("action", Action.EXECUTE.value)
        try:
            action = Action(raw_action)
        except ValueError:
            return _command_error(iq, StanzaErrorCondition.BAD_REQUEST, "malformed-action")
        sid = command_el.get("sessionid")
        if sid is None:
            if action is not Action.EXECUTE:
                return _command_error(iq, StanzaErrorCondition.BAD_REQUEST, "bad-sessionid")
            return self._start(ctx, iq, command, requester, entity, command_el)
        session = self._sessions.get(sid)
        if session is None:
            if sid in self._expired:
                return _command_error(iq, StanzaErrorCondition.NOT_ALLOWED, "session-expired")
            return _command_error(iq, StanzaErrorCondition.BAD_REQUEST, "bad-sessionid")
        if session.owner != requester or session.node != command.node:
            return _command_error(iq, StanzaErrorCondition.BAD_REQUEST, "bad-sessionid")
        return self._continue(ctx, iq, command, session, action, entity, command_el)

    def _start(
        self,
        ctx: Context,
        iq: Iq,
        command: Command,
        requester: JID,
        entity: JID,
        command_el: Element,
    ) -> list[Outcome]:
        owned = sum(1 for s in self._sessions.values() if s.owner == requester)
        if owned >= self.max_sessions:
            return _command_error(iq, StanzaErrorCondition.RESOURCE_CONSTRAINT)
        forms: tuple[Form, ...] = ()
        # A single-stage command may be executed with its form at once (XEP-0050 §3.4 ex. 7).
        submitted = command_el.find(_X_TAG)
        if submitted is not None:
            try:
                first = parse_form(submitted)
            except FormError as exc:
                return _command_error(iq, StanzaErrorCondition.BAD_REQUEST, text=str(exc))
            if first.type is FormType.SUBMIT:
                forms = (first,)
        try:
            step = command.run(ctx, Call(requester, entity, forms))
        except CommandInputError as exc:
            return _command_error(iq, StanzaErrorCondition.BAD_REQUEST, text=str(exc))
        sid = ctx.rng(12).hex()
        if step.completed:
            return self._answer(iq, command.node, sid, step, can_prev=False)
        self._sessions[sid] = _Session(
            sid, requester, command.node, [step], list(forms), ctx.now + self.session_lifetime
        )
        return self._answer(iq, command.node, sid, step, can_prev=False)

    def _continue(
        self,
        ctx: Context,
        iq: Iq,
        command: Command,
        session: _Session,
        action: Action,
        entity: JID,
        command_el: Element,
    ) -> list[Outcome]:
        current = session.steps[-1]
        if action is Action.CANCEL:
            del self._sessions[session.id]
            return [Reply(iq_result(iq.element, _command_el(command.node, session.id, "canceled")))]
        if action is Action.PREV:
            if len(session.steps) < 2:
                return _command_error(iq, StanzaErrorCondition.BAD_REQUEST, "bad-action")
            session.steps.pop()
            session.forms.pop()
            session.expires = ctx.now + self.session_lifetime
            step = session.steps[-1]
            return self._answer(iq, command.node, session.id, step, len(session.steps) > 1)
        if action is Action.EXECUTE:
            action = current.actions[0]  # the default (XEP-0050 §3.4)
        if action not in current.actions:
            return _command_error(iq, StanzaErrorCondition.BAD_REQUEST, "bad-action")
        submitted = command_el.find(_X_TAG)
        if submitted is None:
            return _command_error(
                iq, StanzaErrorCondition.BAD_REQUEST, text="a submitted data form (jabber:x:data)"
            )
        try:
            form = parse_form(submitted)
        except FormError as exc:
            return _command_error(iq, StanzaErrorCondition.BAD_REQUEST, text=str(exc))
        if form.type is not FormType.SUBMIT:
            return _command_error(
                iq, StanzaErrorCondition.BAD_REQUEST, text="the form's type must be 'submit'"
            )
        if current.form is not None:
            problems = validate_submission(current.form, form)
            if problems:
                return _command_error(
                    iq, StanzaErrorCondition.BAD_REQUEST, text="; ".join(problems)
                )
        forms = (*session.forms, form)
        try:
            step = command.run(ctx, Call(session.owner, entity, forms))
        except CommandInputError as exc:
            return _command_error(iq, StanzaErrorCondition.BAD_REQUEST, text=str(exc))
        if step.completed:
            del self._sessions[session.id]
            return self._answer(iq, command.node, session.id, step, can_prev=False)
        session.steps.append(step)
        session.forms.append(form)
        session.expires = ctx.now + self.session_lifetime
        return self._answer(iq, command.node, session.id, step, can_prev=True)

    def _answer(self, iq: Iq, node: str, sid: str, step: Step, can_prev: bool) -> list[Outcome]:
        status = "completed" if step.completed else "executing"
        el = _command_el(node, sid, status)
        if not step.completed:
            actions = SubElement(el, f"{{{NS_COMMANDS}}}actions", {"execute": step.actions[0]})
            if can_prev:
                SubElement(actions, f"{{{NS_COMMANDS}}}prev")
            for action in step.actions:
                SubElement(actions, f"{{{NS_COMMANDS}}}{action.value}")
        for note in step.notes:
            SubElement(el, f"{{{NS_COMMANDS}}}note", {"type": note.type}).text = note.text
        if step.form is not None:
            el.append(build_form(step.form))
        # A failed write answers the command with an error (Persist.stanza).
        outcomes = [
            replace(o, stanza=iq.element) if type(o) is Persist and o.stanza is None else o
            for o in step.outcomes
        ]
        return after_writes([*outcomes, Reply(iq_result(iq.element, el))])


def _command_el(node: str, sid: str, status: str) -> Element:
    return Element(_COMMAND_TAG, {"node": node, "sessionid": sid, "status": status})


def simple(
    node: str,
    name: str,
    allowed: Callable[[JID], bool],
    stages: Sequence[Form],
    finish: Callable[[Context, Call], Step],
) -> Command:
    """A command of fixed forms: shows ``stages`` in turn (``next`` between
    them, ``complete`` on the last), then answers ``finish`` of all of them."""

    class _Simple(Command):
        def allowed(self, requester: JID) -> bool:
            return allowed(requester)

        def run(self, ctx: Context, call: Call) -> Step:
            done = len(call.forms)
            if done >= len(stages):
                return finish(ctx, call)
            last = done == len(stages) - 1
            actions = (Action.COMPLETE,) if last else (Action.NEXT,)
            return Step(stages[done], actions=actions)

    command = _Simple()
    command.node = node
    command.name = name
    return command
