"""What the aioxmpp peers share: the test CA trusted, nothing else changed
from aioxmpp's defaults (its own PKIX check and STARTTLS), and one JSON
event a line on stdout."""

from __future__ import annotations

import json
from typing import Any

import aioxmpp
import OpenSSL.crypto
import OpenSSL.SSL
from aioxmpp.security_layer import default_ssl_context


def emit(**event: Any) -> None:
    print(json.dumps(event), flush=True)


def restore_pyopenssl_extensions() -> None:
    """aioxmpp 0.13.3 (its last release) checks the server's name with
    pyOpenSSL's ``X509.get_extension``, which pyOpenSSL 24.3 removed: put it
    back, read through ``cryptography``, so aioxmpp's own verification runs
    as written."""
    x509_class: Any = OpenSSL.crypto.X509
    if hasattr(x509_class, "get_extension"):
        return
    from cryptography.x509.oid import ExtensionOID

    class Extension:
        def __init__(self, ext: Any) -> None:
            self.ext = ext

        def get_short_name(self) -> bytes:
            if self.ext.oid == ExtensionOID.SUBJECT_ALTERNATIVE_NAME:
                return b"subjectAltName"
            return str(self.ext.oid.dotted_string).encode()

        def get_data(self) -> bytes:
            return bytes(self.ext.value.public_bytes())

    x509_class.get_extension_count = lambda self: len(self.to_cryptography().extensions)
    x509_class.get_extension = lambda self, i: Extension(self.to_cryptography().extensions[i])


def make_client(jid: str, password: str, host: str, port: str, cafile: str) -> Any:
    """An aioxmpp client of ``jid`` over STARTTLS to ``host:port``, trusting ``cafile``."""
    restore_pyopenssl_extensions()

    def ssl_context() -> OpenSSL.SSL.Context:
        ctx = default_ssl_context()
        ctx.load_verify_locations(cafile)
        return ctx

    client = aioxmpp.PresenceManagedClient(
        aioxmpp.JID.fromstr(jid),
        aioxmpp.make_security_layer(password, ssl_context_factory=ssl_context),
        override_peer=[(host, int(port), aioxmpp.connector.STARTTLSConnector())],
    )
    return client
