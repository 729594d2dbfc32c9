"""SRV record handling for client connections (RFC 6120 §3.2, RFC 2782, XEP-0368)."""

from __future__ import annotations

import random

from xmpp_trio.resolve import SRVRecord, Target, order_srv, targets_from_srv


def test_no_records_fall_back_to_the_domain_on_5222() -> None:
    assert targets_from_srv([], [], "example.com") == [Target("example.com", 5222, False)]


def test_dot_target_means_no_service() -> None:
    assert targets_from_srv([SRVRecord(0, 0, 0, ".")], [], "example.com") == []


def test_lower_priority_value_comes_first_across_both_services() -> None:
    plain = [SRVRecord(10, 0, 5222, "b.example.com.")]
    tls = [SRVRecord(5, 0, 5223, "a.example.com."), SRVRecord(20, 0, 443, "c.example.com.")]
    assert targets_from_srv(plain, tls, "example.com") == [
        Target("a.example.com", 5223, True),
        Target("b.example.com", 5222, False),
        Target("c.example.com", 443, True),
    ]


def test_weights_choose_proportionally_within_a_priority() -> None:
    heavy, light = SRVRecord(0, 90, 1, "heavy"), SRVRecord(0, 10, 2, "light")
    rng = random.Random(1)
    firsts = [order_srv([light, heavy], rng)[0].target for _ in range(2000)]
    assert 0.85 < firsts.count("heavy") / len(firsts) < 0.95


def test_every_record_is_kept_once() -> None:
    records = [SRVRecord(p, w, p * 10 + w, f"h{p}{w}") for p in range(3) for w in range(3)]
    ordered = order_srv(records, random.Random(7))
    assert sorted(ordered, key=lambda r: r.target) == sorted(records, key=lambda r: r.target)
    assert [r.priority for r in ordered] == sorted(r.priority for r in records)
