"""RFC 6125 identity checks of s2s peer certificates and XEP-0185 dialback keys."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from xmpp_sansio.stream.s2s_identity import (
    PeerCertificate,
    certificate_names,
    dialback_key,
    dialback_key_matches,
)

LABEL = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=8)
DOMAIN = st.lists(LABEL, min_size=2, max_size=4).map(".".join)


@pytest.mark.parametrize(
    ("certificate", "domain", "names"),
    [
        (PeerCertificate(True, srv_ids=("_xmpp-server.a.example",)), "a.example", True),
        (PeerCertificate(True, srv_ids=("_xmpp-client.a.example",)), "a.example", False),
        (PeerCertificate(True, xmpp_addrs=("a.example",)), "A.Example", True),
        (PeerCertificate(True, dns_ids=("a.example",)), "a.example.", True),
        (PeerCertificate(True, dns_ids=("*.a.example",)), "chat.a.example", True),
        (PeerCertificate(True, dns_ids=("*.a.example",)), "a.example", False),
        (PeerCertificate(True, dns_ids=("*.a.example",)), "x.chat.a.example", False),
        (PeerCertificate(True, dns_ids=("*.example",)), "a.example", False),  # public suffix
        (PeerCertificate(True, dns_ids=("c*.a.example",)), "chat.a.example", False),
        (PeerCertificate(True, common_names=("a.example",)), "a.example", True),
        # §6.4.4: with a SAN identifier the CN is not looked at.
        (
            PeerCertificate(True, dns_ids=("b.example",), common_names=("a.example",)),
            "a.example",
            False,
        ),
        (PeerCertificate(False, srv_ids=("_xmpp-server.a.example",)), "a.example", False),
        (None, "a.example", False),
    ],
)
def test_certificate_identifiers_name_the_domain(
    certificate: PeerCertificate | None, domain: str, names: bool
) -> None:
    assert certificate_names(certificate, domain) is names


@given(DOMAIN, DOMAIN)
def test_an_exact_dns_id_names_only_its_own_domain(a: str, b: str) -> None:
    assert certificate_names(PeerCertificate(True, dns_ids=(a,)), b) is (a == b)


@given(LABEL, DOMAIN, st.lists(LABEL, min_size=1, max_size=3))
def test_a_wildcard_stands_for_exactly_one_label(label: str, base: str, extra: list[str]) -> None:
    wildcard = PeerCertificate(True, dns_ids=("*." + base,))
    assert certificate_names(wildcard, f"{label}.{base}")
    assert not certificate_names(wildcard, ".".join([*extra, label, base]))
    assert not certificate_names(wildcard, base)


@given(DOMAIN, DOMAIN, st.text(min_size=1, max_size=20))
def test_dialback_keys_match_only_their_own_pair_and_stream(
    receiving: str, originating: str, stream_id: str
) -> None:
    key = dialback_key(b"s", receiving, originating, stream_id)
    assert len(key) == 64 and key == key.lower()
    assert dialback_key_matches(b"s", receiving, originating, stream_id, key.upper())
    assert not dialback_key_matches(b"t", receiving, originating, stream_id, key)
    assert not dialback_key_matches(b"s", receiving, originating, stream_id + "x", key)
    if receiving != originating:
        assert not dialback_key_matches(b"s", originating, receiving, stream_id, key)


def test_dialback_key_is_the_xep_0220_worked_example() -> None:
    """XEP-0220 §2.1.1 (keys of XEP-0185): secret 's3cr3tf0rd14lb4ck',
    receiving montague.example, originating capulet.example, id D60000229F."""
    key = dialback_key(b"s3cr3tf0rd14lb4ck", "montague.example", "capulet.example", "D60000229F")
    assert key == "b4835385f37fe2895af6c196b59097b16862406db80559900d96bf6fa7d23df3"
