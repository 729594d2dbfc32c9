"""SCRAM-SHA-1, SCRAM-SHA-256, SCRAM-SHA-512 and their ``-PLUS`` variants.

The exchange is RFC 5802 §5 (messages), §3 (the proof and signature
arithmetic) and §7 (grammar); SCRAM-SHA-256 is RFC 7677 §3 and SCRAM-SHA-512
the same construction with SHA-512. In short::

    C: gs2-header client-first-message-bare     n,,n=user,r=<c-nonce>
    S: server-first-message                     r=<c-nonce><s-nonce>,s=<salt>,i=<count>
    C: client-final-message                     c=<b64(gs2-header [cb-data])>,r=<nonce>,p=<proof>
    S: server-final-message                     v=<server signature>   (or e=<error>)

``AuthMessage`` is ``client-first-message-bare "," server-first-message ","
client-final-message-without-proof``, ``ClientProof := ClientKey XOR
HMAC(StoredKey, AuthMessage)`` and ``ServerSignature := HMAC(ServerKey,
AuthMessage)``; the keys come from :mod:`.credentials`.

Channel binding (RFC 5802 §6) follows the gs2-cbind-flag: ``p=<type>`` with a
``-PLUS`` mechanism only, ``y`` when the client could bind but the server did
not offer ``-PLUS`` (which the server treats as a downgrade attack if it did
offer it), ``n`` otherwise.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable
from typing import Final

from .channel_binding import ChannelBinding
from .common import (
    Authenticated,
    Challenge,
    ClientMechanism,
    MissingCredentials,
    NeedCredentials,
    SASLClientError,
    SASLCondition,
    ServerMechanism,
    ServerStep,
    UnsupportedChannelBinding,
    b64decode,
    b64encode,
    decode_utf8,
    escape_saslname,
    prepare_username,
    unescape_saslname,
)
from .credentials import (
    ScramCredentials,
    keys_from_salted_password,
    normalize_password,
    salted_password,
)

SCRAM_MECHANISMS: Final = {
    "SCRAM-SHA-1": "sha1",
    "SCRAM-SHA-256": "sha256",
    "SCRAM-SHA-512": "sha512",
    "SCRAM-SHA-1-PLUS": "sha1",
    "SCRAM-SHA-256-PLUS": "sha256",
    "SCRAM-SHA-512-PLUS": "sha512",
}
"""SCRAM mechanism names (RFC 5802 §4, RFC 7677 §3) and their hashlib hash names."""

MIN_CLIENT_ITERATIONS: Final = 4096
"""The smallest iteration count a client accepts from a server (RFC 5802 §5.1,
RFC 7677 §4: at least 4096).

