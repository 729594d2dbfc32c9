"""The Hashed Token mechanisms HT-SHA-256-NONE/-UNIQ/-EXPR/-ENDP
(draft-schmaus-kitten-sasl-ht §3-§5), used by FAST (XEP-0484).

One round trip: the client sends ``authcid NUL initiator-hashed-token``
with ``initiator-hashed-token = HMAC-SHA-256(token, "Initiator" || cb-data)``;
the server answers in its success data with ``HMAC-SHA-256(token,
"Responder" || cb-data)``. ``cb-data`` is empty for ``-NONE`` and the
connection's channel binding of the suffix's type otherwise (``UNIQ``:
tls-unique, ``EXPR``: tls-exporter, ``ENDP``: tls-server-end-point). The
token is the shared secret itself, so a server must keep it (encrypted at
rest), not a hash. Comparisons are constant-time (XEP-0484 §6).
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Final

from .channel_binding import TLS_EXPORTER, TLS_SERVER_END_POINT, TLS_UNIQUE, ChannelBinding
from .common import SASLCondition, SASLFailure

__all__ = [
    "HT_MECHANISMS",
    "ht_channel_binding",
    "ht_initiator_message",
    "ht_responder",
    "parse_ht_initial",
    "verify_ht",
]

#: the mechanism names by their channel binding type (None: no binding)
HT_MECHANISMS: Final[dict[str, str | None]] = {
    "HT-SHA-256-ENDP": TLS_SERVER_END_POINT,
    "HT-SHA-256-EXPR": TLS_EXPORTER,
    "HT-SHA-256-UNIQ": TLS_UNIQUE,
    "HT-SHA-256-NONE": None,
}


def ht_channel_binding(mechanism: str, bindings: tuple[ChannelBinding, ...]) -> bytes | None:
    """The ``cb-data`` of ``mechanism`` on a connection with ``bindings``
    (``b""`` for ``-NONE``); None: the connection lacks that binding."""
    wanted = HT_MECHANISMS[mechanism]
    if wanted is None:
        return b""
    for binding in bindings:
        if binding.type == wanted:
            return binding.data
    return None


def _hmac(token: bytes, label: bytes, cb_data: bytes) -> bytes:
    return hmac.new(token, label + cb_data, hashlib.sha256).digest()


def ht_initiator_message(authcid: str, token: bytes, cb_data: bytes = b"") -> bytes:
    """The client's initial response (draft-schmaus-kitten-sasl-ht §3.1)."""
    return authcid.encode() + b"\x00" + _hmac(token, b"Initiator", cb_data)


def ht_responder(token: bytes, cb_data: bytes = b"") -> bytes:
    """The server's success data (§3.2): the responder hashed token."""
    return _hmac(token, b"Responder", cb_data)


def parse_ht_initial(data: bytes | None) -> tuple[str, bytes]:
    """Split the initial response into the username and the initiator hashed
    token; ``malformed-request`` if it is not ``authcid NUL 32 bytes``."""
    if not data or b"\x00" not in data:
        raise SASLFailure(SASLCondition.MALFORMED_REQUEST, "expected authcid NUL hashed-token")
    raw_name, _, hashed = data.partition(b"\x00")
    try:
        name = raw_name.decode()
    except UnicodeDecodeError:
        raise SASLFailure(SASLCondition.MALFORMED_REQUEST, "authcid is not UTF-8") from None
    if not name or len(hashed) != hashlib.sha256().digest_size:
        raise SASLFailure(SASLCondition.MALFORMED_REQUEST, "expected authcid NUL hashed-token")
    return name, hashed


def verify_ht(token: bytes, hashed: bytes, cb_data: bytes) -> bool:
    """Whether ``hashed`` is the initiator hashed token of ``token`` (constant time)."""
    return hmac.compare_digest(_hmac(token, b"Initiator", cb_data), hashed)
