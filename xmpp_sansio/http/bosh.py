"""BOSH (XEP-0124) carrying XMPP (XEP-0206), sans I/O.

Theory of operation
-------------------
A BOSH session is one XMPP stream spread over many HTTP requests. The
stream itself is not handled here: the connection beneath is the one TCP and
WebSocket use, with RFC 7395's framing
(:class:`~xmpp_sansio.stream.framing.WebSocketFraming`): this module turns
each ``<body/>`` into the framing's messages (the session creation request
and a restart, XEP-0206 §5, into ``<open/>``; each child into itself; a
``type='terminate'`` into its children and ``<close/>``) and the stream's
output units (``<open/>``, elements, ``<close/>``) back into response bodies.
The framing's ``wrap`` is :func:`frame_unit`, so the units keep their
boundaries through the I/O layer (:meth:`BoshSession.receive_output`).

:class:`BoshSession` keeps the XEP-0124 state: the request ids (``rid``)
and their window (§14.3: a rid within ``requests`` ahead of the last one is
held until the gap is filled, a repeated rid gets its cached response, any
other terminates with ``item-not-found``), the held requests (``hold``, each
answered at the latest after ``wait`` seconds, §7), polling and overactivity
(§11, ``policy-violation``), pauses (§10, ``maxpause``), the inactivity
limit (§7 ``inactivity``: :attr:`BoshSession.deadline`, :meth:`expired`)
and acknowledgements (§9, the ``ack`` attribute). ``now`` is always an input.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final
from xml.etree.ElementTree import Element

from ..xml import ns
from ..xml.parser import parse_fragment
from ..xml.writer import serialize

__all__ = [
    "BOSH_PATH",
    "NS_HTTPBIND",
    "NS_XBOSH",
    "BoshError",
    "BoshSession",
    "BoshSettings",
    "Receipt",
    "frame_unit",
    "parse_body",
    "terminate_body",
]

#: where the connection manager listens (the conventional path, XEP-0206 §4)
BOSH_PATH: Final = "/http-bind"
NS_HTTPBIND: Final = "http://jabber.org/protocol/httpbind"
NS_XBOSH: Final = "urn:xmpp:xbosh"
_BODY: Final = "{" + NS_HTTPBIND + "}body"
_RESTART: Final = "{" + NS_XBOSH + "}restart"
_VERSION: Final = "{" + NS_XBOSH + "}version"
_STREAM_ERROR: Final = "{" + ns.STREAMS + "}error"
_OPEN: Final = '<open xmlns="' + ns.FRAMING + '"'
_CLOSE: Final = '<close xmlns="' + ns.FRAMING + '"/>'
#: the protocol version implemented (XEP-0124 §7: the highest both support)
VERSION: Final = "1.11"


@dataclass(frozen=True, slots=True, kw_only=True)
class BoshSettings:
    """The connection manager's limits (``[http] bosh_*``, docs/web.md).

    Attributes:
        max_wait: the longest ``wait`` granted (a longer request is lowered, §7).
        max_hold: the most requests held at once (a higher ``hold`` is lowered).
        inactivity: seconds a session lives with no request held (§7).
        polling: the shortest interval between empty requests when nothing
            is held (§11: shorter is overactivity, ``policy-violation``).
        max_pause: the longest ``pause`` a client may ask (§10).
        max_sessions: sessions open at once (``service-unavailable`` beyond).
    """

    max_wait: int = 60
    max_hold: int = 1
    inactivity: int = 60
    polling: int = 2
    max_pause: int = 120
    max_sessions: int = 1000


class BoshError(Exception):
    """A terminal binding condition (XEP-0124 §17.2): the session ends and the
    request gets ``<body type='terminate' condition=.../>``."""

    def __init__(self, condition: str, text: str) -> None:
        super().__init__(text)
        self.condition = condition


def frame_unit(data: bytes) -> bytes:
    """The framing's ``wrap``: one output unit, length-prefixed (``N:data``)."""
    return b"%d:" % len(data) + data


def parse_body(data: bytes, max_size: int) -> Element:
    """The request's ``<body/>`` (XEP-0124 §4), or :class:`BoshError`
    ``bad-request``."""
    try:
        el = parse_fragment(data, NS_HTTPBIND, max_size=max(max_size, 1))
    except ValueError as exc:
        raise BoshError("bad-request", str(exc)) from None
    if el.tag != _BODY:
        raise BoshError("bad-request", "not a <body/> in the httpbind namespace")
    return el


def _body(attrs: dict[str, str], children: Iterable[bytes] = ()) -> bytes:
    head = "<body xmlns='" + NS_HTTPBIND + "'"
    for key, value in attrs.items():
        escaped = value.replace("&", "&amp;").replace("'", "&apos;").replace("<", "&lt;")
        head += f" {key}='{escaped}'"
    inner = b"".join(children)
    return head.encode() + (b">" + inner + b"</body>" if inner else b"/>")


