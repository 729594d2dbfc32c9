"""One write per receiving session per scheduler pass (xmpp_trio/_coalesce.py)."""

from __future__ import annotations

from typing import Any, cast

import trio
import trio.testing

from xmpp_trio._coalesce import WriteCoalescer


class Receiver:
    """Stands in for a Session: counts the writes asked of it."""

    def __init__(self, name: str, log: list[str]) -> None:
        self.name = name
        self.log = log

    def push(self) -> None:
        self.log.append(self.name)


def sessions(*receivers: Receiver) -> Any:
    return cast(Any, set(receivers))


def test_without_a_nursery_every_batch_is_written_at_once() -> None:
    log: list[str] = []
    writes = WriteCoalescer()
    alice = Receiver("alice", log)
    writes.push(sessions(alice), None)
    writes.push(sessions(alice), None)
    assert log == ["alice", "alice"]


async def test_batches_of_one_pass_make_one_write_per_receiver_at_the_next_pass() -> None:
    log: list[str] = []
    writes = WriteCoalescer()
    alice, bob = Receiver("alice", log), Receiver("bob", log)
    async with trio.open_nursery() as nursery:
        writes.push(sessions(alice), nursery)  # reader 1's batch
        writes.push(sessions(alice, bob), nursery)  # reader 2's, same pass
        assert log == []  # nothing written within the pass
        await trio.testing.wait_all_tasks_blocked()
        assert sorted(log) == ["alice", "bob"]
        writes.push(sessions(bob), nursery)
        await trio.testing.wait_all_tasks_blocked()
        assert sorted(log) == ["alice", "bob", "bob"]
        nursery.cancel_scope.cancel()


async def test_what_is_due_is_written_when_the_writer_task_ends() -> None:
    log: list[str] = []
    writes = WriteCoalescer()
    alice = Receiver("alice", log)
    async with trio.open_nursery() as nursery:
        writes.push(sessions(alice), nursery)
        nursery.cancel_scope.cancel()  # before the writer ran once
    assert log == ["alice"]
