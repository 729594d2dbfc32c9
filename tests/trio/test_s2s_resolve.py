"""Finding remote servers (xmpp_trio/s2s_resolve.py): static overrides, DNS
SRV for _xmpps-server/_xmpp-server with priority and weight against a local
DNS server, and the 5269 fallback; and the certificate facts the s2s identity
checks read (xmpp_trio/s2s_certs.py)."""

from __future__ import annotations

import datetime

import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from dns_server import dns_server

from xmpp_sansio.stream.s2s_identity import certificate_names
from xmpp_trio.resolve import SRVRecord, Target
from xmpp_trio.s2s_certs import ID_ON_DNSSRV, ID_ON_XMPPADDR, peer_certificate
from xmpp_trio.s2s_resolve import resolve_server_targets, server_targets_from_srv


def test_no_records_fall_back_to_the_domain_on_5269() -> None:
    assert server_targets_from_srv([], [], "a.example") == [Target("a.example", 5269, False)]
    assert server_targets_from_srv([SRVRecord(0, 0, 0, ".")], [], "a.example") == []


async def test_srv_records_are_merged_by_priority_with_direct_tls_marked() -> None:
    records = {
        "_xmpp-server._tcp.a.example": [(20, 0, 5269, "late.a.example"), (5, 0, 5270, "first")],
        "_xmpps-server._tcp.a.example": [(10, 0, 5271, "tls.a.example")],
    }
    async with dns_server(records) as nameserver:
        targets = await resolve_server_targets("a.example", nameservers=[nameserver])
    assert targets == [
        Target("first", 5270, False),
        Target("tls.a.example", 5271, True),
        Target("late.a.example", 5269, False),
    ]


async def test_a_domain_without_records_falls_back_and_an_override_skips_dns() -> None:
    async with dns_server({}) as nameserver:
        assert await resolve_server_targets("b.example", nameservers=[nameserver]) == [
            Target("b.example", 5269, False)
        ]
        overrides = {"b.example": ("127.0.0.1", 6000)}
        assert await resolve_server_targets(
            "b.example", overrides=overrides, nameservers=[nameserver]
        ) == [Target("127.0.0.1", 6000, False)]


def _other(oid: x509.ObjectIdentifier, tag: int, text: str) -> x509.OtherName:
    body = text.encode()
    return x509.OtherName(oid, bytes([tag, len(body)]) + body)


def test_certificate_facts_carry_srv_ids_xmpp_addrs_dns_ids_and_cns() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cn.example")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("dns.example"),
                    _other(ID_ON_DNSSRV, 0x16, "_xmpp-server.srv.example"),
                    _other(ID_ON_XMPPADDR, 0x0C, "addr.example"),
                ]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    facts = peer_certificate(cert.public_bytes(Encoding.DER), chain_valid=True)
    assert facts is not None
    assert facts.dns_ids == ("dns.example",)
    assert facts.srv_ids == ("_xmpp-server.srv.example",)
    assert facts.xmpp_addrs == ("addr.example",)
    assert facts.common_names == ("cn.example",)
    for domain in ("dns.example", "srv.example", "addr.example"):
        assert certificate_names(facts, domain)
    assert not certificate_names(facts, "cn.example")  # a SAN exists: CN ignored


def test_a_trustme_certificate_names_its_domain_only_when_the_chain_is_valid() -> None:
    ca = trustme.CA()
    leaf = ca.issue_cert("a.example")
    der = x509.load_pem_x509_certificate(leaf.cert_chain_pems[0].bytes()).public_bytes(Encoding.DER)
    assert certificate_names(peer_certificate(der, chain_valid=True), "a.example")
    assert not certificate_names(peer_certificate(der, chain_valid=False), "a.example")
    assert peer_certificate(None, chain_valid=True) is None
    assert peer_certificate(b"garbage", chain_valid=True) is None
