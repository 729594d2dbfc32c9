"""The administrator's operations, sans-IO: the requests, what they send on
the wire, and the admin socket's line protocol.

One module serves every way an administrator reaches a running server: the
``xmpp-trio`` command line through the local admin socket
(:mod:`xmpp_trio.admin`) and the XEP-0133 ad-hoc commands
(:mod:`xmpp_sansio.server.adhoc.xep0133`), which build their outcomes with
the functions at the end of this module. The I/O
layer gathers the facts (sessions, listeners, uptime) and carries out the
effects; the decisions that are protocol live here:

* a kick ends every session of an account with the stream error
  ``policy-violation`` (RFC 6120 §4.9.3.18), the reason as its ``<text/>``
  (§4.9.2) -- XEP-0133 §4.14 "End User Session";
* an announcement is a ``headline`` message (RFC 6121 §5.2.2) from the
  server's domain to each online session -- XEP-0133 §4.23 "Send Announcement
  to Online Users" (Prosody's ``mod_announce`` sends the same);
* the admin socket speaks one JSON object per line each way: a request
  ``{"op": "kick", "jid": "juliet@example.org", "reason": "spam"}`` is answered
  by ``{"ok": true, "result": ...}`` or ``{"ok": false, "error": "..."}``
  (see docs/operations.md).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, TypeAlias
from xml.etree.ElementTree import Element, SubElement

from ..errors import StreamErrorCondition
from ..jid import JID, InvalidJID
from ..xml import ns
from .effects import (
    AccountCreate,
    AccountDelete,
    AccountDisable,
    AccountPassword,
    Disconnect,
    EndSessions,
    MotdSet,
    Persist,
)
from .sessions import CloseStream, SessionEffect

__all__ = [
    "KICK_CONDITION",
    "MAX_REQUEST_SIZE",
    "AccountChanged",
    "AdminRequest",
    "AdminRequestError",
    "Announce",
    "Disable",
    "Kick",
    "Motd",
    "Reload",
    "Sessions",
    "Status",
    "Stop",
    "Users",
    "add_account",
    "announcement",
    "change_password",
    "delete_account",
    "disable_account",
    "encode_error",
    "encode_result",
    "end_account_sessions",
    "parse_request",
    "set_motd",
    "with_text",
]

#: The stream error of a kick (RFC 6120 §4.9.3.18).
KICK_CONDITION = StreamErrorCondition.POLICY_VIOLATION
#: The longest request line the admin socket reads (bytes, newline included).
MAX_REQUEST_SIZE = 65536
#: The longest announcement or kick reason (characters).
MAX_TEXT = 4096


class AdminRequestError(ValueError):
    """A request line that is not a valid admin request (answered with an error)."""


@dataclass(frozen=True, slots=True)
class Status:
    """Is the server running: sessions, uptime, listeners, version (XEP-0133 §4.17-4.20)."""


@dataclass(frozen=True, slots=True)
class Users:
    """The registered accounts and their count (XEP-0133 §4.15-4.16)."""


@dataclass(frozen=True, slots=True)
class Sessions:
    """The bound sessions: JID, address, TLS, XEP-0198 state, client (XEP-0133 §4.21)."""


@dataclass(frozen=True, slots=True)
class Kick:
    """End every session of ``account`` (XEP-0133 §4.14), saying ``reason``."""

    account: JID
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class AccountChanged:
    """The account was deleted or its password changed outside the server (the
    command line): end its sessions, with ``not-authorized`` for a removed
    account and ``reset`` after a password change (RFC 6120 §4.9.3.12, 4.9.3.19)."""

    account: JID
    change: Literal["deleted", "password"]


@dataclass(frozen=True, slots=True)
class Announce:
    """Send ``text`` to every online session (XEP-0133 §4.23)."""

    text: str


@dataclass(frozen=True, slots=True)
class Disable:
    """Disable ``account`` (XEP-0133 §4.3) or, ``disabled`` false, re-enable it."""

    account: JID
    disabled: bool = True


@dataclass(frozen=True, slots=True)
class Motd:
    """Set the message of the day of the first domain (``None``: delete it)."""

    text: str | None


@dataclass(frozen=True, slots=True)
class Clients:
    """The SASL2 clients of ``account`` (XEP-0388 §2.3 user agents): id,
    software, device, last login, FAST token expiry."""

    account: JID


@dataclass(frozen=True, slots=True)
class Revoke:
    """Forget client ``client_id`` of ``account`` and invalidate its FAST
    tokens (XEP-0484): it must log in with the password again."""

    account: JID
    client_id: str


@dataclass(frozen=True, slots=True)
class Stop:
    """Shut the server down (XEP-0133 §4.30), as SIGTERM does."""


@dataclass(frozen=True, slots=True)
class Reload:
    """Read the configuration file again and apply what can be applied live."""


AdminRequest: TypeAlias = (
    Status
    | Users
    | Sessions
    | Kick
    | AccountChanged
    | Announce
    | Disable
    | Motd
    | Clients
    | Revoke
    | Stop
    | Reload
)

_SIMPLE: dict[str, AdminRequest] = {
    "status": Status(),
    "users": Users(),
    "sessions": Sessions(),
    "stop": Stop(),
    "reload": Reload(),
}


def _text(request: Mapping[str, object], key: str, *, required: bool) -> str | None:
    value = request.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or (required and not value.strip()):
        raise AdminRequestError(f"{key!r} must be a non-empty string")
    if len(value) > MAX_TEXT:
        raise AdminRequestError(f"{key!r} is longer than {MAX_TEXT} characters")
    return value


def _account(request: Mapping[str, object]) -> JID:
    text = _text(request, "jid", required=True)
    assert text is not None
    try:
        jid = JID.parse(text)
    except InvalidJID as exc:
        raise AdminRequestError(f"invalid JID {text!r}: {exc}") from None
    if jid.local is None or jid.resource is not None:
        raise AdminRequestError(f"{text!r} is not an account's bare JID (user@domain)")
    return jid


def parse_request(line: bytes) -> AdminRequest:
    """Parse one request line of the admin socket; raises
    :class:`AdminRequestError` with a message for the administrator."""
    if len(line) > MAX_REQUEST_SIZE:
        raise AdminRequestError(f"request longer than {MAX_REQUEST_SIZE} bytes")
    try:
        request = json.loads(line)
    except (ValueError, UnicodeDecodeError) as exc:
        raise AdminRequestError(f"not a JSON line: {exc}") from None
    if not isinstance(request, dict):
        raise AdminRequestError("a request is a JSON object with an 'op'")
    op = request.get("op")
    if not isinstance(op, str):
        raise AdminRequestError("a request is a JSON object with an 'op'")
    simple = _SIMPLE.get(op)
    if simple is not None:
        return simple
    if op == "kick":
        return Kick(_account(request), _text(request, "reason", required=False))
    if op == "account_changed":
        change = request.get("change")
        if change not in ("deleted", "password"):
            raise AdminRequestError("'change' must be 'deleted' or 'password'")
        return AccountChanged(_account(request), "deleted" if change == "deleted" else "password")
    if op == "announce":
        text = _text(request, "text", required=True)
        assert text is not None
        return Announce(text)
    if op in ("disable", "enable"):
        return Disable(_account(request), op == "disable")
    if op == "motd":
        return Motd(_text(request, "text", required=False))
    if op == "clients":
        return Clients(_account(request))
    if op == "revoke":
        client_id = _text(request, "client", required=True)
        assert client_id is not None
        return Revoke(_account(request), client_id.strip().lower())
    others = ("kick", "account_changed", "announce", "disable", "enable", "motd", "clients")
    known = sorted([*_SIMPLE, *others, "revoke"])
    raise AdminRequestError(f"unknown op {op!r}; known: {', '.join(known)}")


def encode_result(result: object) -> bytes:
    """The answer line to a request that succeeded."""
    return json.dumps({"ok": True, "result": result}, sort_keys=True).encode() + b"\n"


def encode_error(message: str) -> bytes:
    """The answer line to a request that failed."""
    return json.dumps({"ok": False, "error": message}).encode() + b"\n"


def with_text(effects: Sequence[SessionEffect], reason: str | None) -> list[SessionEffect]:
    """The effects of
    :meth:`~xmpp_sansio.server.sessions.SessionManager.end_sessions`, with the
    administrator's ``reason`` as the ``<text/>`` of each stream error
    (RFC 6120 §4.9.2). The router has unbound the attached sessions already;
    only the close carries the text."""
    if reason is None:
        return list(effects)
    return [
        CloseStream(e.session, e.condition, reason) if isinstance(e, Disconnect) else e
        for e in effects
    ]


def announcement(domain: str, text: str, recipients: Iterable[JID]) -> list[Element]:
    """One ``headline`` message (RFC 6121 §5.2.2) from ``domain`` with ``text``
    as its body for each full JID in ``recipients`` (XEP-0133 §4.23)."""
    messages = []
    for recipient in recipients:
        message = Element(
            f"{{{ns.CLIENT}}}message", {"from": domain, "to": str(recipient), "type": "headline"}
        )
        SubElement(message, f"{{{ns.CLIENT}}}body").text = text
        messages.append(message)
    return messages


# -- the operations as outcomes (XEP-0133 commands; see docs/admin.md) ----------------


def add_account(account: JID, password: str) -> Persist:
    """XEP-0133 §4.1: create ``account`` (the store derives the credentials)."""
    return Persist(AccountCreate(account.bare, password))


def delete_account(account: JID) -> Persist:
    """XEP-0133 §4.2, as XEP-0077 §3.2 removal: delete the account, then end
    its sessions with ``not-authorized`` and let every service forget it."""
    ended = EndSessions(account.bare, StreamErrorCondition.NOT_AUTHORIZED, removed=True)
    return Persist(AccountDelete(account.bare), None, (ended,))


def disable_account(account: JID, disabled: bool) -> Persist:
    """XEP-0133 §4.3/§4.4: disable ``account`` (its sessions end with
    ``not-authorized`` once stored; it cannot log in) or re-enable it."""
    if not disabled:
        return Persist(AccountDisable(account.bare, False))
    ended = EndSessions(account.bare, StreamErrorCondition.NOT_AUTHORIZED)
    return Persist(AccountDisable(account.bare, True), None, (ended,))


def end_account_sessions(account: JID) -> EndSessions:
    """XEP-0133 §4.14: end every session of ``account``, as a kick does."""
    return EndSessions(account.bare, KICK_CONDITION)


def change_password(account: JID, password: str) -> Persist:
    """XEP-0133 §4.7: replace the password of ``account``."""
    return Persist(AccountPassword(account.bare, password))


def set_motd(domain: str, text: str | None) -> Persist:
    """XEP-0133 §4.24-4.26: set (or, with ``None``, delete) the message of the
    day of ``domain``; it is sent with :func:`announcement` at each login."""
    return Persist(MotdSet(domain, text))
