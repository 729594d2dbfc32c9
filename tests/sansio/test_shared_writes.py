"""``shared_writes``: a stanza serialised once for its recipient's stream and
its archive (xmpp_sansio/xml/writer.py), with the same bytes on the wire as
when each is written anew."""

from __future__ import annotations

import copy
import secrets
from xml.etree.ElementTree import Element, SubElement

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_xml_writer import TEXT, trees

from xmpp_sansio.jid import JID
from xmpp_sansio.server import Deliver, Router
from xmpp_sansio.server.mam.service import MamService
from xmpp_sansio.server.mam.store import ArchivePut, MemoryArchive
from xmpp_sansio.stanza import with_attrs
from xmpp_sansio.stream.config import ClientConfig, ServerConfig
from xmpp_sansio.stream.connection import ClientConnection, ServerConnection
from xmpp_sansio.testing import ConnectionPair, make_credentials, seeded_rng
from xmpp_sansio.xml import ns
from xmpp_sansio.xml.element import canonical
from xmpp_sansio.xml.parser import StreamParser, parse_fragment
from xmpp_sansio.xml.writer import serialize, shared_writes, stream_header

C = "{jabber:client}"
NAMESPACES = st.sampled_from([ns.CLIENT, ns.SERVER, ns.COMPONENT_ACCEPT, "", "urn:a"])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(trees(), NAMESPACES, NAMESPACES)
def test_an_element_written_twice_in_a_scope_gives_the_bytes_written_anew(
    tree: Element, first: str, second: str
) -> None:
    alone = serialize(tree, second)
    with shared_writes():
        serialize(tree, first)
        again = serialize(tree, second)
    assert again == alone


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(trees(), NAMESPACES, NAMESPACES, st.dictionaries(st.sampled_from(["to", "from"]), TEXT))
def test_copies_sharing_children_are_written_as_anew(
    tree: Element, first: str, second: str, changes: dict[str, str]
) -> None:
    """Fan-out: each recipient's copy (``with_attrs``) has its own attributes
    and the original's children."""
    copy_ = with_attrs(tree, **changes)
    alone = serialize(copy_, second)
    with shared_writes():
        serialize(tree, first)
        assert serialize(copy_, second) == alone


def test_a_copy_with_other_children_is_written_anew() -> None:
    el = Element(C + "presence")
    SubElement(el, C + "show").text = "away"
    fewer = with_attrs(el, to="a@example.com")
    fewer.remove(fewer[0])
    SubElement(fewer, C + "status").text = "out"
    with shared_writes():
        assert serialize(el) == b"<presence><show>away</show></presence>"
        assert serialize(fewer) == b'<presence to="a@example.com"><status>out</status></presence>'


def test_changes_to_the_element_itself_are_written_anew() -> None:
    el = Element(C + "message", {"to": "a@example.com"})
    SubElement(el, C + "body").text = "hi"
    changes = [
        lambda: el.set("from", "b@example.com/r"),
        lambda: el.set("to", "c@example.com"),
        lambda: SubElement(el, "{urn:xmpp:sid:0}stanza-id", {"id": "1"}),
        lambda: el.remove(el[-1]),
        lambda: setattr(el, "text", "x"),
        lambda: setattr(el, "tag", C + "presence"),
    ]
    with shared_writes():
        for change in changes:
            serialize(el)
            serialize(el, "")
            change()
            with shared_writes():  # an inner scope shares the outer one's memo
                assert serialize(el) == _alone(el)
                assert serialize(el, "") == _alone(el, "")


def test_nothing_is_kept_once_the_scope_closes() -> None:
    el = Element(C + "message")
    body = SubElement(el, C + "body")
    body.text = "one"
    with shared_writes():
        assert serialize(el) == b"<message><body>one</body></message>"
    body.text = "two"  # below the element's own level: only safe outside the scope
    with shared_writes():
        assert serialize(el) == b"<message><body>two</body></message>"


def test_stream_prefixed_elements_are_written_for_each_namespace() -> None:
    """Children of a ``stream:`` element inherit the stream's content namespace."""
    features = Element("{" + ns.STREAMS + "}features")
    SubElement(features, C + "x")
    with shared_writes():
        client = serialize(features, ns.CLIENT)
        server = serialize(features, ns.SERVER)
    assert client == b"<stream:features><x/></stream:features>"
    assert server == b'<stream:features><x xmlns="jabber:client"/></stream:features>'


