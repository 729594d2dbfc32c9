"""What a message archive (XEP-0313) stores and how it is read: the store
operations (``Persist`` effects), the page query (a ``Load`` effect), the
storage contract and an in-memory backend.

Order: every archived message gets a ``seq`` from its store, increasing in
the order of the writes, and its XEP-0359 ``stanza-id`` (``sid``, opaque,
unique per archive). Pages are ranges of ``seq``: a query names a message by
its ``sid`` (``after-id``, ``before-id``, RSM ``after``/``before``) and the
store finds its ``seq`` (XEP-0313 §4.1.1, XEP-0059 §2)."""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from ...jid import JID

__all__ = [
    "ArchiveMeta",
    "ArchivePage",
    "ArchivePrefsPut",
    "ArchivePut",
    "ArchiveQuery",
    "ArchiveRemove",
    "ArchiveReplace",
    "ArchiveStorage",
    "ArchivedMessage",
    "MamOp",
    "MamQuery",
    "MemoryArchive",
    "Prefs",
    "UnknownId",
]


@dataclass(frozen=True, slots=True)
class Prefs:
    """Archiving preferences of one account (XEP-0313 §6): ``default`` is
    ``always``, ``never`` or ``roster``; JIDs in ``always``/``never`` (bare or
    full, as given) override it."""

    default: str = "always"
    always: tuple[JID, ...] = ()
    never: tuple[JID, ...] = ()


@dataclass(slots=True)
class ArchivePut:
    """Archive ``stanza`` (serialised) in ``archive`` (a bare JID: an account
    or a room) under ``sid``, with ``with_`` the peer, and in each archive of
    ``also`` (``(archive, with)`` pairs: the other side of a message between
    two local accounts, one write for both); keep at most ``keep`` messages
    per archive, dropping the oldest, and none older than ``retention``
    seconds (0: forever) from ``stamp``.

    Not frozen, unlike the other ops, but never changed once built: one is
    built per archived message, and a frozen dataclass's ``__init__`` (one
    ``object.__setattr__`` a field) costs about 4.5 times a plain one's."""

    archive: JID
    sid: str
    with_: JID
    stamp: float
    stanza: bytes
    keep: int
    retention: float = 0.0
    also: tuple[tuple[JID, JID], ...] = ()

    def owners(self) -> tuple[tuple[JID, JID], ...]:
        """Every ``(archive, with)`` this put writes to."""
        return ((self.archive, self.with_), *self.also)


@dataclass(frozen=True, slots=True)
class ArchivePrefsPut:
    """Store ``archive``'s preferences (XEP-0313 §6.1)."""

    archive: JID
    prefs: Prefs


@dataclass(frozen=True, slots=True)
class ArchiveRemove:
    """Forget ``archive`` and its preferences (account removal, room destroyed)."""

    archive: JID


@dataclass(frozen=True, slots=True)
class ArchiveReplace:
    """Replace the stored stanza of the message ``sid`` in ``archive`` by
    ``stanza`` (a XEP-0425 §5 tombstone); nothing when it is not there."""

    archive: JID
    sid: str
    stanza: bytes


#: The archive's store operations.
MamOp = ArchivePut | ArchivePrefsPut | ArchiveRemove | ArchiveReplace


@dataclass(frozen=True, slots=True)
class ArchiveQuery:
    """One page of ``archive`` (a ``Load`` query). Filters (XEP-0313 §4.1.1,
    §4.1.2): ``with_`` (a bare JID matches every resource, a full JID only
    itself), ``start``/``end`` (inclusive stamps), ``after_id``/``before_id``
    (exclusive), ``ids`` (only these). Paging (XEP-0059 §2): ``max`` items;
    ``after`` the first page after that id, ``before`` the last page before
    it ("" : the last page of the set); neither: the first page; ``index``
    (XEP-0059 §2.5, without ``after``/``before``) the page that starts at
    that position of the set (empty past its end)."""

    archive: JID
    max: int
    with_: JID | None = None
    start: float | None = None
    end: float | None = None
    after_id: str | None = None
    before_id: str | None = None
    ids: tuple[str, ...] | None = None
    after: str | None = None
    before: str | None = None
    index: int | None = None


