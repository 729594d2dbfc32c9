"""Salted SCRAM credentials (RFC 5802 §3), the only form a server stores.

``derive_scram_credentials`` is the whole key derivation: the password is
normalised with the PRECIS OpaqueString profile (RFC 8265 §4.2, as RFC 7677 §4
asks of SCRAM-SHA-256), then ``SaltedPassword := Hi(password, salt, i)``,
``StoredKey := H(HMAC(SaltedPassword, "Client Key"))`` and
``ServerKey := HMAC(SaltedPassword, "Server Key")``. The password itself is never kept.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Final

import precis_i18n

HASHES: Final = ("sha1", "sha256", "sha512")
"""Hash names accepted by :func:`derive_scram_credentials` (hashlib names)."""

_OPAQUE = precis_i18n.get_profile("OpaqueString")


@dataclass(frozen=True, slots=True, kw_only=True)
class ScramCredentials:
    """What a server keeps of one password for one SCRAM hash."""

    hash_name: str
    salt: bytes
    iterations: int
    stored_key: bytes
    server_key: bytes


def normalize_password(password: str) -> str:
    """Apply the PRECIS OpaqueString profile (RFC 8265 §4.2); raise ValueError if invalid."""
    try:
        result: str = _OPAQUE.enforce(password)
    except UnicodeEncodeError as exc:  # precis-i18n's error type
        raise ValueError(f"invalid password: {exc.reason}") from None
    return result


def salted_password(password: str, hash_name: str, salt: bytes, iterations: int) -> bytes:
    """``Hi(Normalize(password), salt, i)`` of RFC 5802 §2.2 (PBKDF2-HMAC)."""
    if hash_name not in HASHES:
        raise ValueError(f"unsupported SCRAM hash {hash_name!r}")
    if iterations < 1:
        raise ValueError("iterations must be positive")
    return hashlib.pbkdf2_hmac(
        hash_name, normalize_password(password).encode("utf-8"), salt, iterations
    )


def keys_from_salted_password(salted: bytes, hash_name: str) -> tuple[bytes, bytes, bytes]:
    """Return ``(ClientKey, StoredKey, ServerKey)`` for a SaltedPassword (RFC 5802 §3)."""
    client_key = hmac.new(salted, b"Client Key", hash_name).digest()
    stored_key = hashlib.new(hash_name, client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hash_name).digest()
    return client_key, stored_key, server_key


def derive_scram_credentials(
    password: str, hash_name: str, *, salt: bytes, iterations: int
) -> ScramCredentials:
    """Derive the stored SCRAM credentials for ``password`` (RFC 5802 §3)."""
    salted = salted_password(password, hash_name, salt, iterations)
    _, stored_key, server_key = keys_from_salted_password(salted, hash_name)
    return ScramCredentials(
        hash_name=hash_name,
        salt=salt,
        iterations=iterations,
        stored_key=stored_key,
        server_key=server_key,
    )
