"""The state tables of server-to-server streams (RFC 6120 §4, §13.7; XEP-0220),
in the form and with the driver of :mod:`.state`, rendered in
docs/federation.md and swept in tests/sansio/test_stream_state.py.

Receiving server: the header, then STARTTLS (restart), then SASL EXTERNAL
(restart, then empty features: ready) or dialback (ready as soon as one
domain pair is verified, no restart). Initiating server: the same seen from
the other end; a failed EXTERNAL falls back to dialback.
"""

from __future__ import annotations

from typing import Final

from .state import Action, Input, State, Transitions, _shared

__all__ = ["S2S_INITIATING_TRANSITIONS", "S2S_RECEIVING_TRANSITIONS"]

_S = State
_I = Input
_A = Action

_RECEIVING_STATES: Final = frozenset(
    {_S.AWAIT_HEADER, _S.NEGOTIATING, _S.TLS_PENDING, _S.READY, _S.CLOSING, _S.CLOSED, _S.ERROR}
)
_RECEIVING_LIVE: Final = frozenset({_S.AWAIT_HEADER, _S.NEGOTIATING, _S.READY, _S.CLOSING})
_INITIATING_STATES: Final = _RECEIVING_STATES | {_S.AWAIT_FEATURES, _S.SASL}
_INITIATING_LIVE: Final = _RECEIVING_LIVE | {_S.AWAIT_FEATURES, _S.SASL}

#: The receiving server of an s2s stream. SASL EXTERNAL is one step (the
#: certificate is the credential), so there is no SASL state here.
S2S_RECEIVING_TRANSITIONS: Final[Transitions] = {
    **_shared(_RECEIVING_STATES, _RECEIVING_LIVE),
    (_S.AWAIT_HEADER, _I.PEER_HEADER): (_A.NONE, _S.NEGOTIATING),
    (_S.NEGOTIATING, _I.TLS_STARTED): (_A.NONE, _S.TLS_PENDING),
    (_S.NEGOTIATING, _I.TLS_REFUSED): (_A.CLOSE, _S.CLOSING),
    (_S.TLS_PENDING, _I.LOCAL_TLS_ESTABLISHED): (_A.RESTART, _S.AWAIT_HEADER),
    (_S.NEGOTIATING, _I.SASL_SUCCEEDED): (_A.RESTART, _S.AWAIT_HEADER),
    (_S.NEGOTIATING, _I.SASL_FAILED): (_A.NONE, _S.NEGOTIATING),
    (_S.NEGOTIATING, _I.S2S_AUTHENTICATED): (_A.GO_LIVE, _S.READY),
}

#: The initiating server of an s2s stream.
S2S_INITIATING_TRANSITIONS: Final[Transitions] = {
    **_shared(_INITIATING_STATES, _INITIATING_LIVE),
    (_S.AWAIT_HEADER, _I.PEER_HEADER): (_A.NONE, _S.AWAIT_FEATURES),
    (_S.AWAIT_FEATURES, _I.PEER_FEATURES): (_A.NONE, _S.NEGOTIATING),
    (_S.NEGOTIATING, _I.TLS_STARTED): (_A.NONE, _S.TLS_PENDING),
    (_S.TLS_PENDING, _I.LOCAL_TLS_ESTABLISHED): (_A.RESTART, _S.AWAIT_HEADER),
    (_S.NEGOTIATING, _I.SASL_STARTED): (_A.NONE, _S.SASL),
    (_S.SASL, _I.SASL_SUCCEEDED): (_A.RESTART, _S.AWAIT_HEADER),
    (_S.SASL, _I.SASL_FAILED): (_A.NONE, _S.NEGOTIATING),  # fall back to dialback
    (_S.NEGOTIATING, _I.S2S_AUTHENTICATED): (_A.GO_LIVE, _S.READY),
    (_S.NEGOTIATING, _I.NEGOTIATION_FAILED): (_A.CLOSE, _S.CLOSED),
    (_S.SASL, _I.NEGOTIATION_FAILED): (_A.CLOSE, _S.CLOSED),
}