@dataclass(frozen=True, slots=True)
class ArchiveMeta:
    """The first and last message of ``archive`` (XEP-0313 §6.2 metadata):
    answered with ``(first, last)``, each an :class:`ArchivedMessage` or
    ``None`` when the archive is empty."""

    archive: JID


#: The archive's long reads (``Load`` queries).
MamQuery = ArchiveQuery | ArchiveMeta


@dataclass(frozen=True, slots=True)
class ArchivedMessage:
    """A message as archived: ``stanza`` serialised, its ``sid``, ``stamp``."""

    sid: str
    seq: int
    with_: JID
    stamp: float
    stanza: bytes


@dataclass(frozen=True, slots=True)
class ArchivePage:
    """A page in archive order (oldest first). ``complete``: no message of
    the set lies beyond it in the paging direction (XEP-0313 §4.3).
    ``count`` is the size of the set and ``first_index`` the position of the
    page's first item in it, when the store can tell them cheaply (else
    ``None``: XEP-0059 §2.6 makes both optional)."""

    items: tuple[ArchivedMessage, ...]
    complete: bool
    count: int | None = None
    first_index: int | None = None


@dataclass(frozen=True, slots=True)
class UnknownId:
    """A page query named an id the archive does not have (XEP-0313 §4.1.1:
    ``item-not-found``)."""

    sid: str


class ArchiveStorage(Protocol):
    """The contract of an archive backend (tests/test_mam_store.py checks it).

    ``write(op)`` carries out a :data:`MamOp` in the caller's transaction;
    ``apply(ops)`` carries out several, in order, all or nothing (another
    store's op raises ``TypeError``); ``load(query)`` answers a page
    (:class:`ArchivePage` or :class:`UnknownId`); ``prefs(archive)`` reads
    the stored preferences (``None``: never set). ``seq`` grows with every
    write, per store, and is never reused; an ``ArchivePut`` whose ``sid``
    the archive holds already is ignored (a message is archived once)."""

    def write(self, op: object) -> None: ...

    def apply(self, ops: Sequence[object]) -> None: ...

    def load(
        self, query: object
    ) -> ArchivePage | UnknownId | tuple[ArchivedMessage | None, ArchivedMessage | None]: ...

    def prefs(self, archive: JID) -> Prefs | None: ...

    def count(self, archive: JID) -> int: ...


def matches_with(with_: JID, wanted: JID) -> bool:
    """XEP-0313 §4.1.1.1: a bare ``with`` matches any resource of it."""
    if wanted.resource is None:
        return with_.bare == wanted
    return with_ == wanted


@dataclass(slots=True)
class _Archive:
    seqs: list[int] = field(default_factory=list)
    items: list[ArchivedMessage] = field(default_factory=list)
    by_sid: dict[str, ArchivedMessage] = field(default_factory=dict)


