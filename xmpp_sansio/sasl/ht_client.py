"""The client side of the Hashed Token mechanisms HT-* (draft-schmaus-kitten-sasl-ht
§3, used by XEP-0484 FAST): one round trip, no PBKDF2.

The messages are :mod:`.ht`'s (shared with the server): the initial
response is ``authcid NUL HMAC(token, "Initiator" || cb-data)`` (§3.1); the
server proves it knows the token with ``HMAC(token, "Responder" || cb-data)``
in the success data (§3.2), checked here in constant time. ``cb-data`` is
the binding the name asks for: none (``-NONE``), ``tls-unique`` (``-UNIQ``),
``tls-exporter`` (``-EXPR``), ``tls-server-end-point`` (``-ENDP``).
"""

from __future__ import annotations

import hmac

from .channel_binding import ChannelBinding
from .common import ClientMechanism, SASLClientError
from .ht import HT_MECHANISMS, ht_initiator_message, ht_responder

__all__ = ["HTClient", "ht_binding_type", "is_ht_mechanism"]


def is_ht_mechanism(name: str) -> bool:
    """Whether ``name`` is an HT mechanism this client implements."""
    return name in HT_MECHANISMS


def ht_binding_type(name: str) -> str | None:
    """The channel binding type HT mechanism ``name`` needs (None: none)."""
    if name not in HT_MECHANISMS:
        raise ValueError(f"not an HT mechanism: {name!r}")
    return HT_MECHANISMS[name]


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
        wanted = ht_binding_type(name)
        super().__init__(name)
        if wanted is not None and (channel_binding is None or channel_binding.type != wanted):
            raise ValueError(f"{name} needs {wanted} channel binding data")
        if "\x00" in username or not username or not token:
            raise ValueError("HT needs a username without NUL and a token")
        self._username = username
        self._token = token.encode("utf-8")
        self._cb = b"" if wanted is None or channel_binding is None else channel_binding.data

    def _initial_response(self) -> bytes:
        return ht_initiator_message(self._username, self._token, self._cb)

    def _challenge(self, data: bytes) -> bytes:
        raise SASLClientError("HT takes no challenge")

    def _success(self, data: bytes | None) -> None:
        if data is None or not hmac.compare_digest(data, ht_responder(self._token, self._cb)):
            raise SASLClientError("the server did not prove it knows the token")
