"""HTTP File Upload (XEP-0363 v1.1) at ``upload.DOMAIN``: slot requests.

A local user asks for a slot (``<request filename size content-type/>``,
§4); the service checks the size, the type and the user's quota, and
answers with a PUT URL signed with HMAC-SHA256 over the slot, the file
name, the size, the type and an expiry, and a GET URL (§5). The slot is
recorded with a :class:`~xmpp_sansio.server.effects.Persist` effect
(:class:`UploadSlot`), committed by the I/O layer with the batch. The
HTTP listener checks a PUT with :func:`verify` against the request's own
``Content-Length`` and ``Content-Type``, so a slot cannot be used for
another size or type, nor after it expired. Files expire ``file_lifetime``
seconds after the slot was given (the I/O layer deletes them).

Errors (§4.1): too large: ``not-acceptable`` with ``<file-too-large/>``
and the maximum; a type not allowed: ``not-acceptable``; over the quota:
``resource-constraint`` (type ``wait``); not a local user: ``forbidden``;
a bad request: ``bad-request``.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from typing import ClassVar, Final, Protocol
from urllib.parse import quote
from xml.etree.ElementTree import Element, SubElement

from ..disco import Identity
from ..errors import StanzaErrorCondition, StanzaErrorType
from ..jid import JID
from ..stanza import Iq, IqType, Stanza, error_reply, iq_result
from ..xml import ns
from .effects import Bounce, Outcome, Persist, Reply, UploadSlot
from .hosts import HostService
from .stages import Context

__all__ = ["NS", "UploadPolicy", "UploadService", "UploadStorage", "sign", "verify"]

NS: Final = "urn:xmpp:http:upload:0"
_REQUEST: Final = "{" + NS + "}request"
_DATA: Final = "jabber:x:data"
_SLOT_ID: Final = re.compile(r"^[0-9a-f]{32}$")
_BAD_NAME: Final = re.compile(r"[\x00-\x1f\x7f/\\]")
#: RFC 6838 §4.2 type/subtype, parameters left out
_MEDIA_TYPE: Final = re.compile(r"^[A-Za-z0-9][\w!#$&^.+-]{0,126}/[A-Za-z0-9][\w!#$&^.+-]{0,126}$")


class UploadStorage(Protocol):
    """What the service reads: the bytes a user's live slots hold."""

    def used_bytes(self, user: JID, now: float) -> int:
        """The sizes of ``user``'s slots and files not expired at ``now``."""
        ...


@dataclass(frozen=True, slots=True)
class UploadPolicy:
    """Limits of the upload service (``[http] upload_*``)."""

    key: bytes
    max_file_size: int = 10 << 20
    allowed_types: tuple[str, ...] = ()  # empty: any type
    quota_per_user: int = 100 << 20
    slot_lifetime: float = 300.0
    file_lifetime: float = 7 * 86400.0


def _message(slot: str, filename: str, size: int, content_type: str, expires: int) -> bytes:
    return "\0".join((slot, filename, str(size), content_type, str(expires))).encode()


def sign(key: bytes, slot: str, filename: str, size: int, content_type: str, expires: int) -> str:
    """The PUT URL's signature (HMAC-SHA256, hex)."""
    message = _message(slot, filename, size, content_type, expires)
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def verify(
    key: bytes,
    slot: str,
    filename: str,
    size: int,
    content_type: str,
    expires: int,
    signature: str,
    now: float,
) -> bool:
    """Whether a PUT of ``size`` bytes of ``content_type`` may use the slot now."""
    if not _SLOT_ID.fullmatch(slot) or now >= expires:
        return False
    expected = sign(key, slot, filename, size, content_type, expires)
    return hmac.compare_digest(expected, signature)


def valid_slot(slot: str) -> bool:
    return bool(_SLOT_ID.fullmatch(slot))


