"""In-band registration before authentication (XEP-0077): the server's stream
feature plug-in.

The I/O layer creates the account: the plug-in emits
:class:`RegistrationRequested` and takes the :class:`RegistrationAnswered`
answer (``conn.send(...)``, or ``registration_result()``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from xml.etree.ElementTree import Element

from ... import register
from ...errors import LocalProtocolError, StanzaErrorCondition
from ...xml import ns
from ..answers import Answer, RegistrationAnswered
from ..config import ServerConfig
from ..events import RegistrationRequested
from ..state import Input, State
from .base import FeatureHost, Stage, _iq_error

__all__ = ["RegisterFeature", "registration_offered"]


def registration_offered(conn: FeatureHost) -> bool:
    """In-band registration is possible on this stream now (XEP-0077 §8)."""
    config = conn.config
    return (
        config.allow_registration
        and conn.authenticated_jid is None
        and (conn.tls_active or not config.require_tls)
        and conn.domain not in config.anonymous_domains
    )


class RegisterFeature:
    """XEP-0077 §8: in-band registration, before authentication."""

    def offer(self, conn: FeatureHost) -> Iterator[Element]:
        if registration_offered(conn):
            yield register.feature_element()

    def claims(self, stage: Stage, config: ServerConfig) -> Iterable[str]:
        """Registration IQs before authentication (§3.1); other IQs are given back."""
        return (ns.IQ_TAG,) if stage is Stage.BEFORE_AUTH else ()

    def handle(self, conn: FeatureHost, stage: Stage, el: Element) -> bool:
        """An XEP-0077 IQ while registration is offered (§3.1, §8); any other
        IQ is given back to the stream."""
        if (
            conn.state is not State.NEGOTIATING
            or el.find(ns.REGISTER_QUERY_TAG) is None
            or not registration_offered(conn)
        ):
            return False
        _handle_registration(conn, el)
        return True

    def answers(self) -> tuple[type[Answer], ...]:
        return (RegistrationAnswered,)

    def answer(self, conn: FeatureHost, answer: Answer) -> None:
        """The account was created (``condition`` None), or the error to send
        (``conflict`` if it exists, §3.1)."""
        assert isinstance(answer, RegistrationAnswered)
        if conn.state is not State.AWAIT_REGISTRATION:
            raise LocalProtocolError("no registration was requested")
        request = conn._pending_registration
        assert request is not None
        conn._pending_registration = None
        conn._fire(Input.LOCAL_REGISTRATION_RESULT)
        if answer.condition is None:
            conn._send_element(Element(ns.IQ_TAG, {"type": "result", "id": request.get("id", "")}))
        else:
            conn._send_element(_iq_error(request, answer.condition))
        conn._process()


def _handle_registration(conn: FeatureHost, iq: Element) -> None:
    """XEP-0077 §3.1: the form for a ``get``, the account request for a ``set``."""
    query = iq.find(ns.REGISTER_QUERY_TAG)
    assert query is not None and conn.domain is not None
    iq_id = iq.get("id")
    kind = iq.get("type")
    if not iq_id or kind not in ("get", "set") or len(iq) != 1:
        conn._send_element(_iq_error(iq, StanzaErrorCondition.BAD_REQUEST))
        return
    if kind == "get":
        reply = Element(ns.IQ_TAG, {"type": "result", "id": iq_id})
        reply.append(register.registration_form(conn.config.registration_instructions))
        conn._send_element(reply)
        return
    try:
        request = register.parse_registration(query)
        if request.remove:  # §3.2: only an authenticated user can cancel
            raise register.RegistrationError(StanzaErrorCondition.NOT_AUTHORIZED, "log in first")
        local, password = register.validate_new_account(
            request.username, request.password, conn.domain
        )
    except register.RegistrationError as exc:
        conn._send_element(_iq_error(iq, exc.condition))
        return
    conn._pending_registration = iq
    conn._fire(Input.REGISTRATION_REQUESTED)
    conn._events.append(RegistrationRequested(local, password))
