"""TLS certificates: a self-signed pair generated on first start, and the server SSLContext.

:func:`ensure_certificate` writes ``<data_dir>/tls/cert.pem`` and ``key.pem`` (an
EC P-256 key, mode 0600) unless both already exist. The certificate is valid for
ten years and names every served domain and its ``*.domain`` wildcard (the
latter covers MUC and other subdomain services). Clients will not trust it
unless told to; configure a real certificate with ``[tls]`` for production.

:func:`load_server_ssl_context` builds the server-side context used for both
STARTTLS and direct TLS: TLS 1.2 at least, TLS compression disabled.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Final

import idna
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from . import _read_ahead
from ._openssl_stream import TLSContext, openssl_server_context

if TYPE_CHECKING:
    from .config import ServerConfig

__all__ = [
    "CERT_FILENAME",
    "KEY_FILENAME",
    "VALIDITY",
    "ensure_certificate",
    "find_certificate_pair",
    "generate_self_signed",
    "install_certificate",
    "load_server_ssl_context",
    "server_tls_material",
]

CERT_FILENAME: Final = "cert.pem"
KEY_FILENAME: Final = "key.pem"
VALIDITY: Final = datetime.timedelta(days=3650)


def _subject_alt_names(domains: Sequence[str]) -> list[x509.GeneralName]:
    """DNS names (A-labels) for each domain plus ``*.domain``; IP literals as IP SANs."""
    names: list[x509.GeneralName] = []
    for domain in domains:
        host = domain.removeprefix("[").removesuffix("]")
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            pass
        else:
            ip_name = x509.IPAddress(address)
            if ip_name not in names:
                names.append(ip_name)
            continue
        try:
            ascii_name = idna.encode(host, uts46=True).decode("ascii")
        except idna.IDNAError:
            ascii_name = host.encode("ascii", "ignore").decode("ascii") or "localhost"
        for dns in (ascii_name, f"*.{ascii_name}"):
            dns_name = x509.DNSName(dns)
            if dns_name not in names:
                names.append(dns_name)
    return names


def generate_self_signed(domains: Sequence[str]) -> tuple[bytes, bytes]:
    """Return ``(cert_pem, key_pem)`` of a new self-signed certificate for ``domains``."""
    if not domains:
        raise ValueError("at least one domain is needed for a certificate")
    key = ec.generate_private_key(ec.SECP256R1())
    common_name = domains[0].removeprefix("[").removesuffix("]")[:64] or "localhost"
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "xmpp-trio self-signed"),
        ]
    )
    now = datetime.datetime.now(datetime.UTC)
    public_key = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))  # tolerate clock skew
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.SubjectAlternativeName(_subject_alt_names(domains)), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=True,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(public_key), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert_pem, key_pem


def _write_atomically(path: Path, data: bytes, mode: int) -> None:
    """Write ``data`` to ``path`` via a temporary file created with ``mode``."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(tmp, mode)  # in case the file already existed with other permissions
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def certificate_problems(
    cert: Path, domains: Sequence[str], *, now: float | None = None
) -> list[str]:
    """What is wrong with the certificate in ``cert`` for serving ``domains``:
    unreadable, expired or not yet valid, or not naming a domain (RFC 6125
    §6.4: DNS names in the subjectAltName, a ``*.`` wildcard covering one
    label). Empty when it is fine."""
    try:
        loaded = x509.load_pem_x509_certificate(cert.read_bytes())
    except (OSError, ValueError) as exc:
        return [f"cannot read the certificate {cert}: {exc}"]
    problems: list[str] = []
    if now is None:
        moment = datetime.datetime.now(datetime.UTC)
    else:
        moment = datetime.datetime.fromtimestamp(now, datetime.UTC)
    if moment > loaded.not_valid_after_utc:
        problems.append(f"{cert} expired on {loaded.not_valid_after_utc:%Y-%m-%d}")
    if moment < loaded.not_valid_before_utc:
        problems.append(f"{cert} is not valid before {loaded.not_valid_before_utc:%Y-%m-%d}")
    try:
        san = loaded.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = san.get_values_for_type(x509.DNSName)
        addresses = san.get_values_for_type(x509.IPAddress)
    except x509.ExtensionNotFound:
        names, addresses = [], []
    for domain in domains:
        wanted = _subject_alt_names([domain])[0]  # the A-label (or IP) of the domain
        if isinstance(wanted, x509.IPAddress):
            covered = wanted.value in addresses
        else:
            covered = any(_name_matches(name, wanted.value) for name in names)
        if not covered:
            shown = ", ".join([*names, *map(str, addresses)]) or "nothing"
            problems.append(f"{cert} does not name {domain} (it names {shown})")
    return problems


