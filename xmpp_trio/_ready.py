"""A readiness dispatcher for parked readers (issue 24, one message in flight).

With one message in flight nearly every message the server reads costs a
reader wake-up of its own: Trio's ``wait_readable`` (an ``epoll_ctl`` that
re-arms ``EPOLLONESHOT`` at every wait), the task's rescheduling and the
resumption of its coroutine chain, ~16 us of CPU a round trip before the
session does anything. :class:`Ready` takes that cost off the common case: a
session whose stream is ready (bound, TLS on) and whose next read must wait
for the socket (``SocketTransport.would_wait``) *parks* on it. The parked
socket is registered once, level-triggered, in an epoll set of the
dispatcher's own; one task waits for that set's descriptor and, for each
ready socket, calls the session's synchronous read step
(``Session._step``: read without waiting, route the stanzas, write at the end
of the scheduler's pass as any reader does). The session's task stays blocked
until the step hands it back: at the end of the stream, an event other than a
stanza, a time slice used up, a read-rate wait, a stream no longer ready, or
an exception (raised in the task, so it ends that session as a reader's
exception does). The task then carries on on the ordinary path and parks again
once the rule holds again.

One round of the dispatcher serves every socket one poll of its set reports,
without a checkpoint in between, as one pass of Trio's scheduler ran every
runnable reader: what the round routes to a session is written once, at the
end of the pass (``_PassWrites``). The round is also one *batch* of the
server's (``Batching``: the part of ``_session.Server`` it uses, declared
here so that this module imports nothing of the session's): its steps route
into it, and its writes are committed once, at the round's end
(``end_batch``: one SQLite commit, its
fsync on the loop, for every roster set or other write the round's sessions
sent, not one per session), before any of its output (a reply, a XEP-0198
``<a h/>``) is written. A session's own flood is bounded by its 5 ms slice
(``_session._SLICE``: the step hands it back).

Level triggering keeps readiness true while the kernel holds unread bytes.
Bytes OpenSSL already took from the kernel (a read that stopped at
``max_bytes``) are not seen by epoll: such a session is run again in the next
round without waiting (``_again``). A parked task's cancellation (a kick, a
replacement, shutdown: its ``read_scope`` or ``scope``) unregisters the
socket, and so does closing the transport (before the socket closes; the task
then reads on the ordinary path and finds it closed). Linux only: without
:func:`select.epoll` (or before :meth:`Ready.run` starts) readers wait as
before.
"""

from __future__ import annotations

import logging
import select
from collections.abc import Callable
from contextlib import suppress
from typing import TYPE_CHECKING, Any, Final, Protocol

import trio

from xmpp_sansio.stream.events import Event

if TYPE_CHECKING:
    from ._transport import SocketTransport

    #: A parked session's synchronous read step (``Session._step``): None
    #: while it stays parked, else what its task carries on from.
    Step = Callable[[SocketTransport], "Resume | None"]

__all__ = ["READ", "Ready", "Resume"]

log = logging.getLogger("xmpp_trio.server")


class Resume:
    """What a parked session's task carries on from (``Session._resumed``):
    ``data`` the dispatcher read (None: nothing, the task reads itself); with
    ``routing``, the read's events are not all handled (``event`` first, if
    any; ``sliced``: the time slice ran out); without, ``delay`` seconds are
    due to the read rate."""

    __slots__ = ("data", "delay", "event", "routing", "sliced")

    def __init__(
        self,
        data: bytes | None,
        *,
        routing: bool = False,
        event: Event | None = None,
        sliced: bool = False,
        delay: float = 0.0,
    ) -> None:
        self.data = data
        self.routing = routing
        self.event = event
        self.sliced = sliced
        self.delay = delay


class Batching(Protocol):
    """What a round batches into (the server): ``batch``, the set of sessions
    with output to write, routes collect into while it is set; ``end_batch``
    commits the batch's writes, then writes its sessions' output."""

    batch: Any  # set[Session] | None (the server's; no import of it here)

    def end_batch(self, batch: Any) -> None: ...


#: Nothing was read: the task reads on the ordinary path.
READ: Final = Resume(None)


class _Parked:
    """One parked session: its task, its transport and socket, and what the
    dispatcher hands back."""

    __slots__ = ("error", "fd", "resume", "step", "task", "transport")

    def __init__(self, step: Step, transport: SocketTransport, fd: int) -> None:
        self.step = step
        self.transport = transport
        self.fd = fd
        self.task = trio.lowlevel.current_task()
        self.resume = READ
        self.error: Exception | None = None


