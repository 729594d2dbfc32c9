"""The server stream fuzz target shared by ``atheris_server_stream.py``
(coverage-guided) and ``fuzz_server_seeds.py`` (pytest, the seeds only).

:func:`check` feeds one input to a :class:`ServerConnection` over direct TLS
(every byte is XMPP), answering its requests as an I/O layer would, and
asserts the connection's invariants; see its docstring. Input format: the
first byte ``n`` (mod 9) is the number of cuts, the next ``2 * n`` bytes are
the cut offsets (big-endian 16-bit), the rest is the client's stream. The
seeds in ``corpus/server_stream/`` start with ``\\x00`` (no cuts).

    python fuzz/server_stream_target.py replay FILE...   # run inputs, print the outcome
    python fuzz/server_stream_target.py seeds [DIR]      # (re)write the seeds
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import os
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree.ElementTree import Element, SubElement

from xmpp_sansio import register
from xmpp_sansio.errors import RemoteProtocolError, StanzaErrorCondition
from xmpp_sansio.jid import JID
from xmpp_sansio.sm import SMState
from xmpp_sansio.stream.config import ClientConfig, ServerConfig
from xmpp_sansio.stream.connection import ClientConnection, ServerConnection, State
from xmpp_sansio.stream.events import (
    CredentialsRequested,
    DerivationRequested,
    Event,
    RegistrationRequested,
    ResumeRequested,
    StanzaReceived,
    TLSRequested,
)
from xmpp_sansio.testing import ConnectionPair, derive, make_credentials
from xmpp_sansio.xml import ns
from xmpp_sansio.xml.parser import StreamEnd, StreamHeader, StreamParser, XMLStreamError
from xmpp_sansio.xml.writer import serialize, stream_header

CORPUS = Path(__file__).parent / "corpus" / "server_stream"
DOMAIN = "example.com"
USER, PASSWORD = "juliet", "pw"
TAKEN = "romeo"  # registering this name gets <conflict/>
LOOKUP = make_credentials({USER: PASSWORD})
# A detached session the I/O layer keeps for resumption (XEP-0198 §5).
PREVID = "f00d" * 8
_SUCCESS = "{" + ns.SASL + "}success"
_STREAM = "{" + ns.STREAMS + "}stream"
_MESSAGE = "{" + ns.CLIENT + "}message"
_IQ = "{" + ns.CLIENT + "}iq"


def fixed_rng(salt: str = "") -> Callable[[int], bytes]:
    """A fixed sequence of "random" bytes."""
    counter = itertools.count()

    def rng(n: int) -> bytes:
        return hashlib.sha256(f"{salt}{next(counter)}".encode()).digest()[:n]

    return rng


def server_config() -> ServerConfig:
    """Everything on, with randomness a fixed sequence so a recorded client
    transcript (its SCRAM proof over the server nonce) replays exactly."""
    return ServerConfig(
        domains=frozenset({DOMAIN}),
        rng=fixed_rng(),
        decoy_key=b"k" * 16,
        allow_registration=True,
        allow_anonymous=True,
        sm_resume_timeout=300.0,
    )


def detached_session() -> SMState:
    sm = SMState(id=PREVID, resume=True, max=300, jid=JID.parse(f"{USER}@{DOMAIN}/old"))
    for i in range(3):
        stanza = Element(_MESSAGE, {"to": f"{USER}@{DOMAIN}/old", "id": f"q{i}"})
        SubElement(stanza, "{" + ns.CLIENT + "}body").text = f"queued {i}"
        sm.record_outbound(stanza)
    return sm


def split(data: bytes, cuts: Iterable[int]) -> list[bytes]:
    """Cut ``data`` at the given offsets (taken modulo its length + 1)."""
    points = sorted({c % (len(data) + 1) for c in cuts})
    bounds = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds) if b > a]


def decode(data: bytes) -> list[bytes]:
    """The chunks an input stands for (see the module docstring)."""
    if not data:
        return []
    n = data[0] % 9
    head = data[1 : 1 + 2 * n]
    cuts = [int.from_bytes(head[i : i + 2], "big") for i in range(0, len(head) - 1, 2)]
    return split(data[1 + 2 * n :], cuts)


# A once-known bug (fixed): after <success/> the server's restarted stream began
# with <stream:error> and no new header. STRICT (the default) fails on it;
# FUZZ_STRICT=0 makes ClientView supply the header instead.
STRICT = os.environ.get("FUZZ_STRICT", "1") != "0"
_STUB_HEADER = stream_header({"from": DOMAIN, "version": "1.0"}, ns.CLIENT)


class ClientView:
    """What a client makes of the server's output: a :class:`StreamParser`,
    replaced by a fresh one after ``<success/>`` (RFC 6120 §6.4.6) with the
    bytes that followed it. Any parse error is a bug of the server."""

    def __init__(self, *, strict: bool = True) -> None:
        self.parser = StreamParser(hold=True)
        self.strict = strict
        self.streams = 1
        self.events = 0  # on the current parser
        self.fed = False  # the current parser got bytes
        self.ended = False
        self.missing_header = False  # the known bug was seen (strict=False)

    def feed(self, data: bytes) -> None:
        if not data:
            return
        assert not self.ended, f"server output after its </stream:stream>: {data!r}"
        if not self.fed and not self.strict and data.startswith(b"<stream:error>"):
            self.missing_header = True
            data = _STUB_HEADER + data
        self.fed = True
        try:
            self.parser.feed(data)
            while (ev := self.parser.next_event()) is not None:
                if self.events == 0:
                    assert isinstance(ev, StreamHeader), f"stream {self.streams}: no header"
                    assert ev.tag == _STREAM, ev.tag
                self.events += 1
                if isinstance(ev, StreamEnd):
                    self.ended = True
                    assert not self.parser.take_unparsed(), "bytes after </stream:stream>"
                elif isinstance(ev, Element) and ev.tag == _SUCCESS:
                    leftover = self.parser.take_unparsed()
                    self.parser = StreamParser(hold=True)
                    self.streams += 1
                    self.events = 0
                    self.fed = False
                    if leftover:
                        self.feed(leftover)
                        return
        except XMLStreamError as exc:
            raise AssertionError(
                f"a client cannot parse the server's output (stream {self.streams}): {exc}"
            ) from exc


@dataclass
class Outcome:
    server: ServerConnection
    output: bytes
    events: list[Event] = field(default_factory=list)
    error: RemoteProtocolError | None = None


class _IOLayer:
    """Answers the server's requests as the I/O layer would."""

    def __init__(self, server: ServerConnection) -> None:
        self.server = server
        self.passwords: dict[str, str] = {}
        self.lookup = make_credentials(self.passwords)
        self.session: SMState | None = detached_session()

    def handle(self, event: Event) -> None:
        server = self.server
        if isinstance(event, CredentialsRequested):
            found = LOOKUP(event.username, event.hash_name)
            server.provide_credentials(found or self.lookup(event.username, event.hash_name))
        elif isinstance(event, DerivationRequested):
            server.provide_derived(derive(event))
        elif isinstance(event, RegistrationRequested):
            if event.local in (USER, TAKEN) or event.local in self.passwords:
                server.registration_result(StanzaErrorCondition.CONFLICT)
            else:
                self.passwords[event.local] = event.password
                server.registration_result()
        elif isinstance(event, ResumeRequested):
            sm = self.session
            if (
                sm is not None
                and event.previd == sm.id
                and sm.jid is not None
                and sm.jid.bare == event.jid.bare
            ):
                server.resume_accepted(sm)
                if server.sm is sm:
                    self.session = None
            else:
                server.resume_failed()
        elif isinstance(event, TLSRequested):  # not offered over direct TLS
            if server.state is State.TLS_PENDING:
                server.tls_established()
        elif isinstance(event, StanzaReceived) and server.state is State.READY:
            el = event.element
            if el.tag == _IQ and el.get("type") in ("get", "set"):
                server.send(Element(_IQ, {"type": "result", "id": el.get("id", "")}))
            elif el.tag == _MESSAGE:  # an echo: counted and queued with SM on
                reply = Element(_MESSAGE, {"to": str(server.jid)})
                SubElement(reply, "{" + ns.CLIENT + "}body").text = "echo"
                server.send(reply)


