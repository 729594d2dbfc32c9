"""SASL upgrade tasks (XEP-0480) on the server: an account with SCRAM-SHA-1
credentials only (imported, XEP-0227) gains SHA-256 and SHA-512 from a
client that asks, without a password reset.

Theory of operation
-------------------
``<authentication/>`` lists ``<upgrade>UPGR-SCRAM-SHA-256</upgrade>`` and
``-512`` (§2.1). A client lists the tasks it wants in ``<authenticate/>``
(§2.2). Once authenticated, the plug-in asks the I/O layer which of those
hashes the account lacks (:class:`UpgradeTasksRequested`, answered with
``UpgradeTasksNeeded``); for each, ``<continue/>`` names one task (the SCRAM
``<additional-data/>`` in the first), the client's ``<next task/>`` gets
``<task-data><salt iterations/></task-data>`` (§3: a fresh salt,
``decoy_iterations`` iterations, the count of new credentials), and its
``<task-data><hash/></task-data>``, the SaltedPassword, becomes the stored
keys (:class:`CredentialsUpgraded`: two HMACs and a hash, no PBKDF2 on the
server). Then the other inline steps run and ``<success/>`` follows. A task
that goes wrong (another task, no or bad hash) ends the stream with
``not-authorized``: the authentication already succeeded, so there is no
SASL failure left to send.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator
from typing import Final
from xml.etree.ElementTree import Element, SubElement

from ...errors import LocalProtocolError, StreamErrorCondition
from ...sasl.credentials import ScramCredentials, keys_from_salted_password
from ...xml import ns
from ..answers import Answer, UpgradeTasksNeeded
from ..events import CredentialsUpgraded, UpgradeTasksRequested
from .base import FeatureHost
from .inline import UPGRADE_NS, UpgradeState

__all__ = ["SCRAM_UPGRADE_NS", "TASKS", "UpgradeFeature", "offer", "start"]

SCRAM_UPGRADE_NS: Final = "urn:xmpp:scram-upgrade:0"
#: the task names by the hash they add (§3: never a -PLUS name)
TASKS: Final = {"UPGR-SCRAM-SHA-256": "sha256", "UPGR-SCRAM-SHA-512": "sha512"}
_SALT_BYTES: Final = 16
NEXT_TAG: Final = "{" + ns.SASL2 + "}next"
TASK_DATA_TAG: Final = "{" + ns.SASL2 + "}task-data"


def offer() -> Iterator[Element]:
    """The ``<upgrade/>`` elements of ``<authentication/>`` (§2.1)."""
    for task in TASKS:
        el = Element("{" + UPGRADE_NS + "}upgrade")
        el.text = task
        yield el


def start(conn: FeatureHost, success: Element) -> bool:
    """After authentication: ask which requested upgrades apply; True when
    the inline steps must wait for the answer."""
    inline = conn._inline
    hashes = tuple(dict.fromkeys(TASKS[t] for t in inline.upgrades if t in TASKS)) if inline else ()
    if not hashes:
        return False
    assert conn.authenticated_jid is not None
    conn._upgrade = UpgradeState(success, [])
    conn._events.append(UpgradeTasksRequested(conn.authenticated_jid, hashes))
    return True


class UpgradeFeature:
    """XEP-0480: offered inside SASL2's ``<authentication/>``; this plug-in
    takes the I/O layer's answer and the client's task elements."""

    def offer(self, conn: FeatureHost) -> Iterator[Element]:
        return iter(())

    def answers(self) -> tuple[type[Answer], ...]:
        return (UpgradeTasksNeeded,)

    def answer(self, conn: FeatureHost, answer: Answer) -> None:
        assert isinstance(answer, UpgradeTasksNeeded)
        state = conn._upgrade
        if state is None or state.current is not None or state.tasks:
            raise LocalProtocolError("no upgrade tasks were asked about")
        by_hash = {h: t for t, h in TASKS.items()}
        state.tasks = [by_hash[h] for h in answer.hashes if h in by_hash]
        _next_task(conn, state, first=True)
        conn._process()


def handle(conn: FeatureHost, el: Element) -> None:
    """``<next task/>`` and ``<task-data/>`` of the task in progress (§2.3, §3)."""
    state = conn._upgrade
    if state is None or state.current is None:
        conn._stream_error(StreamErrorCondition.NOT_AUTHORIZED, "no upgrade task in progress")
        return
    if el.tag == NEXT_TAG and not state.salt:
        if el.get("task") != state.current:
            conn._stream_error(StreamErrorCondition.NOT_AUTHORIZED, "not the task offered")
            return
        state.salt = conn.config.rng(_SALT_BYTES)
        data = Element(TASK_DATA_TAG)
        salt = SubElement(
            data,
            "{" + SCRAM_UPGRADE_NS + "}salt",
            iterations=str(conn.config.decoy_iterations),
        )
        salt.text = base64.b64encode(state.salt).decode("ascii")
        conn._send_element(data)
        return
    hash_el = el.find("{" + SCRAM_UPGRADE_NS + "}hash") if el.tag == TASK_DATA_TAG else None
    hash_name = TASKS[state.current]
    try:
        salted = (
            base64.b64decode((hash_el.text or "").strip(), validate=True)
            if hash_el is not None
            else b""
        )
    except (binascii.Error, ValueError):
        salted = b""
    if not state.salt or len(salted) != len(keys_from_salted_password(b"", hash_name)[2]):
        conn._stream_error(StreamErrorCondition.NOT_AUTHORIZED, "bad upgrade task data")
        return
    _, stored_key, server_key = keys_from_salted_password(salted, hash_name)
    credentials = ScramCredentials(
        hash_name=hash_name,
        salt=state.salt,
        iterations=conn.config.decoy_iterations,
        stored_key=stored_key,
        server_key=server_key,
    )
    assert conn.authenticated_jid is not None
    conn._events.append(CredentialsUpgraded(conn.authenticated_jid, credentials))
    state.current, state.salt = None, b""
    _next_task(conn, state, first=False)


def _next_task(conn: FeatureHost, state: UpgradeState, *, first: bool) -> None:
    """``<continue/>`` with the next task, or on to the other inline steps."""
    if not state.tasks:
        conn._upgrade = None
        conn._upgrades_done(state.success)
        return
    state.current = state.tasks.pop(0)
    cont = Element("{" + ns.SASL2 + "}continue")
    additional = state.success.find("{" + ns.SASL2 + "}additional-data")
    if first and additional is not None:  # the mechanism's data goes with the first
        state.success.remove(additional)
        cont.append(additional)
    tasks = SubElement(cont, "{" + ns.SASL2 + "}tasks")
    SubElement(tasks, "{" + ns.SASL2 + "}task").text = state.current
    conn._send_element(cont)
