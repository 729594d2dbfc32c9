"""Bind 2 (XEP-0386) and the other features negotiated inline in SASL2
(XEP-0388 §2.1 ``<inline/>``): XEP-0198 resumption and enabling, carbons
(XEP-0280) and client state (XEP-0352), on the server.

Theory of operation
-------------------
``<authenticate/>`` may carry ``<bind xmlns='urn:xmpp:bind:0'/>`` and a
XEP-0198 ``<resume/>`` (:func:`parse_inline`, kept on ``conn._inline``).
Nothing of them is processed unless authentication succeeds (XEP-0388
§2.6.2). Once it has, :func:`proceed` holds the ``<success/>`` element back
(``conn._pending_success``) while the inline steps run, each of which may
ask the I/O layer and wait for its answer:

1. ``<resume/>`` first (XEP-0386 §3.2 note): :class:`ResumeRequested`, as
   for the classic ``<resume/>``; accepted, ``<resumed/>`` goes into
   ``<success/>`` and the bind request is ignored; refused, ``<failed/>``
   goes into it and binding proceeds.
2. ``<bind/>``: a resource ``tag/suffix`` (§3.3: the client's tag as a
   prefix, a random server-chosen suffix) asked of the I/O layer with
   ``ask_before_bind`` (:class:`BindRequested`); accepted, the stream is
   bound, SM enabled inline (``<enabled/>`` in ``<bound/>``), CSI set, and
   :class:`ResourceBound` says whether to enable carbons. Refused, the
   ``<success/>`` has no ``<bound/>`` and the client may bind the classic way.
3. ``<success/>`` goes out (its ``<authorization-identifier/>`` the full JID
   once bound), followed by the stream features (XEP-0388 §2.6.1: bind and
   SM are no longer offered once done).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final
from xml.etree.ElementTree import Element, SubElement

from ...jid import JID, InvalidJID
from ...sm import Failed, build_nonza
from ...xml import ns
from ..events import BindRequested, ClientStateChanged, Event, ResourceBound, ResumeRequested
from ..state import Input
from . import fast, upgrade
from .base import FeatureHost
from .inline import BIND2_NS, CARBONS_NS, MAX_TAG, Bind2Request, InlineRequest, parse_inline
from .sm import enable_stream_management

__all__ = [
    "BIND2_NS",
    "CARBONS_NS",
    "MAX_TAG",
    "Bind2Request",
    "InlineRequest",
    "after_upgrades",
    "inline_offer",
    "parse_inline",
    "proceed",
]

_SUFFIX_BYTES: Final = 6


def inline_offer(conn: FeatureHost) -> Iterator[Element]:
    """The children of SASL2's ``<inline/>`` (XEP-0386 §3.1, XEP-0198 in SASL2):
    ``<bind/>`` listing the session features it enables, and ``<sm/>`` for
    resumption."""
    bind = Element("{" + BIND2_NS + "}bind")
    inline = SubElement(bind, "{" + BIND2_NS + "}inline")
    SubElement(inline, "{" + BIND2_NS + "}feature", var=CARBONS_NS)
    if conn.config.csi:
        SubElement(inline, "{" + BIND2_NS + "}feature", var=ns.CSI)
    if conn.config.stream_management:
        SubElement(inline, "{" + BIND2_NS + "}feature", var=ns.SM)
    yield bind
    if conn.config.stream_management:
        yield Element(ns.SM_TAG)


def proceed(conn: FeatureHost, success: Element) -> None:
    """Authentication succeeded: run the inline steps (XEP-0480 upgrade tasks,
    FAST tokens, resumption, then binding) and send ``success`` when they are
    done (module docstring)."""
    if not upgrade.start(conn, success):
        after_upgrades(conn, success)


def after_upgrades(conn: FeatureHost, success: Element) -> None:
    """The inline steps after the upgrade tasks (XEP-0480) are done."""
    request = conn._inline or InlineRequest()
    conn._pending_success = success
    fast.after_auth(conn, success)  # XEP-0484: tokens before the session
    resume = request.resume
    if resume is not None and conn.config.stream_management:
        conn._resume_attempted = True
        if conn.config.sm_resume_timeout > 0:
            assert conn.authenticated_jid is not None
            conn._resume_request = resume
            conn._fire(Input.RESUME_REQUESTED)
            conn._events.append(ResumeRequested(resume.previd, resume.h, conn.authenticated_jid))
            return  # sm.py answers: resume_answered
        success.append(build_nonza(Failed("feature-not-implemented")))
    _bind(conn)


def resume_answered(conn: FeatureHost, answer: Element) -> None:
    """The inline ``<resume/>`` was answered (``answer``: ``<resumed/>`` or
    ``<failed/>``, into ``<success/>``). Resumed, the bind request is ignored;
    failed, binding proceeds (XEP-0386 §3.2 note)."""
    success = conn._pending_success
    assert success is not None
    success.append(answer)
    if answer.tag == ns.SM_RESUMED_TAG:
        send_success(conn)
    else:
        _bind(conn)


def send_success(conn: FeatureHost) -> None:
    """``<success/>`` and the features of the authenticated stream (XEP-0388 §2.6.1)."""
    success = conn._pending_success
    assert success is not None
    conn._pending_success = None
    conn._inline = None
    conn._user_agent = None
    conn._send_element(success)
    conn._send_element(conn._features())


def _bind(conn: FeatureHost) -> None:
    request = conn._inline.bind if conn._inline is not None else None
    if request is None:
        send_success(conn)
        return
    assert conn.authenticated_jid is not None
    suffix = conn.config.rng(_SUFFIX_BYTES).hex()
    try:
        resource = f"{request.tag}/{suffix}" if request.tag else suffix
        jid = conn.authenticated_jid.with_resource(resource)
    except InvalidJID:  # a tag that is no resource: the suffix alone
        jid = conn.authenticated_jid.with_resource(suffix)
    if conn.config.ask_before_bind:
        conn._pending_bind = ("", jid)
        conn._fire(Input.BIND_REQUESTED)
        conn._events.append(BindRequested(jid))
        return  # bind.py answers: bind_answered
    bind_answered(conn, jid, accepted=True)


def bind_answered(conn: FeatureHost, jid: JID, *, accepted: bool) -> None:
    """The I/O layer let ``jid`` be bound, or not (then no ``<bound/>``: the
    client may bind the classic way, RFC 6120 §7)."""
    if not accepted:
        conn._fire(Input.LOCAL_BIND_REFUSED)
        send_success(conn)
        return
    request = conn._inline.bind if conn._inline is not None else None
    assert request is not None
    success = conn._pending_success
    assert success is not None
    identifier = success.find("{" + ns.SASL2 + "}authorization-identifier")
    if identifier is not None:
        identifier.text = str(jid)
    bound = SubElement(success, "{" + BIND2_NS + "}bound")
    conn.jid = jid
    if request.active is False and conn.config.csi:
        conn.client_active = False
    events: list[Event] = [ResourceBound(jid, carbons=request.carbons)]
    if request.active is False and conn.config.csi:
        events.append(ClientStateChanged(False))
    if request.sm_enable is not None and conn.config.stream_management:
        bound.append(enable_stream_management(conn, request.sm_enable, events))
    send_success(conn)
    conn._fire(Input.BOUND)
    conn._events.extend(events)