class UploadService(HostService):
    """XEP-0363 slot requests for the local users of the server.

    ``base_url`` (``https://host:port``) is where the HTTP listener answers;
    the I/O layer sets it once the listener is bound if it was not given.
    """

    name: ClassVar[str | None] = "HTTP File Upload"
    identities: ClassVar[tuple[Identity, ...]] = (Identity("store", "file", "HTTP File Upload"),)
    features: ClassVar[tuple[str, ...]] = (NS,)

    def __init__(self, storage: UploadStorage, policy: UploadPolicy, base_url: str = "") -> None:
        self.storage = storage
        self.policy = policy
        self.base_url = base_url

    def handle(self, ctx: Context, stanza: Stanza) -> list[Outcome]:
        if not isinstance(stanza, Iq):
            return []
        answered = self.answer_disco(stanza)
        if answered is not None:
            return self._with_form(answered)
        payload = stanza.payload
        if stanza.type is IqType.GET and payload is not None and payload.tag == _REQUEST:
            return self._slot(ctx, stanza, payload)
        if stanza.type in (IqType.GET, IqType.SET):
            return [Bounce(stanza.element, StanzaErrorCondition.SERVICE_UNAVAILABLE)]
        return []

    def _with_form(self, outcomes: list[Outcome]) -> list[Outcome]:
        """§3: disco#info carries the maximum file size in an extended form."""
        for outcome in outcomes:
            if isinstance(outcome, Reply):
                query = outcome.element.find("{" + ns.DISCO_INFO + "}query")
                if query is not None:
                    form = SubElement(query, "{" + _DATA + "}x", {"type": "result"})
                    for var, value, kind in (
                        ("FORM_TYPE", NS, "hidden"),
                        ("max-file-size", str(self.policy.max_file_size), None),
                    ):
                        attrs = {"var": var} if kind is None else {"var": var, "type": kind}
                        field = SubElement(form, "{" + _DATA + "}field", attrs)
                        SubElement(field, "{" + _DATA + "}value").text = value
        return outcomes

    def _slot(self, ctx: Context, iq: Iq, request: Element) -> list[Outcome]:
        policy = self.policy
        user = iq.from_
        if user is None or user.local is None or not self.server.is_local(user.domain):
            return [Bounce(iq.element, StanzaErrorCondition.FORBIDDEN)]
        filename = request.get("filename", "")
        raw_size = request.get("size", "")
        content_type = request.get("content-type") or "application/octet-stream"
        if (
            not filename
            or len(filename.encode()) > 255
            or filename in (".", "..")
            or _BAD_NAME.search(filename)
            or not raw_size.isdigit()
            or not _MEDIA_TYPE.fullmatch(content_type)
        ):
            return [Reply(error_reply(iq.element, StanzaErrorCondition.BAD_REQUEST))]
        size = int(raw_size)
        if size <= 0:
            return [Reply(error_reply(iq.element, StanzaErrorCondition.BAD_REQUEST))]
        if size > policy.max_file_size:
            error = error_reply(
                iq.element, StanzaErrorCondition.NOT_ACCEPTABLE, text="file too large"
            )
            condition = error.find("{" + ns.CLIENT + "}error")
            assert condition is not None
            too_large = SubElement(condition, "{" + NS + "}file-too-large")
            SubElement(too_large, "{" + NS + "}max-file-size").text = str(policy.max_file_size)
            return [Reply(error)]
        if policy.allowed_types and content_type.lower() not in policy.allowed_types:
            return [
                Reply(
                    error_reply(
                        iq.element,
                        StanzaErrorCondition.NOT_ACCEPTABLE,
                        text=f"files of type {content_type} are not accepted",
                    )
                )
            ]
        now = ctx.now
        if self.storage.used_bytes(user.bare, now) + size > policy.quota_per_user:
            return [
                Reply(
                    error_reply(
                        iq.element,
                        StanzaErrorCondition.RESOURCE_CONSTRAINT,
                        type=StanzaErrorType.WAIT,
                        text="upload quota exceeded",
                    )
                )
            ]
        slot = ctx.rng(16).hex()
        expires = int(now + policy.slot_lifetime)
        signature = sign(policy.key, slot, filename, size, content_type, expires)
        path = f"{self.base_url}/upload/{slot}/{quote(filename, safe='')}"
        reply = Element("{" + NS + "}slot")
        # No <header/>: the PUT URL carries its own authorisation.
        SubElement(reply, "{" + NS + "}put", {"url": f"{path}?e={expires}&s={signature}"})
        SubElement(reply, "{" + NS + "}get", {"url": path})
        record = UploadSlot(
            slot=slot,
            user=user.bare,
            filename=filename,
            size=size,
            content_type=content_type,
            expires=now + policy.slot_lifetime,
            file_expires=now + policy.file_lifetime,
        )
        return [Persist(record, iq.element), Reply(iq_result(iq.element, reply))]
