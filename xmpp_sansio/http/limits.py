"""Per-address request rate limit of the HTTP listener (fixed one-minute
windows; ``now`` comes from the caller)."""

from __future__ import annotations

__all__ = ["RequestRateLimiter"]


class RequestRateLimiter:
    """At most ``per_minute`` requests per address in each minute.

    The table holds at most ``max_entries`` addresses; when full, the
    windows that ended are dropped (and if none has, the whole table: an
    attacker with that many addresses gets one fresh minute, never memory).
    """

    def __init__(self, per_minute: int, *, max_entries: int = 100_000) -> None:
        self.per_minute = per_minute
        self.max_entries = max_entries
        self._windows: dict[str, tuple[float, int]] = {}

    def allow(self, address: str, now: float) -> bool:
        """Count one request from ``address``; False once over the limit."""
        start, count = self._windows.get(address, (now, 0))
        if now - start >= 60.0:
            start, count = now, 0
        count += 1
        if address not in self._windows and len(self._windows) >= self.max_entries:
            self._windows = {a: w for a, w in self._windows.items() if now - w[0] < 60.0}
            if len(self._windows) >= self.max_entries:
                self._windows.clear()
        self._windows[address] = (start, count)
        return count <= self.per_minute