def terminate_body(condition: str | None = None, children: Iterable[bytes] = ()) -> bytes:
    """``<body type='terminate'/>`` with a condition (XEP-0124 §17)."""
    attrs = {"type": "terminate"}
    if condition is not None:
        attrs["condition"] = condition
    if condition == "remote-stream-error":
        attrs["xmlns:stream"] = ns.STREAMS
    return _body(attrs, children)


def _int(body: Element, name: str, default: int | None = None) -> int:
    raw = body.get(name)
    if raw is None or not raw.isdigit() or len(raw) > 16:
        if default is not None and raw is None:
            return default
        raise BoshError("bad-request", f"missing or bad '{name}'")
    return int(raw)


def _messages(body: Element) -> list[bytes]:
    """The body's children as framing messages (XEP-0206 §6: stanzas are in
    ``jabber:client``; an unqualified child inherits the body's namespace)."""
    out = []
    prefix = "{" + NS_HTTPBIND + "}"
    for child in body:
        for el in child.iter():
            if el.tag.startswith(prefix):
                el.tag = "{" + ns.CLIENT + "}" + el.tag[len(prefix) :]
        out.append(serialize(child, ""))
    return out


@dataclass(slots=True)
class Receipt:
    """What :meth:`BoshSession.receive` made of a request: ``messages`` for
    the connection; ``cached``: a repeated rid's earlier response (§14.3)."""

    rid: int
    messages: list[bytes] = field(default_factory=list)
    cached: bytes | None = None


