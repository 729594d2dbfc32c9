"""Stream management (XEP-0198) and client state indication (XEP-0352), the
server side of a c2s stream.

``<enable/>`` is accepted once, after binding (XEP-0198 §3); ``<resume/>``
after authentication and before binding asks the I/O layer for the session
(:class:`ResumeRequested`, answered with :meth:`resume_accepted` or
:meth:`resume_failed`). While the client is inactive (XEP-0352), presence
updates are held, the latest per sender, and flushed on ``<active/>``.
"""

from __future__ import annotations

import math
from xml.etree.ElementTree import Element

from ..errors import LocalProtocolError, StanzaErrorCondition, StreamErrorCondition
from ..sm import (
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
from ..xml import ns
from .events import (
    ResumeRequested,
    StanzasAcknowledged,
    StreamManagementEnabled,
)
from .server_role import _ServerRole
from .state import Input, State


class _ServerSM(_ServerRole):
    """XEP-0198 and XEP-0352 on the server side."""

    def take_held_presences(self) -> list[Element]:
        """Hand over the presence updates held for an inactive client (XEP-0352),
        e.g. to keep them with a detached session; they will not be sent here."""
        return self._held.flush()

    @property
    def sm_resumable(self) -> bool:
        """The session may be kept for resumption now that the transport broke:
        resumption was granted and the stream did not end cleanly (with
        ``</stream:stream>``) or with a stream error (XEP-0198 §5, §7)."""
        sm = self._sm
        return (
            sm is not None
            and sm.resume
            and self._sm_live
            and self._was_ready
            and not self._sent_footer
            and not self._peer_closed
        )

    def resume_accepted(self, state: SMState) -> None:
        """Answer :class:`ResumeRequested`: the session ``state`` (detached from
        its old connection) continues on this stream (XEP-0198 §5).

        Sends ``<resumed/>``, drops what the client's ``h`` acknowledges, sends
        the rest of the queue again, once, and makes the stream ready as the
        session's JID. An ``h`` beyond what was sent closes the stream with
        ``handled-count-too-high`` (§6) and leaves ``state`` unchanged.

        Raises:
            LocalProtocolError: no resumption was requested, or ``state`` is not
                the requested session of the authenticated account.
        """
        request = self._resume_request
        if self._state is not State.AWAIT_RESUME or request is None:
            raise LocalProtocolError("no resumption was requested")
        if state.id != request.previd or not state.resume:
            raise LocalProtocolError("this is not the session the client asked for")
        assert self.authenticated_jid is not None
        if state.jid is None or state.jid.bare != self.authenticated_jid.bare:
            # XEP-0198 §10: resumption only after authentication, and only by the
            # account that owns the session (the SM-ID alone must not be enough).
            raise LocalProtocolError("the session belongs to another account")
        self._resume_request = None
        try:
            acked = state.ack(request.h)
        except HandledCountTooHigh as exc:
            self._handled_count_too_high(exc)
            return
        self._send_element(build_nonza(Resumed(request.previd, state.inbound)))
        if acked:
            self._events.append(StanzasAcknowledged(acked))
        self._attach_resumed(state)
        self._process()

    def resume_failed(self) -> None:
        """Answer :class:`ResumeRequested`: no such session (XEP-0198 §5:
        ``<failed><item-not-found/></failed>``). The client may bind instead."""
        if self._state is not State.AWAIT_RESUME:
            raise LocalProtocolError("no resumption was requested")
        self._resume_request = None
        self._send_sm_failed(StanzaErrorCondition.ITEM_NOT_FOUND)
        self._fire(Input.LOCAL_RESUME_FAILED)
        self._process()

    def _send_sm_failed(self, condition: StanzaErrorCondition) -> None:
        self._send_element(build_nonza(Failed(condition.value)))

    def _handle_resume(self, el: Element) -> None:
        """``<resume/>`` after authentication, before binding (XEP-0198 §5)."""
        try:
            request = parse_nonza(el)
        except SMParseError:
            self._send_sm_failed(StanzaErrorCondition.BAD_REQUEST)
            return
        assert isinstance(request, Resume)
        if self._resume_attempted:
            self._send_sm_failed(StanzaErrorCondition.UNEXPECTED_REQUEST)
            return
        self._resume_attempted = True
        if self.config.sm_resume_timeout <= 0:
            # §5: "If the server does not support session resumption ...
            # SHOULD include an error condition of <feature-not-implemented/>".
            self._send_sm_failed(StanzaErrorCondition.FEATURE_NOT_IMPLEMENTED)
            return
        assert self.authenticated_jid is not None
        self._resume_request = request
        self._fire(Input.RESUME_REQUESTED)
        self._events.append(ResumeRequested(request.previd, request.h, self.authenticated_jid))

    def _handle_sm_ready(self, el: Element) -> None:
        """A XEP-0198 element on a ready stream."""
        if el.tag == ns.SM_RESUME_TAG:
            self._send_sm_failed(StanzaErrorCondition.UNEXPECTED_REQUEST)  # §5: not after bind
            return
        if el.tag != ns.SM_ENABLE_TAG:
            self._handle_ack_nonza(el)
            return
        try:
            request = parse_nonza(el)
        except SMParseError:
            self._send_sm_failed(StanzaErrorCondition.BAD_REQUEST)
            return
        assert isinstance(request, Enable)
        if self._sm is not None:
            # §3: "at most one attempt" (and a resumed stream has it already).
            self._send_sm_failed(StanzaErrorCondition.UNEXPECTED_REQUEST)
            return
        timeout = self.config.sm_resume_timeout
        resume = request.resume and timeout > 0
        sm_id: str | None = None
        max_: int | None = None
        if resume:
            max_ = max(1, math.ceil(timeout))
            if request.max is not None:
                max_ = min(max_, request.max)  # §3: the client's preference, if shorter
            sm_id = self.config.rng(16).hex()  # §5: opaque, never reused, unguessable
        self._send_element(build_nonza(Enabled(sm_id, resume, max_)))
        # §4: both counters start now (after receiving <enable/> and sending <enabled/>).
        self._sm = SMState(id=sm_id, resume=resume, max=max_, jid=self.jid)
        self._sm_live = True
        self._events.append(StreamManagementEnabled(sm_id, resume, max_))

    def _check_unacked(self, sm: SMState) -> None:
        if (
            len(sm.queue) > self.config.sm_max_unacked
            or sm.queued_bytes > self.config.sm_max_unacked_bytes
        ):
            self.close(StreamErrorCondition.RESOURCE_CONSTRAINT, "too many unacknowledged stanzas")