The client's proof is computed with the count the server names: a fake or
hostile server asking for i=1 gets a proof it can brute-force the password
from almost for free, so fewer is refused before any proof is sent.
"""

MAX_CLIENT_ITERATIONS: Final = 10_000_000
"""The largest iteration count a client accepts from a server: a bound so that
a hostile server cannot make the client hash for hours."""

DECOY_SALT_LENGTH: Final = 16
"""Length of the made-up salt sent for unknown users; store real salts this long too."""

_PRINTABLE = re.compile(r"[\x21-\x2b\x2d-\x7e]+")  # RFC 5802 §7 "printable"
_POSIT_NUMBER = re.compile(r"[1-9][0-9]{0,9}")  # RFC 5802 §7 "posit-number", bounded
_ATTR_VAL = re.compile(r"[A-Za-z]=[^,\x00]+")  # RFC 5802 §7 "attr-val" (an extension)
_CB_NAME = re.compile(r"[A-Za-z0-9.-]+")  # RFC 5802 §7 "cb-name"


def scram_hash_name(mechanism: str) -> str | None:
    """The hashlib name of a SCRAM mechanism (``"SCRAM-SHA-256-PLUS"`` -> ``"sha256"``).

    ``None`` if ``mechanism`` is not a SCRAM mechanism.
    """
    return SCRAM_MECHANISMS.get(mechanism)


def _hmac(key: bytes, message: bytes, hash_name: str) -> bytes:
    return hmac.new(key, message, hash_name).digest()


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


def _extensions_valid(attributes: list[str]) -> bool:
    return all(_ATTR_VAL.fullmatch(attribute) for attribute in attributes)


class ScramClient(ClientMechanism):
    """The client side of a SCRAM mechanism (RFC 5802 §5).

    ``client_nonce`` is already printable (RFC 5802 §7: ASCII 0x21-0x7E except
    ``,``); :func:`~.mechanisms.create_client_mechanism` makes one from random
    bytes. ``server_supports_plus`` (the server offered some ``-PLUS``
    mechanism) chooses the gs2-cbind-flag of a non-PLUS mechanism: ``y`` if
    this client has ``channel_binding`` but the server offered no ``-PLUS``,
    ``n`` otherwise (no channel binding here, or the server offered ``-PLUS``
    and this client still chose not to bind, e.g. for lack of a common
    channel binding type). A ``-PLUS`` mechanism needs ``channel_binding`` and
    sends ``p=<type>``.

    The username is prepared (:func:`.common.prepare_username`) and escaped
    (RFC 5802 §5.1), the password normalised (:func:`.credentials.normalize_password`);
    invalid ones, a bad nonce or a missing channel binding raise ValueError.
    The server signature may come with ``<success/>`` (RFC 6120 §6.3.10) or in a
    last ``<challenge/>``, answered with an empty response (RFC 4422 §4).
    """

    def __init__(
        self,
        name: str,
        *,
        username: str,
        password: str,
        client_nonce: str,
        authzid: str | None = None,
        channel_binding: ChannelBinding | None = None,
        server_supports_plus: bool = False,
    ) -> None:
        hash_name = scram_hash_name(name)
        if hash_name is None:
            raise ValueError(f"not a SCRAM mechanism: {name!r}")
        super().__init__(name)
        if _PRINTABLE.fullmatch(client_nonce) is None:
            raise ValueError("the SCRAM nonce must be printable ASCII without ','")
        if authzid is not None and "\x00" in authzid:
            raise ValueError("the authzid must not contain NUL")
        self._hash_name = hash_name
        self._password = normalize_password(password)
        self._client_nonce = client_nonce
        cb_data = b""
        if name.endswith("-PLUS"):
            if channel_binding is None:
                raise ValueError(f"{name} needs channel binding data")
            flag = f"p={channel_binding.type}"
            cb_data = channel_binding.data
        elif channel_binding is not None and not server_supports_plus:
            flag = "y"
        else:
            flag = "n"
        authz = "" if not authzid else f"a={escape_saslname(authzid)}"
        gs2_header = f"{flag},{authz},"
        self._cbind_input = gs2_header.encode("utf-8") + cb_data
        user = escape_saslname(prepare_username(username))
        self._first_bare = f"n={user},r={client_nonce}"
        self._client_first = f"{gs2_header}{self._first_bare}".encode()
        self._server_signature = b""
        self._state = "first"  # -> "final" (client-final sent) -> "verified"

    def _initial_response(self) -> bytes | None:
        return self._client_first

    def _challenge(self, data: bytes) -> bytes:
        if self._state == "first":
            self._state = "final"
            return self._client_final(data)
        if self._state == "final":
            # RFC 4422 §4: server-final as a challenge, answered with an empty response.
            self._verify_server_final(data)
            self._state = "verified"
            return b""
        raise SASLClientError("unexpected challenge after the server-final-message")

    def _success(self, data: bytes | None) -> None:
        if self._state == "first":
            raise SASLClientError("success before the SCRAM exchange took place")
        if self._state == "final":
            if not data:
                raise SASLClientError("success without the server signature")
            self._verify_server_final(data)
            self._state = "verified"
        elif data:
            self._verify_server_final(data)

    def _client_final(self, data: bytes) -> bytes:
        text = decode_utf8(data)
        if text is None:
            raise SASLClientError("server-first-message is not UTF-8")
        attributes = text.split(",")
        if attributes[0].startswith("m="):
            raise SASLClientError("server-first-message has an unsupported mandatory extension")
        if len(attributes) < 3 or not _extensions_valid(attributes[3:]):
            raise SASLClientError("malformed server-first-message")
        nonce_attr, salt_attr, count_attr = attributes[:3]
        nonce = nonce_attr.removeprefix("r=")
        if (
            not nonce_attr.startswith("r=")
            or _PRINTABLE.fullmatch(nonce) is None
            or not nonce.startswith(self._client_nonce)
            or len(nonce) == len(self._client_nonce)
        ):
            raise SASLClientError("the server nonce does not extend the client nonce")
        salt = b64decode(salt_attr.removeprefix("s=")) if salt_attr.startswith("s=") else None
        if not salt:
            raise SASLClientError("missing, empty or malformed salt")
        count = count_attr.removeprefix("i=")
        if not count_attr.startswith("i=") or _POSIT_NUMBER.fullmatch(count) is None:
            raise SASLClientError("missing or malformed iteration count")
        iterations = int(count)
        if iterations > MAX_CLIENT_ITERATIONS:
            raise SASLClientError(f"iteration count {iterations} is too large")
        if iterations < MIN_CLIENT_ITERATIONS:
            raise SASLClientError(
                f"iteration count {iterations} is below {MIN_CLIENT_ITERATIONS} (RFC 5802 §5.1)"
            )

        without_proof = f"c={b64encode(self._cbind_input)},r={nonce}"
        auth_message = f"{self._first_bare},{text},{without_proof}".encode()
        salted = salted_password(self._password, self._hash_name, salt, iterations)
        self._password = ""
        client_key, stored_key, server_key = keys_from_salted_password(salted, self._hash_name)
        client_signature = _hmac(stored_key, auth_message, self._hash_name)
        proof = _xor(client_key, client_signature)
        self._server_signature = _hmac(server_key, auth_message, self._hash_name)
        return f"{without_proof},p={b64encode(proof)}".encode()

    def _verify_server_final(self, data: bytes) -> None:
        text = decode_utf8(data)
        if text is None:
            raise SASLClientError("server-final-message is not UTF-8")
        first = text.split(",", 1)[0]
        if first.startswith("e="):
            raise SASLClientError(f"the server reported an error: {first[2:]!r}")
        signature = b64decode(first[2:]) if first.startswith("v=") else None
        if signature is None:
            raise SASLClientError("malformed server-final-message")
        if not hmac.compare_digest(signature, self._server_signature):
            raise SASLClientError("wrong server signature: the server does not know the password")


class ScramServer(ServerMechanism):
    """The server side of a SCRAM mechanism (RFC 5802 §5).

    ``server_nonce`` is the server's printable nonce part;
    :func:`~.mechanisms.create_server_mechanism` makes one from random bytes.
    ``channel_bindings`` is the binding data this connection supports, by type;
    ``advertised_plus`` says whether the ``-PLUS`` mechanisms were offered.

    Failures (RFC 6120 §6.5 conditions):

    * syntax errors, non-UTF-8 data, bad base64 inside a message, an unknown
      mandatory extension ``m=``: ``malformed-request``;
    * ``p=`` with a non-PLUS mechanism: ``malformed-request``, since GS2
      (RFC 5801, RFC 5802 §6) ties the ``p`` flag to the ``-PLUS`` name and
      this client-first-message cannot belong to the chosen mechanism;
    * ``y`` while ``-PLUS`` was advertised (a downgrade, RFC 5802 §6), ``n`` or
      ``y`` with a ``-PLUS`` mechanism, a ``c=`` that does not match, a wrong
      nonce, a wrong proof and an unknown user: ``not-authorized``;
    * an unsupported channel binding type: :class:`.common.UnsupportedChannelBinding`
      (``not-authorized`` that does not count as an attempt).

    An unknown user (``provide_credentials(None)``) gets a decoy
    server-first-message: a salt of :data:`DECOY_SALT_LENGTH` bytes derived
    from ``decoy_key`` and the username, ``decoy_iterations`` iterations, and
    fails only at the proof, exactly like a wrong password. With a fixed,
    secret ``decoy_key`` the decoy salt of a username is stable across
    attempts, as a real one is; without one it is derived from the nonce and
    changes per attempt, which a patient prober can notice. Credentials of
    another hash (an account without this one, e.g. imported with SHA-1
    only) get the same decoy and fail with :class:`.common.MissingCredentials`
    (the same ``not-authorized``, not counted: nothing was checked).
    """

    def __init__(
        self,
        name: str,
        *,
        server_nonce: str,
        channel_bindings: Iterable[ChannelBinding] = (),
        advertised_plus: bool = False,
        decoy_key: bytes | None = None,
        decoy_iterations: int = 4096,
        advertised: tuple[tuple[str, ...], tuple[str, ...] | None] | None = None,
    ) -> None:
        hash_name = scram_hash_name(name)
        if hash_name is None:
            raise ValueError(f"not a SCRAM mechanism: {name!r}")
        super().__init__(name, hash_name)
        #: XEP-0474: the mechanisms and channel binding types advertised, for ``h=``
        self._ssdp = None if advertised is None else ssdp_hash(*advertised, hash_name)
        if _PRINTABLE.fullmatch(server_nonce) is None:
            raise ValueError("the SCRAM nonce must be printable ASCII without ','")
        if decoy_iterations < 1:
            raise ValueError("decoy_iterations must be positive")
        self._scram_hash = hash_name
        self._plus = name.endswith("-PLUS")
        self._bindings = {binding.type: binding.data for binding in channel_bindings}
        if self._plus and not self._bindings:
            raise ValueError(f"{name} needs channel binding data")
        self._advertised_plus = advertised_plus
        self._server_nonce = server_nonce
        self._decoy_key = decoy_key if decoy_key is not None else server_nonce.encode()
        self._decoy_iterations = decoy_iterations
        self._state = "start"  # -> "first" -> "credentials" -> "final"
        self._username = ""
        self._authzid: str | None = None
        self._cbind_input = b""
        self._first_bare = ""
        self._nonce = ""
        self._server_first = ""
        self._credentials: ScramCredentials | None = None
        self._missing_hash = False

    def _start(self, initial_response: bytes | None) -> ServerStep:
        if initial_response is None:
            self._state = "first"
            return Challenge(b"")
        return self._client_first(initial_response)

    def _respond(self, data: bytes) -> ServerStep:
        if self._state == "first":
            return self._client_first(data)
        if self._state == "final":
            return self._client_final(data)
        self._fail(SASLCondition.MALFORMED_REQUEST, "unexpected response")

    def _client_first(self, data: bytes) -> ServerStep:
        malformed = SASLCondition.MALFORMED_REQUEST
        text = decode_utf8(data)
        if text is None:
            self._fail(malformed, "client-first-message is not UTF-8")
        parts = text.split(",", 2)
        if len(parts) != 3:
            self._fail(malformed, "missing gs2-header")
        flag, authz, bare = parts
        cb_name: str | None = None
        if flag.startswith("p=") and _CB_NAME.fullmatch(flag[2:]):
            cb_name = flag[2:]
        elif flag not in ("n", "y"):
            self._fail(malformed, "bad gs2-cbind-flag")
        authzid: str | None = None
        if authz:
            authzid = unescape_saslname(authz[2:]) if authz.startswith("a=") else None
            if authzid is None:
                self._fail(malformed, "bad authzid")
        attributes = bare.split(",")
        if attributes[0].startswith("m="):
            self._fail(malformed, "unsupported mandatory extension")
        if len(attributes) < 2 or not _extensions_valid(attributes[2:]):
            self._fail(malformed, "malformed client-first-message")
        user_attr, nonce_attr = attributes[:2]
        username = unescape_saslname(user_attr[2:]) if user_attr.startswith("n=") else None
        if username is None:
            self._fail(malformed, "missing or malformed username")
        client_nonce = nonce_attr.removeprefix("r=")
        if not nonce_attr.startswith("r=") or _PRINTABLE.fullmatch(client_nonce) is None:
            self._fail(malformed, "missing or malformed nonce")

        # Channel binding negotiation, RFC 5802 §6.
        denied = SASLCondition.NOT_AUTHORIZED
        if self._plus:
            if cb_name is None:
                self._fail(denied, f"{self.name} requires channel binding")
            if cb_name not in self._bindings:
                self._done = True
                raise UnsupportedChannelBinding(cb_name)
            self._cbind_input = f"{flag},{authz},".encode() + self._bindings[cb_name]
        else:
            if cb_name is not None:
                self._fail(malformed, f"channel binding requested with {self.name}")
            if flag == "y" and self._advertised_plus:
                self._fail(denied, "channel binding downgrade detected")
            self._cbind_input = f"{flag},{authz},".encode()

        self._username = username
        self._authzid = authzid
        self._first_bare = bare
        self._nonce = client_nonce + self._server_nonce
        self._state = "credentials"
        return NeedCredentials(username)

    def _provide_credentials(self, credentials: ScramCredentials | None) -> ServerStep:
        if self._state != "credentials":
            self._fail(SASLCondition.MALFORMED_REQUEST, "no credentials were asked for")
        if credentials is not None and credentials.hash_name != self._scram_hash:
            # The account lacks this hash (imported SHA-1-only): the decoy
            # exchange of an unknown user, then an uncounted failure.
            self._missing_hash = True
            credentials = None
        if credentials is None:
            salt = hmac.new(
                self._decoy_key,
                b"SCRAM decoy salt\x00%s\x00%s"
                % (self._scram_hash.encode(), self._username.encode("utf-8")),
                "sha256",
            ).digest()[:DECOY_SALT_LENGTH]
            iterations = self._decoy_iterations
        else:
            salt, iterations = credentials.salt, credentials.iterations
        self._credentials = credentials
        self._server_first = f"r={self._nonce},s={b64encode(salt)},i={iterations}"
        if self._ssdp is not None:  # XEP-0474 §4.1: an optional attribute
            self._server_first += f",h={self._ssdp}"
        self._state = "final"
        return Challenge(self._server_first.encode())

    def _client_final(self, data: bytes) -> ServerStep:
        malformed = SASLCondition.MALFORMED_REQUEST
        denied = SASLCondition.NOT_AUTHORIZED
        text = decode_utf8(data)
        if text is None:
            self._fail(malformed, "client-final-message is not UTF-8")
        attributes = text.split(",")
        if len(attributes) < 3 or not _extensions_valid(attributes[2:-1]):
            self._fail(malformed, "malformed client-final-message")
        cb_attr, nonce_attr, proof_attr = attributes[0], attributes[1], attributes[-1]
        cbind_input = b64decode(cb_attr[2:]) if cb_attr.startswith("c=") else None
        if cbind_input is None:
            self._fail(malformed, "missing or malformed channel binding attribute")
        if not nonce_attr.startswith("r="):
            self._fail(malformed, "missing nonce")
        proof = b64decode(proof_attr[2:]) if proof_attr.startswith("p=") else None
        digest_size = hashlib.new(self._scram_hash).digest_size
        if proof is None or len(proof) != digest_size:
            self._fail(malformed, "missing or malformed proof")
        if not hmac.compare_digest(cbind_input, self._cbind_input):
            self._fail(denied, "channel binding mismatch")
        if nonce_attr[2:] != self._nonce:
            self._fail(denied, "nonce mismatch")

        credentials = self._credentials
        if credentials is None and self._missing_hash:
            self._done = True
            raise MissingCredentials
        if credentials is None:
            self._fail(denied, checked=True)  # unknown user: the same as a wrong proof
        without_proof = ",".join(attributes[:-1])
        auth_message = f"{self._first_bare},{self._server_first},{without_proof}".encode()
        client_signature = _hmac(credentials.stored_key, auth_message, self._scram_hash)
        client_key = _xor(proof, client_signature)
        stored_key = hashlib.new(self._scram_hash, client_key).digest()
        if not hmac.compare_digest(stored_key, credentials.stored_key):
            self._fail(denied, checked=True)
        server_signature = _hmac(credentials.server_key, auth_message, self._scram_hash)
        self._credentials = None
        return Authenticated(
            username=self._username,
            authzid=self._authzid,
            additional_data=b"v=" + b64encode(server_signature).encode("ascii"),
        )


def ssdp_hash(
    mechanisms: Iterable[str], channel_bindings: Iterable[str] | None, hash_name: str
) -> str:
    """XEP-0474 §4.1: the base64 hash (of the SCRAM mechanism's hash) of the
    advertised mechanisms, sorted (i;octet) and joined by ``0x1E``, then, when
    XEP-0440 advertised channel binding types (``channel_bindings`` not None),
    ``0x1F`` and those types sorted and joined by ``0x1E``."""
    text = "\x1e".join(sorted(mechanisms, key=str.encode))
    if channel_bindings is not None:
        text += "\x1f" + "\x1e".join(sorted(channel_bindings, key=str.encode))
    return b64encode(hashlib.new(hash_name, text.encode()).digest())


def ssdp_of(server_first: bytes) -> str | None:
    """The XEP-0474 ``h`` attribute of a server-first-message (None: absent),
    for a client to compare with :func:`ssdp_hash` of what it saw offered."""
    for attribute in server_first.decode("utf-8", "replace").split(",")[3:]:
        if attribute.startswith("h="):
            return attribute[2:]
    return None
