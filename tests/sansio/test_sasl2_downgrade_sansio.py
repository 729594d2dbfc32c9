"""XEP-0474 SCRAM downgrade protection on SASL2 streams, sans I/O: the
server's server-first-message carries ``h=``, the hash of the mechanisms and
channel binding types it advertised (the XEP's example value); a client that
saw a list stripped by a man in the middle (no ``-PLUS`` mechanisms, or no
channel binding types) computes another hash and detects the downgrade. RFC
6120 SASL keeps its server-first-message unchanged."""

from __future__ import annotations

import base64
import re
from xml.etree.ElementTree import fromstring

import pytest
from test_auth_counters_sansio import drain
from test_sasl2_sansio import SASL2, answer_all, authenticate, server

from xmpp_sansio.sasl import create_client_mechanism
from xmpp_sansio.sasl.scram import ssdp_hash, ssdp_of

pytestmark = pytest.mark.usefixtures("any_framing")
SASL = "urn:ietf:params:xml:ns:xmpp-sasl"


def test_the_hash_of_the_xeps_example() -> None:
    # XEP-0474 §4.3: SHA-1 of 'SCRAM-SHA-1\x1eSCRAM-SHA-1-PLUS\x1ftls-exporter\x1etls-server-end-point'
    mechanisms = ["SCRAM-SHA-1-PLUS", "SCRAM-SHA-1"]
    bindings = ["tls-server-end-point", "tls-exporter"]
    assert ssdp_hash(mechanisms, bindings, "sha1") == "G6k/rBLDqgOhRRaCuuatSDFkJ08="
    assert ssdp_hash(mechanisms, None, "sha1") != ssdp_hash(mechanisms, [], "sha1")


def advertised(features: bytes) -> tuple[list[str], list[str] | None]:
    """What a client reads from ``<stream:features/>``: SASL2's mechanisms and
    XEP-0440's channel binding types (None: not announced)."""
    auth = features[features.index(b"<authentication") : features.index(b"</authentication>")]
    mechanisms = [m.decode() for m in re.findall(rb"<mechanism>([^<]+)</mechanism>", auth)]
    if b"sasl-channel-binding" not in features:
        return mechanisms, None
    return mechanisms, [
        t.decode() for t in re.findall(rb"channel-binding type=\"([^\"]+)\"", features)
    ]


def server_first(features_seen: bytes | None = None) -> tuple[str | None, bytes]:
    conn = server()
    features = conn.data_to_send()
    client = create_client_mechanism(
        "SCRAM-SHA-256", username="juliet", password="r0m30myr0m30", nonce=b"n" * 18
    )
    conn.receive_data(authenticate("SCRAM-SHA-256", client.initial_response()))
    answer_all(conn)
    challenge = fromstring(conn.data_to_send())
    data = base64.b64decode(challenge.text or "")
    return ssdp_of(data), features if features_seen is None else features_seen


def test_sasl2_scram_carries_the_hash_of_what_was_advertised() -> None:
    h, features = server_first()
    mechanisms, bindings = advertised(features)
    assert "SCRAM-SHA-256-PLUS" in mechanisms and bindings == ["tls-server-end-point"]
    assert h == ssdp_hash(mechanisms, bindings, "sha256")


@pytest.mark.parametrize("strip", ["plus-mechanisms", "channel-binding"])
def test_a_stripped_list_is_detected_by_the_client(strip: str) -> None:
    h, features = server_first()
    if strip == "plus-mechanisms":  # a MITM removes every -PLUS mechanism
        features = re.sub(rb"<mechanism>[^<]+-PLUS</mechanism>", b"", features)
    else:  # a MITM removes XEP-0440's announcement
        features = re.sub(rb"<sasl-channel-binding.*?</sasl-channel-binding>", b"", features)
    mechanisms, bindings = advertised(features)
    assert h is not None and h != ssdp_hash(mechanisms, bindings, "sha256")


def test_rfc6120_sasl_keeps_its_server_first_message() -> None:
    conn = server()
    conn.data_to_send()
    client = create_client_mechanism(
        "SCRAM-SHA-256", username="juliet", password="r0m30myr0m30", nonce=b"n" * 18
    )
    initial = base64.b64encode(client.initial_response() or b"").decode()
    conn.receive_data(f"<auth xmlns='{SASL}' mechanism='SCRAM-SHA-256'>{initial}</auth>".encode())
    answer_all(conn)
    challenge = fromstring(conn.data_to_send())
    assert ssdp_of(base64.b64decode(challenge.text or "")) is None
    assert drain(conn) == [] and SASL2
