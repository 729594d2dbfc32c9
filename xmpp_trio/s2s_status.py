"""What operators see of federation (issue 21, docs/federation.md
"Operations"): the s2s streams for the admin socket (``xmpp-trio status``
and ``sessions``) and for the metrics endpoint.

Every stream is listed with its remote domain, direction (``out``: we
initiated it for a (local, remote) pair; ``in``: the remote did), how it was
authenticated (SASL EXTERNAL or dialback, XEP-0178/XEP-0220), the stanzas
queued on it (outbound), and the failed outbound links by remote domain.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sized
from collections.abc import Set as AbstractSet
from typing import Protocol

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

__all__ = ["S2SCollector", "s2s_entries", "s2s_summary"]


class _Conn(Protocol):
    @property
    def pairs(self) -> set[tuple[str, str]]: ...


class _Stream(Protocol):
    """What is listed of :class:`xmpp_trio.s2s._Stream`."""

    @property
    def conn(self) -> _Conn: ...
    @property
    def domain(self) -> str | None: ...
    @property
    def method(self) -> str | None: ...
    @property
    def peer(self) -> str: ...
    def tls_version(self) -> str | None: ...


class _Link(Protocol):
    @property
    def queue(self) -> Sized: ...
    @property
    def ready(self) -> _Stream | None: ...
    @property
    def method(self) -> str | None: ...


class Federation(Protocol):
    """What is listed of :class:`xmpp_trio.s2s.Federation`."""

    @property
    def links(self) -> Mapping[tuple[str, str], _Link]: ...
    @property
    def inbound(self) -> AbstractSet[_Stream]: ...
    @property
    def failures(self) -> int: ...
    @property
    def domain_failures(self) -> dict[str, int]: ...


def s2s_entries(federation: Federation | None) -> list[dict[str, object]]:
    """One entry per s2s stream, in the shape of the admin ``sessions`` list
    (``jid`` is the remote domain, ``sm`` says ``s2s-out``/``s2s-in``) plus
    ``remote``, ``local``, ``direction``, ``method``, ``queued``, ``failures``."""
    if federation is None:
        return []
    found: list[dict[str, object]] = []
    failures = federation.domain_failures
    for (local, remote), link in sorted(federation.links.items()):
        stream = link.ready
        method = link.method if stream is not None else None
        found.append(
            _entry(
                remote,
                local,
                "out",
                method,
                len(link.queue),
                failures.get(remote, 0),
                stream.peer if stream is not None else None,
                stream.tls_version() if stream is not None else None,
            )
        )
    for stream in sorted(federation.inbound, key=lambda s: (s.domain or "", s.peer)):
        pairs = sorted(stream.conn.pairs)
        first: str | None = pairs[0][0] if pairs else None
        found.append(
            _entry(
                stream.domain or "?",
                first,
                "in",
                stream.method,
                0,
                failures.get(stream.domain or "", 0),
                stream.peer,
                stream.tls_version(),
            )
        )
    return found


def _entry(
    remote: str,
    local: str | None,
    direction: str,
    method: str | None,
    queued: int,
    failures: int,
    address: str | None,
    tls: str | None,
) -> dict[str, object]:
    state = method or "negotiating"
    return {
        "jid": remote,
        "resource": None,
        "id": None,
        "address": address,
        "tls": tls,
        "sm": f"s2s-{direction}",
        "client": f"{state}, {queued} queued, {failures} failures",
        "remote": remote,
        "local": local,
        "direction": direction,
        "method": method,
        "queued": queued,
        "failures": failures,
    }


def s2s_summary(federation: Federation | None) -> dict[str, object] | None:
    """The ``s2s`` part of the admin ``status``: counts and remote domains
    (None when federation is off)."""
    if federation is None:
        return None
    entries = s2s_entries(federation)
    return {
        "outbound": sum(1 for e in entries if e["direction"] == "out"),
        "inbound": sum(1 for e in entries if e["direction"] == "in"),
        "domains": sorted({str(e["remote"]) for e in entries}),
        "queued": sum(int(str(e["queued"])) for e in entries),
        "failures": federation.failures,
    }


class S2SCollector:
    """Prometheus collector of the s2s streams (registered by
    :func:`~xmpp_trio.s2s.start_federation`): ``xmpp_s2s_streams`` by
    direction, remote domain and method; ``xmpp_s2s_queued`` by remote
    domain; ``xmpp_s2s_failures`` (failed outbound links) by remote domain."""

    def __init__(self, federation: Federation) -> None:
        self.federation = federation

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        streams = GaugeMetricFamily(
            "xmpp_s2s_streams",
            "Server-to-server streams open now (RFC 6120 §13)",
            labels=["direction", "remote", "method"],
        )
        queued = GaugeMetricFamily(
            "xmpp_s2s_queued",
            "Stanzas queued on outbound s2s links",
            labels=["remote"],
        )
        counts: dict[tuple[str, str, str], int] = {}
        waiting: dict[str, int] = {}
        for entry in s2s_entries(self.federation):
            key = (str(entry["direction"]), str(entry["remote"]), str(entry["method"] or "none"))
            counts[key] = counts.get(key, 0) + 1
            remote = str(entry["remote"])
            waiting[remote] = waiting.get(remote, 0) + int(str(entry["queued"]))
        for key, count in sorted(counts.items()):
            streams.add_metric(list(key), count)
        for remote, count in sorted(waiting.items()):
            queued.add_metric([remote], count)
        failures = CounterMetricFamily(
            "xmpp_s2s_failures",
            "Outbound s2s links that failed (not found, timed out, cut)",
            labels=["remote"],
        )
        for remote, count in sorted(self.federation.domain_failures.items()):
            failures.add_metric([remote], count)
        yield streams
        yield queued
        yield failures
