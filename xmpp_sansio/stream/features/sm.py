"""Stream management (XEP-0198): the server's stream feature plug-in.

``<enable/>`` is accepted once, after binding (§3); ``<resume/>`` after
authentication and before binding asks the I/O layer for the session
(:class:`ResumeRequested`, answered with ``ResumeAccepted`` or
``ResumeRejected``). Counting and ``<r/>``/``<a/>``, which both roles share,
are in :mod:`..sm_stream`; the state is ``conn._sm`` (an
:class:`~xmpp_sansio.sm.SMState` that can outlive the connection).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from xml.etree.ElementTree import Element

from ...errors import LocalProtocolError, StanzaErrorCondition
from ...sm import (
    Enable,
    Enabled,
    Failed,
    HandledCountTooHigh,
    Resume,
    Resumed,
    SMParseError,
    SMState,
    build_nonza,
    parse_nonza,
)
from ...xml import ns
from ..answers import Answer, ResumeAccepted, ResumeRejected
from ..config import ServerConfig
from ..events import Event, ResumeRequested, StanzasAcknowledged, StreamManagementEnabled
from ..state import Input, State
from .base import FeatureHost, Stage

__all__ = ["SMFeature"]

_SM_ACK_TAGS = ("{" + ns.SM + "}r", "{" + ns.SM + "}a")


class SMFeature:
    """XEP-0198 §2: ``<sm/>``, once authenticated."""

    def offer(self, conn: FeatureHost) -> Iterator[Element]:
        if conn.config.stream_management and conn._sm is None:  # none once on (XEP-0386)
            yield Element(ns.SM_TAG)

    def claims(self, stage: Stage, config: ServerConfig) -> Iterable[str]:
        """``<enable/>``/``<resume/>`` at every stage (refused before
        authentication, §3 and §5), the whole namespace once ready (§4)."""
        if not config.stream_management:
            return ()
        if stage is Stage.READY:
            return ("{" + ns.SM + "}", ns.SM_ENABLE_TAG, ns.SM_RESUME_TAG, *_SM_ACK_TAGS)
        return (ns.SM_ENABLE_TAG, ns.SM_RESUME_TAG)

    def handle(self, conn: FeatureHost, stage: Stage, el: Element) -> bool:
        if stage is Stage.READY:
            _handle_ready(conn, el)
        elif stage is Stage.BIND and el.tag == ns.SM_RESUME_TAG:
            _handle_resume(conn, el)
        else:
            # §3: enable only after binding ("SHALL enforce this order"); §5:
            # resume only after authentication.
            _send_failed(conn, StanzaErrorCondition.UNEXPECTED_REQUEST)
        return True

    def answers(self) -> tuple[type[Answer], ...]:
        return (ResumeAccepted, ResumeRejected)

    def answer(self, conn: FeatureHost, answer: Answer) -> None:
        if isinstance(answer, ResumeAccepted):
            _resume_accepted(conn, answer.state)
            return
        # §5: no such session, <failed><item-not-found/></failed>; the client may bind.
        if conn.state is not State.AWAIT_RESUME:
            raise LocalProtocolError("no resumption was requested")
        conn._resume_request = None
        failed = build_nonza(Failed(StanzaErrorCondition.ITEM_NOT_FOUND.value))
        if conn._pending_success is None:
            conn._send_element(failed)
        conn._fire(Input.LOCAL_RESUME_FAILED)
        if conn._pending_success is not None:  # inline in SASL2 (XEP-0386 §3.2)
            conn._inline_resume_answered(failed)
        conn._process()


def _send_failed(conn: FeatureHost, condition: StanzaErrorCondition) -> None:
    conn._send_element(build_nonza(Failed(condition.value)))


def _resume_accepted(conn: FeatureHost, state: SMState) -> None:
    """The session ``state`` (detached from its old connection) continues on
    this stream (§5): ``<resumed/>``, drop what the client's ``h``
    acknowledges, send the rest of the queue again, once, and make the stream
    ready as the session's JID. An ``h`` beyond what was sent closes the
    stream with ``handled-count-too-high`` (§6) and leaves ``state`` unchanged.
    """
    request = conn._resume_request
    if conn.state is not State.AWAIT_RESUME or request is None:
        raise LocalProtocolError("no resumption was requested")
    if state.id != request.previd or not state.resume:
        raise LocalProtocolError("this is not the session the client asked for")
    assert conn.authenticated_jid is not None
    if state.jid is None or state.jid.bare != conn.authenticated_jid.bare:
        # §10: resumption only after authentication, and only by the account
        # that owns the session (the SM-ID alone must not be enough).
        raise LocalProtocolError("the session belongs to another account")
    conn._resume_request = None
    try:
        acked = state.ack(request.h)
    except HandledCountTooHigh as exc:
        conn._handled_count_too_high(exc)
        return
    resumed = build_nonza(Resumed(request.previd, state.inbound))
    if conn._pending_success is not None:  # inline in SASL2: inside <success/>
        conn._sm, conn.jid = state, state.jid  # the features after it: no <sm/>, no <bind/>
        conn._inline_resume_answered(resumed)
    else:
        conn._send_element(resumed)
    if acked:
        conn._events.append(StanzasAcknowledged(acked))
    conn._attach_resumed(state)
    conn._process()


def _handle_resume(conn: FeatureHost, el: Element) -> None:
    """``<resume/>`` after authentication, before binding (§5)."""
    try:
        request = parse_nonza(el)
    except SMParseError:
        _send_failed(conn, StanzaErrorCondition.BAD_REQUEST)
        return
    assert isinstance(request, Resume)
    if conn._resume_attempted:
        _send_failed(conn, StanzaErrorCondition.UNEXPECTED_REQUEST)
        return
    conn._resume_attempted = True
    if conn.config.sm_resume_timeout <= 0:
        # §5: "If the server does not support session resumption ... SHOULD
        # include an error condition of <feature-not-implemented/>".
        _send_failed(conn, StanzaErrorCondition.FEATURE_NOT_IMPLEMENTED)
        return
    assert conn.authenticated_jid is not None
    conn._resume_request = request
    conn._fire(Input.RESUME_REQUESTED)
    conn._events.append(ResumeRequested(request.previd, request.h, conn.authenticated_jid))


def _handle_ready(conn: FeatureHost, el: Element) -> None:
    """A XEP-0198 element on a ready stream."""
    if el.tag == ns.SM_RESUME_TAG:
        _send_failed(conn, StanzaErrorCondition.UNEXPECTED_REQUEST)  # §5: not after bind
        return
    if el.tag != ns.SM_ENABLE_TAG:
        conn._handle_ack_nonza(el)
        return
    try:
        request = parse_nonza(el)
    except SMParseError:
        _send_failed(conn, StanzaErrorCondition.BAD_REQUEST)
        return
    assert isinstance(request, Enable)
    if conn._sm is not None:
        # §3: "at most one attempt" (and a resumed stream has it already).
        _send_failed(conn, StanzaErrorCondition.UNEXPECTED_REQUEST)
        return
    events: list[Event] = []
    conn._send_element(enable_stream_management(conn, request, events))
    conn._events.extend(events)


def enable_stream_management(conn: FeatureHost, request: Enable, events: list[Event]) -> Element:
    """Turn XEP-0198 on for the bound stream (§3) and return ``<enabled/>``
    (sent by the caller: at once, or in Bind 2's ``<bound/>``); the
    :class:`StreamManagementEnabled` event goes to ``events``."""
    timeout = conn.config.sm_resume_timeout
    resume = request.resume and timeout > 0
    sm_id: str | None = None
    max_: int | None = None
    if resume:
        max_ = max(1, math.ceil(timeout))
        if request.max is not None:
            max_ = min(max_, request.max)  # §3: the client's preference, if shorter
        sm_id = conn.config.rng(16).hex()  # §5: opaque, never reused, unguessable
    # §4: both counters start now (after receiving <enable/> and sending <enabled/>).
    conn._sm = SMState(id=sm_id, resume=resume, max=max_, jid=conn.jid)
    conn._sm_live = True
    events.append(StreamManagementEnabled(sm_id, resume, max_))
    return build_nonza(Enabled(sm_id, resume, max_))
