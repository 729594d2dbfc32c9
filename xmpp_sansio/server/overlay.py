"""The write-through overlay every store's service reads through.

A service does not write: it returns
:class:`~xmpp_sansio.server.effects.Persist` effects, which the I/O layer
commits once per batch of input. Until the router reports them with the
:class:`~xmpp_sansio.server.stages.Committed` event, the reads of the same
batch must see them (a roster get after a roster set, the quota check of the
next offline message). :class:`Overlay` keeps, by key, the latest value a
pending write gives that key; the service reads it before its storage, and
:meth:`Overlay.settle` drops what a ``Committed`` event reports (written: the
storage now has it; failed: the storage is as before). Entries are matched
to ops by identity, so a key written again by a later batch keeps its newer
value when the earlier batch is reported. A router call that raised (an
:class:`~xmpp_sansio.server.stages.Abandoned` event) drops the entries of
every op the I/O layer does not hold (:meth:`Overlay.keep_only`).

One generic piece for every store (docs/architecture.md, "Storage at the
edge"): a service whose reads are not by key (a roster's records, a count)
combines :meth:`Overlay.items` with what its storage returns.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Generic, TypeVar

from .effects import StoreOp

__all__ = ["Overlay"]

K = TypeVar("K")
V = TypeVar("V")


class Overlay(Generic[K, V]):
    """Pending writes by key: ``key -> (op, value)``, the value the storage
    will hold for ``key`` once ``op`` is committed."""

    __slots__ = ("_pending", "writes")

    def __init__(self) -> None:
        self._pending: dict[K, tuple[StoreOp, V]] = {}
        #: The same table, to read only: ``if overlay.writes`` tests for
        #: pending writes without a call (a read on every stanza can afford it).
        self.writes: Mapping[K, tuple[StoreOp, V]] = self._pending

    def __bool__(self) -> bool:
        return bool(self._pending)

    def __len__(self) -> int:
        return len(self._pending)

    def write(self, key: K, value: V, op: StoreOp) -> None:
        """``op`` (not committed yet) gives ``key`` the value ``value``."""
        self._pending[key] = (op, value)

    def pending(self, key: K) -> V | None:
        """The pending value of ``key``, or ``None`` if no pending write gives
        it one (for values that are never ``None``; else see :meth:`read`)."""
        entry = self._pending.get(key)
        return None if entry is None else entry[1]

    def read(self, key: K, load: Callable[[K], V]) -> V:
        """The value ``key`` will have once the pending writes are committed:
        the pending one, else ``load(key)`` (the storage's)."""
        entry = self._pending.get(key)
        return load(key) if entry is None else entry[1]

    def items(self) -> Iterator[tuple[K, V]]:
        """Every key with a pending value (a snapshot: writing meanwhile is safe)."""
        return iter([(key, entry[1]) for key, entry in self._pending.items()])

    def settle(self, ops: Iterable[StoreOp]) -> None:
        """``ops`` were committed, or failed: drop the entries they wrote last."""
        if not self._pending:
            return
        done = {id(op) for op in ops}
        for key in [k for k, (op, _) in self._pending.items() if id(op) in done]:
            del self._pending[key]

    def keep_only(self, ops: Iterable[StoreOp]) -> None:
        """A call raised: keep the entries of ``ops`` (still pending in the
        I/O layer), drop every other (their Persist effects went nowhere)."""
        if not self._pending:
            return
        kept = {id(op) for op in ops}
        for key in [k for k, (op, _) in self._pending.items() if id(op) not in kept]:
            del self._pending[key]
