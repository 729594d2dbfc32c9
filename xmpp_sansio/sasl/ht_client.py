"""The client side of the Hashed Token mechanisms HT-* (draft-schmaus-kitten-sasl-ht
§3, used by XEP-0484 FAST): one round trip, no PBKDF2.

``HT-<hash>-<cb>``: ``<cb>`` is ``NONE`` (no channel binding), ``UNIQ``
(``tls-unique``), ``EXPR`` (``tls-exporter``) or ``ENDP``
(``tls-server-end-point``). The initial response is ``authcid NUL
HMAC(token, "Initiator" || cb-data)`` (§3.1); the server proves it knows the
token with ``HMAC(token, "Responder" || cb-data)`` in the success data
(§3.2), checked here in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Final

from .channel_binding import TLS_EXPORTER, TLS_SERVER_END_POINT, TLS_UNIQUE, ChannelBinding
from .common import ClientMechanism, SASLClientError

__all__ = ["HT_CHANNEL_BINDINGS", "HTClient", "ht_binding_type", "is_ht_mechanism"]

HT_CHANNEL_BINDINGS: Final[dict[str, str | None]] = {
    "NONE": None,
    "UNIQ": TLS_UNIQUE,
    "EXPR": TLS_EXPORTER,
    "ENDP": TLS_SERVER_END_POINT,
}
"""The channel binding type of each HT suffix (draft §2)."""

_HASHES: Final[dict[str, str]] = {"SHA-256": "sha256", "SHA-512": "sha512", "SHA3-512": "sha3_512"}


def _split(name: str) -> tuple[str, str] | None:
    if not name.startswith("HT-"):
        return None
    hash_part, _, cb = name[3:].rpartition("-")
    if hash_part not in _HASHES or cb not in HT_CHANNEL_BINDINGS:
        return None
    return _HASHES[hash_part], cb


def is_ht_mechanism(name: str) -> bool:
    """Whether ``name`` is an HT mechanism this client implements."""
    return _split(name) is not None


def ht_binding_type(name: str) -> str | None:
    """The channel binding type HT mechanism ``name`` needs (None: none)."""
    parts = _split(name)
    if parts is None:
        raise ValueError(f"not an HT mechanism: {name!r}")
    return HT_CHANNEL_BINDINGS[parts[1]]


class HTClient(ClientMechanism):
    """The initiator of an HT exchange with ``token``; ``channel_binding``
    must be of the type the name asks for (none for ``-NONE``)."""

    def __init__(
        self,
        name: str,
        *,
        username: str,
        token: str,
        channel_binding: ChannelBinding | None = None,
    ) -> None:
        parts = _split(name)
        if parts is None:
            raise ValueError(f"not an HT mechanism: {name!r}")
        super().__init__(name)
        self._hash, cb = parts
        wanted = HT_CHANNEL_BINDINGS[cb]
        if wanted is not None and (channel_binding is None or channel_binding.type != wanted):
            raise ValueError(f"{name} needs {wanted} channel binding data")
        if "\x00" in username or not username or not token:
            raise ValueError("HT needs a username without NUL and a token")
        self._username = username.encode("utf-8")
        self._key = token.encode("utf-8")
        self._cb = b"" if wanted is None or channel_binding is None else channel_binding.data

    def _mac(self, label: bytes) -> bytes:
        return hmac.new(self._key, label + self._cb, getattr(hashlib, self._hash)).digest()

    def _initial_response(self) -> bytes:
        return self._username + b"\x00" + self._mac(b"Initiator")

    def _challenge(self, data: bytes) -> bytes:
        raise SASLClientError("HT takes no challenge")

    def _success(self, data: bytes | None) -> None:
        if data is None or not hmac.compare_digest(data, self._mac(b"Responder")):
            raise SASLClientError("the server did not prove it knows the token")
