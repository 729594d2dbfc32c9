"""The facts of a peer's certificate for the s2s identity checks (RFC 6125,
RFC 6120 §13.7.1.2, XEP-0178): the I/O layer reads the identifiers, the
decision is :func:`xmpp_sansio.stream.s2s_identity.certificate_names`.

Identifiers read from the subjectAltName: dNSName, otherName SRVName
(``id-on-dnsSRV``, RFC 4985) and XmppAddr (``id-on-xmppAddr``, RFC 6120
§13.7.1.4); and the subject's common names.
"""

from __future__ import annotations

from cryptography import x509
from cryptography.x509.oid import NameOID, ObjectIdentifier

from xmpp_sansio.stream.s2s_identity import PeerCertificate

__all__ = ["ID_ON_DNSSRV", "ID_ON_XMPPADDR", "peer_certificate"]

ID_ON_XMPPADDR = ObjectIdentifier("1.3.6.1.5.5.7.8.5")
ID_ON_DNSSRV = ObjectIdentifier("1.3.6.1.5.5.7.8.7")
_UTF8STRING, _IA5STRING = 0x0C, 0x16


def _der_string(data: bytes, tag: int) -> str | None:
    """The text of a DER UTF8String or IA5String (short or long length form)."""
    if len(data) < 2 or data[0] != tag:
        return None
    length, offset = data[1], 2
    if length & 0x80:
        size = length & 0x7F
        if size == 0 or size > 4 or len(data) < 2 + size:
            return None
        length, offset = int.from_bytes(data[2 : 2 + size], "big"), 2 + size
    body = data[offset : offset + length]
    if len(body) != length:
        return None
    try:
        return body.decode("utf-8" if tag == _UTF8STRING else "ascii")
    except UnicodeDecodeError:
        return None


def peer_certificate(der: bytes | None, *, chain_valid: bool) -> PeerCertificate | None:
    """The facts of the DER certificate ``der`` (None: the peer sent none, or
    it does not parse); ``chain_valid`` is what the TLS layer verified."""
    if not der:
        return None
    try:
        cert = x509.load_der_x509_certificate(der)
    except ValueError:
        return None
    dns_ids: list[str] = []
    srv_ids: list[str] = []
    xmpp_addrs: list[str] = []
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (x509.ExtensionNotFound, ValueError):
        san = None
    if san is not None:
        dns_ids = list(san.get_values_for_type(x509.DNSName))
        for other in san.get_values_for_type(x509.OtherName):
            if other.type_id == ID_ON_DNSSRV:
                value = _der_string(other.value, _IA5STRING)
                if value is not None:
                    srv_ids.append(value)
            elif other.type_id == ID_ON_XMPPADDR:
                value = _der_string(other.value, _UTF8STRING)
                if value is not None:
                    xmpp_addrs.append(value)
    common_names = [str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    return PeerCertificate(
        chain_valid=chain_valid,
        dns_ids=tuple(dns_ids),
        srv_ids=tuple(srv_ids),
        xmpp_addrs=tuple(xmpp_addrs),
        common_names=tuple(common_names),
    )