class BoshSession:
    """One BOSH session (XEP-0124 §7-§14), created from its first request.

    Raises:
        BoshError: a bad creation request (no ``rid``, ``to`` or ``wait``).
    """

    def __init__(
        self, sid: str, request: Element, settings: BoshSettings, *, now: float, secure: bool
    ) -> None:
        self.sid = sid
        self._settings = settings
        rid = _int(request, "rid")
        if not request.get("to"):
            raise BoshError("bad-request", "no 'to'")
        self.to = request.get("to", "")
        self.wait = min(_int(request, "wait", settings.max_wait), settings.max_wait)
        self.hold = min(_int(request, "hold", 1), settings.max_hold)
        self.requests = self.hold + 1
        self._secure = secure
        self._acks = request.get("ack") == "1"
        self._lang = request.get("{http://www.w3.org/XML/1998/namespace}lang")
        self._next = rid  # the next rid to process
        self._early: dict[int, Element] = {}  # rids inside the window, ahead of a gap
        self._held: dict[int, float] = {}  # rid -> when it arrived
        self._cache: dict[int, bytes] = {}  # answered rids, for retransmission
        self._out: list[bytes] = []  # elements waiting for a held request
        self._buffer = b""  # a unit cut by a short write (not expected)
        self._header: dict[str, str] | None = None
        self._opened = False  # the creation request's <open/> was fed
        self._created = False  # the creation response went out
        self._closing = False  # the stream's <close/> came out
        self._pause: float | None = None
        self._last = now  # the last time a request arrived or none was held
        self._last_empty: float | None = None
        self.ended = False

    # -- input -------------------------------------------------------------------

    def receive(self, body: Element, now: float) -> Receipt:
        """A request of this session: its rid checked against the window,
        its messages in rid order (§14.3).

        Raises:
            BoshError: the session ends (``item-not-found``: rid out of the
                window; ``policy-violation``: overactivity or a long pause).
        """
        rid = _int(body, "rid")
        if rid < self._next:
            cached = self._cache.get(rid)
            if cached is None:
                raise BoshError("item-not-found", f"rid {rid} is behind the window")
            return Receipt(rid, cached=cached)
        if rid >= self._next + self.requests:
            raise BoshError("item-not-found", f"rid {rid} is beyond the window")
        if rid in self._early:
            raise BoshError("item-not-found", f"rid {rid} repeated")
        self._early[rid] = body
        receipt = Receipt(rid)
        while self._next in self._early:
            current = self._early.pop(self._next)
            receipt.messages += self._process(self._next, current, now)
            self._next += 1
        return receipt

    def _process(self, rid: int, body: Element, now: float) -> list[bytes]:
        if len(body) == 0 and not body.attrib.keys() - {"rid", "sid", "ack"} and not self._held:
            # §11: empty polls faster than 'polling' are overactivity
            if (
                self._last_empty is not None
                and now - self._last_empty < self._settings.polling
                and self.hold == 0
            ):
                raise BoshError("policy-violation", "polling too often")
            self._last_empty = now
        self._held[rid] = now
        self._last = now
        if len(self._held) > self.requests:
            raise BoshError("policy-violation", f"more than {self.requests} requests at once")
        self._pause = None
        if body.get("pause") is not None:
            seconds = _int(body, "pause")
            if seconds > self._settings.max_pause:
                raise BoshError("policy-violation", f"pause {seconds} over maxpause")
            self._pause = float(seconds)  # §10: answer everything now
        if not self._opened:
            self._opened = True
            lang = f' xml:lang="{self._lang}"' if self._lang else ""
            return [f'{_OPEN} to="{_attr(self.to)}" version="1.0"{lang}/>'.encode()]
        messages = _messages(body)
        if body.get(_RESTART) == "true":  # XEP-0206 §5
            messages.append(f'{_OPEN} to="{_attr(self.to)}" version="1.0"/>'.encode())
        if body.get("type") == "terminate":  # §13
            messages.append(_CLOSE.encode())
        return messages

    def receive_output(self, data: bytes) -> None:
        """The connection's output: units framed by :func:`frame_unit`."""
        buffer = self._buffer + data
        while buffer:
            size, colon, rest = buffer.partition(b":")
            if not colon or len(rest) < int(size):
                break
            unit, buffer = rest[: int(size)], rest[int(size) :]
            if unit.startswith(b"<open "):
                self._header = _open_attrs(unit)
            elif unit.startswith(b"<close "):
                self._closing = True
            else:
                self._out.append(unit)
        self._buffer = buffer

    @property
    def pending_bytes(self) -> int:
        """Output waiting for a request (the I/O layer stops taking more past
        its limit, so the stream's ``max_output_buffer`` applies)."""
        return sum(len(unit) for unit in self._out)

    def close(self) -> None:
        """The stream beneath ended: every held request is answered."""
        self._closing = True

    # -- output ------------------------------------------------------------------

    def responses(self, now: float) -> dict[int, bytes]:
        """The held requests answerable now, with their response bodies."""
        answers: dict[int, bytes] = {}
        held = self._held
        if not held:
            return answers
        if not self._created:
            first = min(held)
            if self._header is None or not (self._out or self._closing):
                return answers
            self._created = True
            answers[first] = self._answer(first, now, self._creation_attrs())
        if self._closing:
            for rid in sorted(held):
                answers[rid] = self._answer(rid, now, terminal=True)
            self.ended = True
            return answers
        if self._out and held:
            rid = min(held)
            answers[rid] = self._answer(rid, now, {})
        while len(held) > (0 if self._pause is not None else self.hold):
            rid = min(held)
            answers[rid] = self._answer(rid, now, {})
        for rid, since in sorted(held.items()):
            if since + self.wait <= now:
                answers[rid] = self._answer(rid, now, {})
        return answers

    def _answer(
        self, rid: int, now: float, attrs: dict[str, str] | None = None, *, terminal: bool = False
    ) -> bytes:
        del self._held[rid]
        if not self._held:
            self._last = now
        out, self._out = self._out, []
        attrs = dict(attrs or {})
        if self._acks and rid != self._next - 1:
            attrs["ack"] = str(self._next - 1)
        if terminal:
            errors = [u for u in out if u.startswith(b"<stream:error")]
            body = terminate_body("remote-stream-error" if errors else None, out)
        else:
            body = _body(attrs, out)
        self._cache[rid] = body
        for old in [r for r in self._cache if r < self._next - self.requests]:
            del self._cache[old]
        return body

    def _creation_attrs(self) -> dict[str, str]:
        """§7 and XEP-0206 §3: the session creation response's attributes."""
        header = self._header or {}
        attrs = {
            "sid": self.sid,
            "wait": str(self.wait),
            "requests": str(self.requests),
            "hold": str(self.hold),
            "inactivity": str(self._settings.inactivity),
            "polling": str(self._settings.polling),
            "maxpause": str(self._settings.max_pause),
            "ver": VERSION,
            "from": header.get("from", self.to),
            "authid": header.get("id", ""),
            "secure": "true" if self._secure else "false",
            "xmlns:xmpp": NS_XBOSH,
            "xmpp:version": "1.0",
            "xmlns:stream": ns.STREAMS,
        }
        if self._acks:
            attrs["ack"] = str(self._next - 1)
        return attrs

    # -- time --------------------------------------------------------------------

    @property
    def deadline(self) -> float:
        """When :meth:`responses` or :meth:`expired` next change (inf: never)."""
        if self._held:
            return min(self._held.values()) + self.wait
        if self.ended:
            return float("inf")
        limit = self._pause if self._pause is not None else self._settings.inactivity
        return self._last + limit

    def expired(self, now: float) -> bool:
        """No request was held for longer than the inactivity (or pause) limit."""
        return not self._held and now >= self.deadline


def _attr(value: str) -> str:
    return value.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")


def _open_attrs(unit: bytes) -> dict[str, str]:
    try:
        el = parse_fragment(unit, ns.FRAMING)
    except ValueError:
        return {}
    return {k: v for k, v in el.attrib.items() if k in ("id", "from")}