def check(data: bytes, *, strict: bool | None = None) -> Outcome:
    """Run one input and assert the server's invariants:

    - ``receive_data`` raises nothing, and ``next_event`` nothing but
      :class:`RemoteProtocolError`;
    - after that error the state is ``ERROR``, ``should_close`` is true, the
      output ends with ``</stream:stream>`` and further input is ignored;
    - a client can parse all of the output (fresh parser after ``<success/>``),
      and nothing follows the server's ``</stream:stream>``.

    ``strict`` (default :data:`STRICT`): fail on the known missing-header bug.
    """
    server = ServerConnection(server_config(), tls_active=True)
    io = _IOLayer(server)
    view = ClientView(strict=STRICT if strict is None else strict)
    out = bytearray()
    events: list[Event] = []
    error: RemoteProtocolError | None = None

    def flush() -> None:
        data = server.data_to_send()
        out.extend(data)
        view.feed(data)

    for chunk in decode(data):
        server.receive_data(chunk)
        while error is None:
            try:
                event = server.next_event()
            except RemoteProtocolError as exc:
                error = exc
                break
            if event is None:
                break
            events.append(event)
            io.handle(event)
        flush()
        if error is not None:
            break
    if error is not None:
        assert server.state is State.ERROR, server.state
        assert server.should_close
        assert bytes(out).endswith(b"</stream:stream>"), bytes(out[-200:])
        assert view.ended
        server.receive_data(b"<message/>")
        assert server.next_event() is None
        assert server.data_to_send() == b""
    return Outcome(server, bytes(out), events, error)


