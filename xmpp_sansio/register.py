"""In-Band Registration (XEP-0077) codecs, shared by the server and the client.

Pure functions over elements: the server's stream connection uses
:func:`feature_element`, :func:`registration_form`, :func:`parse_registration`
and :func:`validate_new_account` for registration before authentication
(XEP-0077 §3.1, §3.1.1); :mod:`xmpp_sansio.server.register` uses them for
password changes and account removal once authenticated (§3.2, §3.3); a client
builds its requests with :func:`registration_request` and
:func:`removal_request`.

Section numbers are those of XEP-0077 version 2.4: §3.1 Entity Registers with
a Host (§3.1.1 Registration with a Server), §3.2 Entity Cancels an Existing
Registration, §3.3 User Changes Password, §4 Extensibility (data forms), §6
Precedence Order, §8 Stream Feature, §10 Determining Support.

The few XEP-0004 data form elements needed here are built and read with
small local helpers; they should move to the shared data forms module.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final
from xml.etree.ElementTree import Element

from .errors import StanzaErrorCondition
from .forms import Field, FieldType, Form, FormError, FormType, build_form, parse_form
from .jid import JID, InvalidJID
from .sasl.credentials import normalize_password

__all__ = [
    "CHANGE_PASSWORD_FORM_TYPE",
    "DATA_FORMS",
    "REGISTER",
    "REGISTER_FEATURE",
    "Registration",
    "RegistrationError",
    "feature_element",
    "parse_registration",
    "registered_response",
    "registration_form",
    "registration_request",
    "removal_request",
    "username_to_localpart",
    "validate_new_account",
]

#: The ``jabber:iq:register`` namespace, also its disco#info feature (§10)
#: and the FORM_TYPE of the registration form (§13.4.1).
REGISTER: Final = "jabber:iq:register"
#: The stream feature namespace (§8).
REGISTER_FEATURE: Final = "http://jabber.org/features/iq-register"
#: FORM_TYPE of the password change form (§13.4.3).
CHANGE_PASSWORD_FORM_TYPE: Final = "jabber:iq:register:changepassword"
#: XEP-0004 Data Forms.
DATA_FORMS: Final = "jabber:x:data"

_QUERY: Final = f"{{{REGISTER}}}query"
_X: Final = f"{{{DATA_FORMS}}}x"
_ACCEPTED_FORM_TYPES: Final = frozenset({REGISTER, CHANGE_PASSWORD_FORM_TYPE})


class RegistrationError(ValueError):
    """A registration request cannot be accepted; ``condition`` is the stanza
    error to answer it with."""

    def __init__(self, condition: StanzaErrorCondition, message: str) -> None:
        super().__init__(f"{condition}: {message}")
        self.condition = condition
        self.text = message


@dataclass(frozen=True, slots=True)
class Registration:
    """What an IQ-set in ``jabber:iq:register`` asks for.

    ``remove`` is true for a cancellation (§3.2); then ``username`` and
    ``password`` are ``None``. Otherwise they are the submitted values, ``None``
    when missing or empty (an empty ``<password/>`` is "not provided", §3.1
    footnote and §3.3), not yet validated: see :func:`validate_new_account`.
    """

    username: str | None
    password: str | None
    remove: bool = False


# ---------------------------------------------------------------------------
# building


def feature_element() -> Element:
    """The ``<register xmlns='http://jabber.org/features/iq-register'/>`` stream
    feature (§8). Offer it on client-to-server streams only, and only where
    registration is allowed (§8: not to other servers)."""
    return Element(f"{{{REGISTER_FEATURE}}}register")


def _text_element(tag: str, text: str | None = None) -> Element:
    el = Element(tag)
    el.text = text
    return el


def registration_form(instructions: str) -> Element:
    """The ``<query xmlns='jabber:iq:register'/>`` answering an IQ-get from an
    entity that is not registered (§3.1).

    It holds ``<instructions/>``, the empty ``<username/>`` and ``<password/>``
    fields, and an equivalent XEP-0004 form (FORM_TYPE ``jabber:iq:register``,
    ``username`` and ``password``): the "x:data form + iq:register fields"
    combination of §6, for clients with and without data forms (§4).
    """
    query = Element(_QUERY)
    query.append(_text_element(f"{{{REGISTER}}}instructions", instructions))
    query.append(Element(f"{{{REGISTER}}}username"))
    query.append(Element(f"{{{REGISTER}}}password"))
    query.append(
        build_form(
            Form(
                type=FormType.FORM,
                title="Account registration",
                instructions=(instructions,),
                fields=(
                    Field("FORM_TYPE", FieldType.HIDDEN, values=(REGISTER,)),
                    Field("username", FieldType.TEXT_SINGLE, label="Username", required=True),
                    Field("password", FieldType.TEXT_PRIVATE, label="Password", required=True),
                ),
            )
        )
    )
    return query


def registered_response(username: str, instructions: str | None = None) -> Element:
    """The ``<query/>`` answering an IQ-get from a registered entity (§3.1):
    ``<registered/>``, the optional ``<instructions/>``, the ``<username/>`` on
    file and an empty ``<password/>`` ("MAY be empty"), so a client sees that a
    password change is a matter of sending both (§3.3)."""
    query = Element(_QUERY)
    query.append(Element(f"{{{REGISTER}}}registered"))
    if instructions is not None:
        query.append(_text_element(f"{{{REGISTER}}}instructions", instructions))
    query.append(_text_element(f"{{{REGISTER}}}username", username))
    query.append(Element(f"{{{REGISTER}}}password"))
    return query


def registration_request(username: str, password: str) -> Element:
    """The ``<query/>`` of an IQ-set registering (§3.1) or changing the password
    (§3.3), with the ``<username/>`` and ``<password/>`` fields."""
    query = Element(_QUERY)
    query.append(_text_element(f"{{{REGISTER}}}username", username))
    query.append(_text_element(f"{{{REGISTER}}}password", password))
    return query


def removal_request() -> Element:
    """The ``<query><remove/></query>`` of an IQ-set cancelling the
    registration (§3.2)."""
    query = Element(_QUERY)
    query.append(Element(f"{{{REGISTER}}}remove"))
    return query


# ---------------------------------------------------------------------------
# parsing


def _bad(message: str) -> RegistrationError:
    return RegistrationError(StanzaErrorCondition.BAD_REQUEST, message)


def _single(form: Form, var: str) -> str | None:
    found = form.values(var)
    if len(found) > 1:
        raise _bad(f"field {var!r} has more than one value")
    return (found[0] or None) if found else None


def parse_registration(query: Element) -> Registration:
    """Read the ``<query xmlns='jabber:iq:register'/>`` of an IQ-set.

    * ``<remove/>`` is a cancellation (§3.2); if it is not the only child the
      request is a ``bad-request`` (§3.2, "Unregister Error Cases").
    * A submitted data form (``<x xmlns='jabber:x:data' type='submit'/>``)
      takes precedence over the legacy fields (§4 rule 5, §6). Its FORM_TYPE,
      if given, must be ``jabber:iq:register`` or
      ``jabber:iq:register:changepassword`` and its ``username`` and
      ``password`` fields hold at most one value each; a form of another type
      or FORM_TYPE is a ``bad-request``.
    * Otherwise the ``<username/>`` and ``<password/>`` children are read.

    Missing or empty values are returned as ``None``: whether that is an error
    depends on the use case (``not-acceptable`` for a new registration, §3.1;
    ``bad-request`` for a password change, §3.3). The username is stripped of
    surrounding whitespace; the password is taken as is.

    Raises :class:`RegistrationError` (``bad-request``) for a malformed request.
    """
    if query.tag != _QUERY:
        raise _bad(f"not a jabber:iq:register query: {query.tag!r}")
    if query.find(f"{{{REGISTER}}}remove") is not None:
        if len(query) != 1:
            raise _bad("<remove/> must be the only child of <query/>")
        return Registration(None, None, remove=True)
    form = query.find(_X)
    if form is not None:
        try:
            submitted = parse_form(form)
        except FormError as exc:
            raise _bad(f"invalid data form: {exc}") from None
        if submitted.type is not FormType.SUBMIT:
            raise _bad(f"a data form of type {submitted.type.value!r} is not a submission")
        form_type = _single(submitted, "FORM_TYPE")
        if form_type is not None and form_type not in _ACCEPTED_FORM_TYPES:
            raise _bad(f"unsupported FORM_TYPE {form_type!r}")
        username = _single(submitted, "username")
        password = _single(submitted, "password")
    else:
        username_el = query.find(f"{{{REGISTER}}}username")
        password_el = query.find(f"{{{REGISTER}}}password")
        username = None if username_el is None else username_el.text
        password = None if password_el is None else password_el.text
    username = (username or "").strip() or None
    return Registration(username, password or None)


def username_to_localpart(username: str, domain: str) -> str:
    """The normalised localpart an account name designates on ``domain``.

    ``username`` is a localpart, or a bare JID ``local@domain`` of that
    domain (the form the XEP-0077 data form examples use, §3.2, §3.3). Raises
    :class:`RegistrationError` (``jid-malformed``, RFC 6120 §8.3.3.8) when it
    is neither. ``domain`` must be a valid domainpart (else
    :class:`~xmpp_sansio.jid.InvalidJID`: the caller's mistake).
    """
    own_domain = JID.parse(domain).domain
    try:
        if "@" in username:
            jid = JID.parse(username)
            if jid.local is None or not jid.is_bare or jid.domain != own_domain:
                raise RegistrationError(
                    StanzaErrorCondition.JID_MALFORMED,
                    f"{username!r} is not an account name of {own_domain}",
                )
        else:
            jid = JID.from_parts(username, own_domain)
    except InvalidJID as exc:
        raise RegistrationError(StanzaErrorCondition.JID_MALFORMED, str(exc)) from None
    assert jid.local is not None
    return jid.local


def validate_new_account(
    username: str | None, password: str | None, domain: str
) -> tuple[str, str]:
    """Check the username and password of a new registration (§3.1).

    Returns ``(localpart, password)``: the localpart normalised with PRECIS
    UsernameCaseMapped (RFC 7622 §3.3, via :class:`~xmpp_sansio.jid.JID`), the
    password with PRECIS OpaqueString (RFC 8265 §4.2, as SCRAM does). Raises
    :class:`RegistrationError`:

    * ``not-acceptable`` when either is missing or empty ("If the requesting
      entity does not provide all of the requested information ... the
      server or service MUST return a <not-acceptable/> error", §3.1) or the
      password is not a valid OpaqueString;
    * ``jid-malformed`` when the username is not a valid localpart (see
      :func:`username_to_localpart`).

    Whether the account already exists (``conflict``, §3.1) is the caller's
    question.
    """
    if not username or not password:
        raise RegistrationError(
            StanzaErrorCondition.NOT_ACCEPTABLE, "both a username and a password are required"
        )
    local = username_to_localpart(username.strip(), domain)
    try:
        normalized = normalize_password(password)
    except ValueError as exc:
        raise RegistrationError(StanzaErrorCondition.NOT_ACCEPTABLE, str(exc)) from None
    return local, normalized
