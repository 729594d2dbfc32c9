"""Resource limits of the server that are decided by the I/O layer.

Everything here is synchronous bookkeeping with an explicit clock value
(``now``, in seconds, e.g. ``trio.current_time()``), so it can be tested
without sockets or sleeping; only :meth:`TokenBucket.throttle` awaits.

* :class:`TokenBucket`: the per-connection read rate (backpressure: the
  reader waits, the peer is never disconnected for sending fast).
* :class:`ConnectionCounter`: connections per peer address and in total.
* :class:`AuthBackoff`: failed authentications per address and per account,
  across connections, with an exponential back-off; entries expire and the
  table is capped.
* :class:`LogLimiter`: a rate limit for log lines an unauthenticated peer can
  cause, and :func:`loggable` to truncate and escape what it sent.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import trio

__all__ = [
    "AuthBackoff",
    "ConnectionCounter",
    "LogLimiter",
    "TokenBucket",
    "loggable",
    "peer_address",
]

LOGGED_CHARACTERS = 64
"""The most characters of a peer-chosen string (e.g. a username) that are logged."""


def loggable(text: str | None, limit: int = LOGGED_CHARACTERS) -> str:
    """``text`` for a log line: escaped (``repr``: no control characters or
    line breaks reach the log), at most ``limit`` characters of it, and the
    length of the rest when it was cut."""
    if text is None:
        return "None"
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}...(+{len(text) - limit} characters)"


def peer_address(peer: str) -> str:
    """The address part of ``"host:port"`` (``"?"`` stays ``"?"``)."""
    return peer.rsplit(":", 1)[0] if ":" in peer else peer


@dataclass(slots=True)
class TokenBucket:
    """A token bucket of ``rate`` bytes per second holding at most ``burst`` bytes.

    :meth:`consume` takes tokens and may go into debt; the debt is the time the
    caller must wait before reading again. ``waited`` adds up every delay asked
    for, so a test can check the throttling without measuring wall-clock time.
    """

    rate: float
    burst: float
    tokens: float = field(init=False)
    updated: float | None = field(default=None, init=False)
    waited: float = field(default=0.0, init=False)
    consumed: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        if self.rate <= 0 or self.burst <= 0:
            raise ValueError("rate and burst must be positive")
        self.tokens = self.burst

    def _refill(self, now: float) -> None:
        if self.updated is not None and now > self.updated:
            self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        if self.updated is None or now > self.updated:
            self.updated = now

    def consume(self, amount: int, now: float) -> float:
        """Take ``amount`` bytes' worth of tokens; return how long to wait (>= 0)
        before reading more, so that the long-run rate stays at ``rate``."""
        self._refill(now)
        self.tokens -= amount
        self.consumed += amount
        delay = -self.tokens / self.rate if self.tokens < 0 else 0.0
        self.waited += delay
        return delay

    def max_read(self) -> int:
        """The most bytes worth reading at once (at least 1)."""
        return max(1, int(self.burst))

    async def throttle(self, amount: int) -> None:
        """Account for ``amount`` bytes just read and sleep off any debt."""
        delay = self.consume(amount, trio.current_time())
        if delay > 0:
            await trio.sleep(delay)


@dataclass(slots=True)
class ConnectionCounter:
    """Open connections per peer address and in total."""

    max_total: int
    max_per_address: int
    total: int = 0
    per_address: dict[str, int] = field(default_factory=dict)

    def refusal(self, address: str) -> str | None:
        """Why a new connection from ``address`` is refused: ``"total"``,
        ``"address"``, or None to accept it."""
        if self.total >= self.max_total:
            return "total"
        if self.per_address.get(address, 0) >= self.max_per_address:
            return "address"
        return None

    def add(self, address: str) -> None:
        self.total += 1
        self.per_address[address] = self.per_address.get(address, 0) + 1

    def remove(self, address: str) -> None:
        self.total -= 1
        left = self.per_address.get(address, 0) - 1
        if left > 0:
            self.per_address[address] = left
        else:
            self.per_address.pop(address, None)


@dataclass(slots=True)
class _Failures:
    count: int = 0
    until: float = 0.0  # no attempt before this time
    last: float = 0.0


@dataclass(slots=True)
class AuthBackoff:
    """Failed authentications per key (an address, or an account), across
    connections. After ``free`` failures each further failure blocks the key for
    ``initial`` seconds, doubling up to ``maximum``. A success clears the
    account's record.

    A record untouched for ``maximum`` plus its back-off is stale: it is
    forgotten when looked up, and stale records are swept from the oldest on
    every failure. The table holds at most ``max_entries`` records; past that
    the least recently failed ones are dropped (which only ever shortens a
    back-off, never blocks anyone).
    """

    free: int = 5
    initial: float = 1.0
    maximum: float = 300.0
    max_entries: int = 100_000
    _records: dict[str, _Failures] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.free < 1 or self.max_entries < 1:
            raise ValueError("free and max_entries must be positive")

    def _stale(self, record: _Failures, now: float) -> bool:
        return now - max(record.last, record.until) > self.maximum

    def blocked_for(self, key: str, now: float) -> float:
        """Seconds ``key`` must still wait before it may try again (0: allowed)."""
        record = self._records.get(key)
        if record is None:
            return 0.0
        if self._stale(record, now):
            del self._records[key]
            return 0.0
        return max(0.0, record.until - now)

    def has_failures(self, key: str, now: float) -> bool:
        """Whether ``key`` has failures on record (not yet forgotten)."""
        self.blocked_for(key, now)
        return key in self._records

    def failed(self, key: str, now: float) -> float:
        """Record a failure; return the back-off it starts (0: none yet)."""
        self.blocked_for(key, now)  # forget a stale record
        record = self._records.pop(key, None) or _Failures()
        self._records[key] = record  # most recently failed last
        record.count += 1
        record.last = now
        over = record.count - self.free
        delay = 0.0
        if over > 0:
            delay = min(self.maximum, self.initial * 2.0 ** min(over - 1, 64))
            record.until = now + delay
        self.expire(now)
        return delay

    def expire(self, now: float) -> None:
        """Drop stale records from the oldest, and the oldest beyond ``max_entries``."""
        records = self._records
        while records:
            oldest = next(iter(records))
            if len(records) <= self.max_entries and not self._stale(records[oldest], now):
                break
            del records[oldest]

    def succeeded(self, key: str) -> None:
        self._records.pop(key, None)

    def __len__(self) -> int:
        return len(self._records)


@dataclass(slots=True)
class LogLimiter:
    """At most ``per_minute`` log lines a minute (a token bucket with a
    burst of the same size); :meth:`allow` says whether to log now and
    :meth:`take_suppressed` how many lines were dropped since the last one."""

    per_minute: int
    _bucket: TokenBucket = field(init=False)
    suppressed: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        if self.per_minute < 1:
            raise ValueError("per_minute must be positive")
        self._bucket = TokenBucket(rate=self.per_minute / 60.0, burst=float(self.per_minute))

    def allow(self, now: float) -> bool:
        bucket = self._bucket
        bucket._refill(now)
        if bucket.tokens < 1:
            self.suppressed += 1
            return False
        bucket.tokens -= 1
        return True

    def take_suppressed(self) -> int:
        count, self.suppressed = self.suppressed, 0
        return count