def replay(path: str | Path) -> Outcome:
    """Run one input file (a seed or a ``crash-*`` file) and print what happened."""
    data = Path(path).read_bytes()
    chunks = decode(data)
    print(f"{path}: {len(data)} bytes, {len(chunks)} chunk(s)")
    outcome = check(data)
    for event in outcome.events:
        print("  event", event)
    print("  state", outcome.server.state.name, "error", outcome.error)
    print("  output", outcome.output.decode("utf-8", "replace"))
    return outcome


# -- seeds --------------------------------------------------------------------------------


def _header(**attrs: str) -> bytes:
    base = {"to": DOMAIN, "version": "1.0", ns.XML_LANG: "en"}
    base.update(attrs)
    return stream_header(dict(base), ns.CLIENT)


def _el(el: Element) -> bytes:
    return serialize(el, ns.CLIENT)


def _record(mechanism: str | None, tail: list[Element], *, close: bool = True) -> bytes:
    """A real client's bytes through a negotiation with the deterministic server,
    then ``tail`` sent as stanzas and a close."""
    client = ClientConnection(
        ClientConfig(
            jid=JID.parse(f"{USER}@{DOMAIN}/balcony"),
            password=PASSWORD,
            mechanisms=(mechanism,) if mechanism else None,
            rng=fixed_rng("client"),
        ),
        tls_active=True,
    )
    server = ServerConnection(server_config(), tls_active=True)
    pair = ConnectionPair(client, server, LOOKUP, channel_binding=None)
    sent: list[bytes] = []
    original = client.data_to_send

    def spy() -> bytes:
        data = original()
        sent.append(data)
        return data

    client.data_to_send = spy  # type: ignore[method-assign]
    client.start()
    pair.pump()
    assert client.state is State.READY, client.state
    for el in tail:
        client.send(el)
    if close:
        client.close()
    sent.append(original())
    return b"".join(sent)


def _stanzas() -> list[Element]:
    msg = Element(_MESSAGE, {"to": f"romeo@{DOMAIN}", "type": "chat", "id": "m1"})
    SubElement(msg, "{" + ns.CLIENT + "}body").text = "Wherefore art thou?"
    presence = Element("{" + ns.CLIENT + "}presence")
    SubElement(presence, "{" + ns.CLIENT + "}show").text = "chat"
    roster = Element(_IQ, {"type": "get", "id": "r1"})
    SubElement(roster, "{jabber:iq:roster}query")
    return [msg, presence, roster]