class MemoryArchive:
    """:class:`ArchiveStorage` in memory (tests; a server without a database)."""

    def __init__(self) -> None:
        self._archives: dict[JID, _Archive] = {}
        self._prefs: dict[JID, Prefs] = {}
        self._seq = 0

    def write(self, op: object) -> None:
        match op:
            case ArchivePut():
                self._seq += 1
                for owner, with_ in op.owners():
                    self._put(op, owner, with_)
            case ArchivePrefsPut():
                self._prefs[op.archive] = op.prefs
            case ArchiveRemove():
                self._archives.pop(op.archive, None)
                self._prefs.pop(op.archive, None)
            case ArchiveReplace():
                self._replace(op)
            case _:
                raise TypeError(f"not an archive op: {op!r}")

    def _put(self, op: ArchivePut, owner: JID, with_: JID) -> None:
        archive = self._archives.setdefault(owner, _Archive())
        if op.sid in archive.by_sid:
            return
        # with_ is kept as given: a full JID when the peer was one.
        item = ArchivedMessage(op.sid, self._seq, with_, op.stamp, op.stanza)
        archive.seqs.append(item.seq)
        archive.items.append(item)
        archive.by_sid[op.sid] = item
        drop = max(0, len(archive.items) - op.keep)
        if op.retention > 0:
            while drop < len(archive.items) and (
                archive.items[drop].stamp < op.stamp - op.retention
            ):
                drop += 1
        if drop:
            for gone in archive.items[:drop]:
                del archive.by_sid[gone.sid]
            del archive.items[:drop]
            del archive.seqs[:drop]

    def _replace(self, op: ArchiveReplace) -> None:
        archive = self._archives.get(op.archive)
        old = None if archive is None else archive.by_sid.get(op.sid)
        if archive is None or old is None:
            return
        new = ArchivedMessage(old.sid, old.seq, old.with_, old.stamp, op.stanza)
        archive.by_sid[op.sid] = new
        archive.items[bisect.bisect_left(archive.seqs, old.seq)] = new

    def apply(self, ops: Sequence[object]) -> None:
        for op in ops:
            if not isinstance(op, ArchivePut | ArchivePrefsPut | ArchiveRemove | ArchiveReplace):
                raise TypeError(f"not an archive op: {op!r}")
        for op in ops:
            self.write(op)

    def prefs(self, archive: JID) -> Prefs | None:
        return self._prefs.get(archive)

    def count(self, archive: JID) -> int:
        found = self._archives.get(archive)
        return 0 if found is None else len(found.items)

    def load(
        self, query: object
    ) -> ArchivePage | UnknownId | tuple[ArchivedMessage | None, ArchivedMessage | None]:
        if isinstance(query, ArchiveMeta):
            found = self._archives.get(query.archive)
            if found is None or not found.items:
                return (None, None)
            return (found.items[0], found.items[-1])
        if not isinstance(query, ArchiveQuery):
            raise TypeError(f"not an archive query: {query!r}")
        archive = self._archives.get(query.archive, _Archive())
        bounds: list[int] = []
        for sid in (query.after_id, query.before_id, query.after, query.before or None):
            if sid is None:
                bounds.append(-1)
                continue
            named = archive.by_sid.get(sid)
            if named is None:
                return UnknownId(sid)
            bounds.append(bisect.bisect_left(archive.seqs, named.seq))
        after_id, before_id, after, before = bounds
        for sid in query.ids or ():
            if sid not in archive.by_sid:
                return UnknownId(sid)
        # The form's range gives the set (count, index); RSM narrows it.
        lo = after_id + 1 if after_id >= 0 else 0
        hi = before_id if before_id >= 0 else len(archive.items)
        full = [m for m in archive.items[lo:hi] if _keep(m, query)]
        seqs = [m.seq for m in full]
        start = 0 if after < 0 else bisect.bisect_right(seqs, archive.seqs[after])
        stop = len(full) if before < 0 else bisect.bisect_left(seqs, archive.seqs[before])
        if query.index is not None:  # XEP-0059 §2.5: by position in the set
            start = min(query.index, len(full))
        window = full[start:stop] if start < stop else []
        if query.before is not None:
            page = window[max(0, len(window) - query.max) :]
            first = max(start, stop - query.max)
        else:
            page = window[: query.max]
            first = start
        return ArchivePage(
            tuple(page), len(page) == len(window), len(full), first if page else None
        )


def _keep(m: ArchivedMessage, q: ArchiveQuery) -> bool:
    if q.with_ is not None and not matches_with(m.with_, q.with_):
        return False
    if q.start is not None and m.stamp < q.start:
        return False
    if q.end is not None and m.stamp > q.end:
        return False
    return q.ids is None or m.sid in q.ids