# -- the server's path: sender's stanza -> router (archive on) -> recipient's stream --

STANZA_IDS = "{urn:xmpp:sid:0}"
EXTRA = st.sampled_from(
    ["{urn:xmpp:chat-markers:0}markable", "{http://jabber.org/protocol/chatstates}active", "x"]
)


@st.composite
def stanzas(draw: st.DrawFn) -> str:
    """A chat message as a client would write it, with random text and extras."""
    msg = Element(C + "message", {"to": "juliet@example.com", "type": "chat"})
    if draw(st.booleans()):
        msg.set("id", draw(TEXT))
    if draw(st.booleans()):
        msg.set("{" + ns.XML + "}lang", draw(st.sampled_from(["en", "fr"])))
    SubElement(msg, C + "body").text = draw(TEXT) or None
    for tag in draw(st.lists(EXTRA, max_size=2)):
        SubElement(msg, tag, draw(st.dictionaries(st.sampled_from(["a", "b"]), TEXT, max_size=2)))
    return serialize(msg).decode()


class _Server:
    """A router with archives on and the recipient's ready stream."""

    def __init__(self) -> None:
        self.router = Router(
            ["example.com"],
            rng=seeded_rng(7),
            account_exists=lambda local, domain: local in {"romeo", "juliet"},
            services=[MamService(MemoryArchive(), lambda owner, peer: True)],
        )
        client = ClientConnection(
            ClientConfig(
                rng=secrets.token_bytes,
                jid=JID.parse("juliet@example.com/balcony"),
                password="r0m30myr0m30",
            )
        )
        self.stream = ServerConnection(
            ServerConfig(rng=secrets.token_bytes, domains=frozenset({"example.com"}))
        )
        credentials = make_credentials({"juliet": "r0m30myr0m30"}, iterations=4096)
        client.start()
        ConnectionPair(client, self.stream, credentials).pump()
        assert self.stream.jid is not None
        self.router.bind(1, JID.parse("romeo@example.com/orchard"))
        self.router.bind(2, self.stream.jid)
        for session in (1, 2):
            self.router.route(session, Element(C + "presence"))
        self.stream.data_to_send()

    def deliver(self, data: str) -> tuple[bytes, list[bytes]]:
        """What the recipient's stream writes and what is archived."""
        effects = self.router.route(1, parse_fragment(data), owned=True)
        for effect in effects:
            if isinstance(effect, Deliver):
                self.stream.send(effect.element)
        archived = [  # written behind (Router.behind), no Persist effect a message
            op.stanza for op in self.router.behind if type(op) is ArchivePut
        ]
        self.router.behind.clear()  # as the I/O layer takes them
        sm = self.stream.sm
        if sm is not None:  # as if the client acknowledged everything
            sm.ack(sm.outbound % (1 << 32))
        return self.stream.data_to_send(), archived


_servers: list[_Server] = []


def _pair() -> tuple[_Server, _Server]:
    """Two identical servers (same seeds: same stanza ids), made once."""
    if not _servers:
        _servers.extend((_Server(), _Server()))
    return _servers[0], _servers[1]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stanzas())
def test_the_recipient_and_the_archive_get_what_the_old_path_wrote(data: str) -> None:
    old, new = _pair()
    wire, archived = old.deliver(data)
    with shared_writes():
        shared_wire, shared_archived = new.deliver(data)
    assert shared_wire == wire
    assert shared_archived == archived
    [stored] = archived
    [delivered] = [e for e in _elements(shared_wire) if e.tag == C + "message"]
    assert canonical(delivered) == canonical(parse_fragment(stored, ""))
    assert delivered.find(STANZA_IDS + "stanza-id") is not None


def _elements(wire: bytes) -> list[Element]:
    """The elements a client's stream parser reads from ``wire``."""
    parser = StreamParser()
    parser.feed(stream_header({}) + wire)
    events = []
    while (event := parser.next_event()) is not None:
        events.append(event)
    return [e for e in events if isinstance(e, Element)]


def _alone(el: Element, default_ns: str = ns.CLIENT) -> bytes:
    """What ``el`` is written as anew (a copy: nothing is kept for it)."""
    return serialize(copy.deepcopy(el), default_ns)