def seed_inputs() -> dict[str, bytes]:
    """The seed streams by file name (without the leading cut byte)."""
    sm = "urn:xmpp:sm:3"
    hdr = _header()
    scram = _record(None, _stanzas())
    plain = _record("PLAIN", [])
    reg_get = Element(_IQ, {"type": "get", "id": "g1"})
    SubElement(reg_get, "{jabber:iq:register}query")
    reg_set = Element(_IQ, {"type": "set", "id": "s1"})
    reg_set.append(register.registration_request("nurse", "secret"))
    reg_taken = Element(_IQ, {"type": "set", "id": "s2"})
    reg_taken.append(register.registration_request(TAKEN, "secret"))
    plain_nurse = base64.b64encode(b"\0nurse\0secret").decode()
    registration = (
        hdr
        + _el(reg_get)
        + _el(reg_taken)
        + _el(reg_set)
        + f"<auth xmlns='{ns.SASL}' mechanism='PLAIN'>{plain_nurse}</auth>".encode()
        + hdr
        + f"<iq type='set' id='b1'><bind xmlns='{ns.BIND}'/></iq></stream:stream>".encode()
    )
    # SM: enable after bind, stanzas, requests and acks, then a resume on a new stream.
    ready = _record(None, [], close=False)
    sm_enable = (
        ready
        + f"<enable xmlns='{sm}' resume='true' max='60'/>".encode()
        + b"<message to='romeo@example.com' id='x'><body>1</body></message>"
        + f"<r xmlns='{sm}'/><a xmlns='{sm}' h='0'/>".encode()
        + b"<iq type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq>"
        + f"<r xmlns='{sm}'/>".encode()
        + b"<inactive xmlns='urn:xmpp:csi:0'/><active xmlns='urn:xmpp:csi:0'/>"
        + b"</stream:stream>"
    )
    auth_only = scram[: scram.index(b"<iq")]  # through <success/> and the restart header
    resume = auth_only + f"<resume xmlns='{sm}' previd='{PREVID}' h='1'/>".encode()
    resume_unknown = auth_only + f"<resume xmlns='{sm}' previd='nope' h='0'/>".encode()
    anonymous = (
        hdr
        + f"<auth xmlns='{ns.SASL}' mechanism='ANONYMOUS'>=</auth>".encode()
        + hdr
        + f"<iq type='set' id='b'><bind xmlns='{ns.BIND}'><resource>r</resource></bind></iq>".encode()
    )
    bad_password = base64.b64encode(b"\0juliet\0wrong").decode()
    return {
        "scram_full.xml": scram,
        "plain.xml": plain,
        "registration.xml": registration,
        "sm_enable.xml": sm_enable,
        "sm_resume.xml": resume,
        "sm_resume_unknown.xml": resume_unknown,
        "anonymous.xml": anonymous,
        # malformed or refused
        "bad_password_thrice.xml": hdr
        + f"<auth xmlns='{ns.SASL}' mechanism='PLAIN'>{bad_password}</auth>".encode() * 3,
        "abort_thrice.xml": hdr
        + f"<auth xmlns='{ns.SASL}' mechanism='PLAIN'/><abort xmlns='{ns.SASL}'/>".encode() * 3,
        "stanza_before_auth.xml": hdr + b"<message to='romeo@example.com'/>",
        "starttls_over_tls.xml": hdr + f"<starttls xmlns='{ns.TLS}'/>".encode(),
        "bad_header_after_success.xml": auth_only[: auth_only.rindex(b"<?xml")]
        + b"<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams'>",
        "truncated.xml": scram[: len(scram) // 2],
        "not_well_formed.xml": hdr + b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl'></a>",
        "spoofed_from.xml": ready + b"<message from='romeo@example.com/x'/>",
        "bind_before_auth.xml": hdr
        + f"<iq type='set' id='b'><bind xmlns='{ns.BIND}'/></iq>".encode(),
        "restricted_xml.xml": hdr + b"<!-- hello --><presence/>",
    }


def write_seeds(directory: str | Path = CORPUS) -> list[Path]:
    """Write the seeds (each with a leading ``\\x00``: no cuts)."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, stream in seed_inputs().items():
        path = out / name
        path.write_bytes(b"\x00" + stream)
        paths.append(path)
    return paths


if __name__ == "__main__":
    if sys.argv[1:2] == ["seeds"]:
        for p in write_seeds(*sys.argv[2:3]):
            print(p)
    elif sys.argv[1:2] == ["replay"]:
        for arg in sys.argv[2:]:
            replay(arg)
    else:
        print(__doc__)
        sys.exit(2)