class Ready:
    """The dispatcher: one per server, :meth:`run` in the server's nursery."""

    def __init__(self, batching: Batching | None = None) -> None:
        self._batching = batching  # each round one batch of its (None: each step its own)
        self._epoll = select.epoll()
        self._parked: dict[int, _Parked] = {}  # by file descriptor
        self._again: list[_Parked] = []  # OpenSSL may hold records: run without waiting
        #: sessions may park (:meth:`run` is running)
        self.running = False

    @classmethod
    def start(cls, nursery: trio.Nursery, batching: Batching | None = None) -> Ready | None:
        """A dispatcher running in ``nursery`` (None where :func:`select.epoll`
        does not exist), each round one batch of ``batching``'s."""
        if not hasattr(select, "epoll"):
            return None
        ready = cls(batching)
        nursery.start_soon(ready.run)
        return ready

    def __len__(self) -> int:
        """Sessions parked now."""
        return len(self._parked)

    def parked(self, transport: SocketTransport) -> bool:
        """Whether the reader of ``transport`` is parked."""
        entry = self._parked.get(transport.fileno())
        return entry is not None and entry.transport is transport

    async def park(self, step: Step, transport: SocketTransport) -> Resume:
        """Block the calling task (a session's reader, whose read ``step`` the
        dispatcher runs meanwhile) until the dispatcher hands it back (an
        exception of its step is raised here)."""
        fd = transport.fileno()
        entry = _Parked(step, transport, fd)
        self._epoll.register(fd, select.EPOLLIN)  # level-triggered: no re-arm a read
        self._parked[fd] = entry
        transport._on_close = lambda: self._hand_back(entry, READ)

        def abort(_: object) -> trio.lowlevel.Abort:
            self._unpark(entry)
            return trio.lowlevel.Abort.SUCCEEDED

        await trio.lowlevel.wait_task_rescheduled(abort)
        error = entry.error
        if error is not None:
            entry.error = None
            raise error
        return entry.resume

    def _unpark(self, entry: _Parked) -> bool:
        """Take ``entry`` out of the set (False: it was not parked)."""
        if self._parked.get(entry.fd) is not entry:
            return False
        del self._parked[entry.fd]
        entry.transport._on_close = None
        with suppress(OSError, ValueError):  # ValueError: the set is closed
            self._epoll.unregister(entry.fd)
        return True

    def _hand_back(self, entry: _Parked, resume: Resume, error: Exception | None = None) -> None:
        """Wake ``entry``'s task with ``resume`` (or ``error`` to raise)."""
        if self._unpark(entry):
            entry.resume = resume
            entry.error = error
            trio.lowlevel.reschedule(entry.task)

    def _serve(self, entry: _Parked) -> None:
        """Run one step of a parked session, in its task's context (its log
        lines name it); hand it back if the step says so or raised."""
        try:
            resume = entry.task.context.run(entry.step, entry.transport)
        except Exception as exc:  # the session's task raises it: it ends that session
            self._hand_back(entry, READ, exc)
            return
        if resume is not None:
            self._hand_back(entry, resume)
        elif not entry.transport.would_wait and self._parked.get(entry.fd) is entry:
            self._again.append(entry)  # OpenSSL may hold whole records: epoll cannot tell

    @staticmethod
    def _end_round(batching: Batching, batch: set[object]) -> None:
        """Commit the round's writes, then write its output; an error is
        logged (it would otherwise end the dispatcher, every parked session's
        reader)."""
        try:
            batching.end_batch(batch)
        except Exception:
            log.exception("ending a round of parked reads")
            batching.batch = None

    async def run(self) -> None:
        """Serve parked sessions until cancelled; then hand every one back."""
        epoll = self._epoll
        parked = self._parked
        self.running = True
        try:
            while True:
                again = self._again
                if again:
                    self._again = []
                    await trio.lowlevel.checkpoint()
                else:
                    await trio.lowlevel.wait_readable(epoll.fileno())
                # One round serves every socket one poll reports (at most 1,023),
                # as one pass of Trio's scheduler ran every runnable reader: no
                # checkpoint within it, so what the round routes to a session
                # goes out in one write at the end of the pass; one batch, so
                # its writes are committed once, before any of its output.
                batching = self._batching
                batch: set[object] = set()
                if batching is not None:
                    batching.batch = batch
                try:
                    for fd, _ in epoll.poll(0):
                        entry = parked.get(fd)
                        if entry is not None:
                            self._serve(entry)
                    for entry in again:
                        if parked.get(entry.fd) is entry:  # not handed back meanwhile
                            self._serve(entry)
                finally:
                    if batching is not None:
                        self._end_round(batching, batch)
        finally:
            self.running = False
            for entry in list(parked.values()):
                self._hand_back(entry, READ)
            trio.lowlevel.notify_closing(epoll.fileno())
            epoll.close()