def _name_matches(name: str, domain: str) -> bool:
    name, domain = name.lower().rstrip("."), domain.lower().rstrip(".")
    if name.startswith("*."):
        head, _, rest = domain.partition(".")
        return bool(head) and rest == name[2:]
    return name == domain


def ensure_certificate(data_dir: Path, domains: Sequence[str]) -> tuple[Path, Path]:
    """Return ``(cert_path, key_path)`` in ``data_dir/tls``, generating them if absent.

    An existing pair is reused while its certificate names every domain and
    has not expired; otherwise (the configured domains changed, say) both are
    generated anew: they are the server's own self-signed files, never an
    operator's. If only one of the two files exists both are replaced.
    """
    tls_dir = Path(data_dir) / "tls"
    cert_path = tls_dir / CERT_FILENAME
    key_path = tls_dir / KEY_FILENAME
    if cert_path.is_file() and key_path.is_file() and not certificate_problems(cert_path, domains):
        return cert_path, key_path
    tls_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    cert_pem, key_pem = generate_self_signed(domains)
    # Key first: a certificate on disk implies that its key is there too.
    _write_atomically(key_path, key_pem, 0o600)
    _write_atomically(cert_path, cert_pem, 0o644)
    return cert_path, key_path


def load_server_ssl_context(cert: Path, key: Path) -> ssl.SSLContext:
    """A server-side SSLContext for ``cert``/``key``: TLS >= 1.2, no compression.

    Raise OSError if a file cannot be read and ssl.SSLError if they do not form a
    valid pair.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
    context.options |= ssl.OP_SINGLE_ECDH_USE
    context.load_cert_chain(certfile=str(cert), keyfile=str(key))
    return context


def server_tls_material(config: ServerConfig) -> tuple[TLSContext, bytes | None]:
    """The server's TLS context (``[tls] backend``: the stdlib's SSLContext or
    pyOpenSSL's) and its certificate (DER, for channel binding), from ``[tls]``
    or the self-signed pair in the data directory (generated when missing or
    stale). Read at start and again on each reload."""
    if config.tls.cert is not None and config.tls.key is not None:
        cert, key = config.tls.cert, config.tls.key
    else:
        cert, key = ensure_certificate(config.data_dir, config.hosted_domains)
    if config.tls.backend == "openssl":
        return openssl_server_context(cert, key), _certificate_der(cert)
    context = load_server_ssl_context(cert, key)
    if not config.tls.read_ahead:
        _read_ahead.refuse(context)
    return context, _certificate_der(cert)


def _certificate_der(cert: Path) -> bytes | None:
    pem = cert.read_text()
    start = pem.find("-----BEGIN CERTIFICATE-----")
    if start < 0:
        return None
    end = pem.index("-----END CERTIFICATE-----", start) + len("-----END CERTIFICATE-----")
    return ssl.PEM_cert_to_DER_cert(pem[start:end])


#: Certificate and key file names looked for by :func:`find_certificate_pair`:
#: certbot's ``live/<domain>/``, then the names Prosody's ``cert import`` takes.
_PAIR_NAMES: Final = (("fullchain.pem", "privkey.pem"), ("cert.pem", "key.pem"))


def find_certificate_pair(directory: Path, domains: Sequence[str]) -> tuple[Path, Path]:
    """The certificate and key to import from ``directory``: certbot's
    ``fullchain.pem`` and ``privkey.pem`` in it or in its ``<domain>/``
    subdirectory (``/etc/letsencrypt/live``), or ``<domain>.crt`` and
    ``<domain>.key``. Raises ``FileNotFoundError`` naming what was looked for."""
    looked: list[str] = []
    for place in (directory, *(directory / d for d in domains)):
        pairs = [*_PAIR_NAMES, *((f"{d}.crt", f"{d}.key") for d in domains)]
        for cert_name, key_name in pairs:
            cert, key = place / cert_name, place / key_name
            if cert.is_file() and key.is_file():
                return cert, key
            looked.append(f"{cert_name}+{key_name} in {place}")
    raise FileNotFoundError(f"no certificate found; looked for {'; '.join(looked[:4])}...")


def install_certificate(
    cert: Path, key: Path, cert_target: Path, key_target: Path, domains: Sequence[str]
) -> None:
    """Copy ``cert``/``key`` to the server's files, if they form a pair that
    serves every one of ``domains`` (else ``ValueError``, nothing written).
    Each target is replaced atomically, the key first and private (0600)."""
    try:
        load_server_ssl_context(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(f"{cert} and {key} are not a usable pair: {exc}") from None
    problems = certificate_problems(cert, domains)
    if problems:
        raise ValueError("; ".join(problems))
    cert_data, key_data = cert.read_bytes(), key.read_bytes()
    cert_target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key_target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    _write_atomically(key_target, key_data, 0o600)
    _write_atomically(cert_target, cert_data, 0o644)
