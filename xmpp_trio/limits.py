"""Resource limits of the server that are decided by the I/O layer.

Everything here is synchronous bookkeeping with an explicit clock value
(``now``, in seconds, e.g. ``trio.current_time()``), so it can be tested
without sockets or sleeping; only :meth:`TokenBucket.throttle` awaits.

* :class:`TokenBucket`: the per-connection read rate (backpressure: the
  reader waits, the peer is never disconnected for sending fast).
* :class:`ConnectionCounter`: connections per peer address and in total.
* :class:`AuthBackoff`: failed authentications per address and per account,
  across connections, with an exponential back-off.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import trio

__all__ = ["AuthBackoff", "ConnectionCounter", "TokenBucket", "peer_address"]


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
    account's record; a record untouched for ``maximum`` plus its back-off is
    forgotten."""

    free: int = 5
    initial: float = 1.0
    maximum: float = 300.0
    _records: dict[str, _Failures] = field(default_factory=dict)

    def blocked_for(self, key: str, now: float) -> float:
        """Seconds ``key`` must still wait before it may try again (0: allowed)."""
        record = self._records.get(key)
        if record is None:
            return 0.0
        if now - max(record.last, record.until) > self.maximum:
            del self._records[key]
            return 0.0
        return max(0.0, record.until - now)

    def failed(self, key: str, now: float) -> float:
        """Record a failure; return the back-off it starts (0: none yet)."""
        self.blocked_for(key, now)  # forget a stale record
        record = self._records.setdefault(key, _Failures())
        record.count += 1
        record.last = now
        over = record.count - self.free
        if over <= 0:
            return 0.0
        delay = min(self.maximum, self.initial * 2.0 ** min(over - 1, 64))
        record.until = now + delay
        return delay

    def succeeded(self, key: str) -> None:
        self._records.pop(key, None)

    def __len__(self) -> int:
        return len(self._records)
