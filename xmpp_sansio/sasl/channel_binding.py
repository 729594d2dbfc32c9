"""Channel bindings for the SCRAM ``-PLUS`` mechanisms (RFC 5056, RFC 5802 §6).

The I/O layer reads the binding data off its TLS connection and hands it in as
a :class:`ChannelBinding`:

* ``tls-exporter`` (RFC 9266 §2): the TLS exporter with label
  :data:`TLS_EXPORTER_LABEL`, an empty context and :data:`TLS_EXPORTER_LENGTH`
  bytes. The only type defined for TLS 1.3 (RFC 9266 §3), where ``tls-unique``
  does not exist.
* ``tls-server-end-point`` (RFC 5929 §4): a hash of the server's certificate,
  which :func:`tls_server_end_point` computes from its DER bytes.
* ``tls-unique`` (RFC 5929 §3): the first TLS Finished message, TLS 1.2 and
  below only; :func:`tls_unique` refuses it on TLS 1.3, where it is undefined
  (RFC 8446 §C.5, RFC 9266 §1).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes

TLS_EXPORTER: Final = "tls-exporter"
TLS_SERVER_END_POINT: Final = "tls-server-end-point"
TLS_UNIQUE: Final = "tls-unique"

TLS_EXPORTER_LABEL: Final = b"EXPORTER-Channel-Binding"
"""Exporter label of ``tls-exporter`` (RFC 9266 §2); the context is empty."""
TLS_EXPORTER_LENGTH: Final = 32
"""Length in bytes of ``tls-exporter`` binding data (RFC 9266 §2)."""

_CB_NAME = re.compile(r"[A-Za-z0-9.-]+")


@dataclass(frozen=True, slots=True)
class ChannelBinding:
    """Channel binding data of one type for the current TLS connection.

    ``type`` must be a ``cb-name`` of RFC 5802 §7 (letters, digits, ``.``, ``-``),
    e.g. ``"tls-exporter"``, ``"tls-server-end-point"`` or ``"tls-unique"``.
    """

    type: str
    data: bytes

    def __post_init__(self) -> None:
        if _CB_NAME.fullmatch(self.type) is None:
            raise ValueError(f"invalid channel binding type {self.type!r}")


def tls_server_end_point(certificate_der: bytes) -> ChannelBinding:
    """The ``tls-server-end-point`` binding for a server certificate (RFC 5929 §4.1).

    The hash is the one of the certificate's signature algorithm, except that
    MD5 and SHA-1 are replaced by SHA-256. Raise ValueError for a certificate
    that cannot be parsed or whose signature uses no single hash (e.g.
    Ed25519), for which RFC 5929 leaves the binding undefined.
    """
    try:
        certificate = x509.load_der_x509_certificate(certificate_der)
        algorithm = certificate.signature_hash_algorithm
    except UnsupportedAlgorithm:
        algorithm = None
    if algorithm is None:
        raise ValueError("tls-server-end-point is undefined for this certificate's signature")
    if isinstance(algorithm, hashes.MD5 | hashes.SHA1):
        algorithm = hashes.SHA256()
    digest = hashes.Hash(algorithm)
    digest.update(certificate_der)
    return ChannelBinding(TLS_SERVER_END_POINT, digest.finalize())


def tls_unique(finished: bytes | None, tls_version: str | None) -> ChannelBinding | None:
    """The ``tls-unique`` binding (RFC 5929 §3.1) from the first Finished message.

    ``tls_version`` is the protocol name the TLS library reports (``"TLSv1.2"``).
    ``None`` on TLS 1.3 and for an unknown version, where ``tls-unique`` is not
    defined (RFC 8446 §C.5, RFC 9266 §1), and when there is no Finished message.
    """
    if not finished or tls_version not in ("TLSv1", "TLSv1.1", "TLSv1.2"):
        return None
    return ChannelBinding(TLS_UNIQUE, finished)


CLIENT_BINDING_PREFERENCE: Final[tuple[str, ...]] = (TLS_EXPORTER, TLS_UNIQUE, TLS_SERVER_END_POINT)
"""The binding a client uses when the server supports several, strongest first
(``tls-server-end-point`` binds the certificate, not the connection)."""


def choose_channel_binding(
    available: tuple[ChannelBinding, ...],
    advertised: frozenset[str] | None,
    preference: tuple[str, ...] = CLIENT_BINDING_PREFERENCE,
) -> ChannelBinding | None:
    """The binding a client should use (XEP-0440 §4): the first type of
    ``preference`` that ``available`` (this connection's data) has and the
    server ``advertised``; without an advertisement (None),
    ``tls-server-end-point`` if preferred and available (the one every server
    must support, XEP-0440 §4), else the first preferred one we have. None
    when nothing matches: the client then logs in without ``-PLUS``."""
    by_type = {binding.type: binding for binding in available if binding.type in preference}
    if advertised is None:
        if TLS_SERVER_END_POINT in by_type:
            return by_type[TLS_SERVER_END_POINT]
        advertised = frozenset(by_type)
    for name in preference:
        if name in advertised and name in by_type:
            return by_type[name]
    return None
