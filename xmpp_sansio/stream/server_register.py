"""In-band registration before authentication (XEP-0077), the server side of
a c2s stream. The I/O layer creates the account (:class:`RegistrationRequested`,
answered with :meth:`registration_result`)."""

from __future__ import annotations

from xml.etree.ElementTree import Element

from .. import register
from ..errors import LocalProtocolError, StanzaErrorCondition
from ..xml import ns
from .events import RegistrationRequested
from .features import _iq_error
from .server_role import _ServerRole
from .state import Input, State


class _ServerRegister(_ServerRole):
    """XEP-0077 §3 on a stream that is not authenticated yet."""

    def registration_result(self, condition: StanzaErrorCondition | None = None) -> None:
        """Answer a :class:`RegistrationRequested` event: ``None`` when the account
        was created, else the error (``conflict`` if it exists, XEP-0077 §3.1)."""
        if self._state is not State.AWAIT_REGISTRATION:
            raise LocalProtocolError("no registration was requested")
        request = self._pending_registration
        assert request is not None
        self._pending_registration = None
        self._fire(Input.LOCAL_REGISTRATION_RESULT)
        if condition is None:
            self._send_element(Element(ns.IQ_TAG, {"type": "result", "id": request.get("id", "")}))
        else:
            self._send_element(_iq_error(request, condition))
        self._process()

    def _handle_register_element(self, el: Element) -> bool:
        """An XEP-0077 IQ while registration is offered (§3.1, §8). Whether
        ``el`` was registration's."""
        if (
            el.tag == ns.IQ_TAG
            and self._state is State.NEGOTIATING
            and el.find(ns.REGISTER_QUERY_TAG) is not None
            and self.registration_offered
        ):
            self._handle_registration(el)
            return True
        return False

    def _handle_registration(self, iq: Element) -> None:
        """In-band registration before authentication (XEP-0077 §3.1)."""
        query = iq.find(ns.REGISTER_QUERY_TAG)
        assert query is not None and self.domain is not None
        iq_id = iq.get("id")
        kind = iq.get("type")
        if not iq_id or kind not in ("get", "set") or len(iq) != 1:
            self._send_element(_iq_error(iq, StanzaErrorCondition.BAD_REQUEST))
            return
        if kind == "get":
            reply = Element(ns.IQ_TAG, {"type": "result", "id": iq_id})
            reply.append(register.registration_form(self.config.registration_instructions))
            self._send_element(reply)
            return
        try:
            request = register.parse_registration(query)
            if request.remove:  # §3.2: only an authenticated user can cancel
                raise register.RegistrationError(
                    StanzaErrorCondition.NOT_AUTHORIZED, "log in first"
                )
            local, password = register.validate_new_account(
                request.username, request.password, self.domain
            )
        except register.RegistrationError as exc:
            self._send_element(_iq_error(iq, exc.condition))
            return
        self._pending_registration = iq
        self._fire(Input.REGISTRATION_REQUESTED)
        self._events.append(RegistrationRequested(local, password))
