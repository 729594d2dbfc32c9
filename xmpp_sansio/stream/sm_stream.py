"""Stream management (XEP-0198) as both roles share it: the public SM API,
answering ``<r/>`` and taking ``<a/>``, and attaching a resumed session.
The counting of sent stanzas and the ack requests stay in base.py, on the
hot path of every stanza."""

from __future__ import annotations

from xml.etree.ElementTree import Element

from ..errors import LocalProtocolError, StreamErrorCondition
from ..sm import (
    Ack,
    AckRequest,
    HandledCountTooHigh,
    SMParseError,
    SMState,
    build_nonza,
    handled_count_too_high,
    parse_nonza,
)
from .base import _Connection
from .events import StanzasAcknowledged, StreamResumed
from .state import Input, State


class _SMStream(_Connection):
    """A stream that may run XEP-0198 (both c2s roles)."""

    @property
    def sm(self) -> SMState | None:
        """The XEP-0198 state of this stream: ``None`` until ``<enable/>`` was sent
        (client) or received (server), or the stream was resumed. Keep it to
        resume the session on a later connection (XEP-0198 §5)."""
        return self._sm

    @property
    def sm_enabled(self) -> bool:
        """Stream management is on: acks flow and stanzas are counted (XEP-0198 §3)."""
        return self._sm_live

    def request_ack(self) -> None:
        """Queue ``<r/>``: ask the peer which stanzas it handled (XEP-0198 §4)."""
        sm = self._require_sm()
        self._queue_ack_request(sm)

    def send_ack(self) -> None:
        """Queue an unrequested ``<a h/>`` (XEP-0198 §4: "at any time")."""
        sm = self._require_sm()
        self._send_element(build_nonza(Ack(sm.inbound)))

    def _require_sm(self) -> SMState:
        sm = self._sm
        if sm is None or not self._sm_live or self._state is not State.READY:
            raise LocalProtocolError("stream management is not enabled on a ready stream")
        return sm

    def _count_inbound(self) -> None:
        if self._sm is not None and self._sm_live:
            self._sm.count_inbound()

    def _handle_ack_nonza(self, el: Element) -> None:
        """``<r/>`` or ``<a/>`` on a stream with stream management on (XEP-0198 §4);
        anything else in the namespace is ``unsupported-stanza-type``."""
        sm = self._sm
        try:
            nonza = parse_nonza(el)
        except SMParseError as exc:
            self._stream_error(StreamErrorCondition.BAD_FORMAT, str(exc))
            return
        if sm is None or not self._sm_live:
            self._stream_error(
                StreamErrorCondition.UNSUPPORTED_STANZA_TYPE, "stream management is not enabled"
            )
            return
        if isinstance(nonza, AckRequest):
            # §4: "MUST acknowledge it ... as soon as possible".
            self._send_element(build_nonza(Ack(sm.inbound)))
        elif isinstance(nonza, Ack):
            try:
                acked = sm.ack(nonza.h)
            except HandledCountTooHigh as exc:
                self._handled_count_too_high(exc)
                return
            if acked:
                self._events.append(StanzasAcknowledged(acked))
        else:
            self._stream_error(StreamErrorCondition.UNSUPPORTED_STANZA_TYPE)

    def _handled_count_too_high(self, exc: HandledCountTooHigh) -> None:
        """XEP-0198 §6: ``undefined-condition`` with ``<handled-count-too-high/>``."""
        self._stream_error(
            StreamErrorCondition.UNDEFINED_CONDITION, str(exc), handled_count_too_high(exc)
        )

    def _attach_resumed(self, sm: SMState) -> None:
        """Carry on the resumed session ``sm`` (XEP-0198 §5): ready as its JID,
        with everything still unacknowledged sent again, once. Retransmitted
        stanzas keep their sequence numbers: they are not counted again."""
        assert sm.jid is not None
        self._sm = sm
        self._sm_live = True
        sm.requested = sm.acked  # nothing requested on this stream yet
        self.jid = sm.jid
        self._fire(Input.RESUMED)
        retransmitted = sm.unacked
        for stanza in retransmitted:
            self._out.append(self._serialize(stanza, self._default_ns))
        self._events.append(StreamResumed(sm.jid, retransmitted))
