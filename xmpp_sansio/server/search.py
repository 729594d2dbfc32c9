"""A user directory at ``vjud.DOMAIN``: Jabber Search (XEP-0055) with data
forms over the users' vCards (XEP-0054), sans-IO.

* :class:`DirectoryIndex` holds the searchable part of each vCard (name,
  nickname, e-mail) and who is listed. Each user chooses: the default is the
  configuration's ``listed_by_default`` (off unless set: a user is found only
  after opting in), changed with the ad-hoc command ``visibility`` on the
  directory's JID (XEP-0050; one boolean field ``listed``), stored as a
  :class:`~xmpp_sansio.server.effects.DirectoryListing` write.
* :class:`DirectoryIndexer` keeps the index current: it observes the
  committed vCard and listing writes and account removals (a vCard write
  costs one type check more; other stanzas nothing).
* :class:`DirectoryService` answers at ``vjud.DOMAIN``: ``get`` returns the
  search form (XEP-0055 §3.1, FORM_TYPE ``jabber:iq:search``), ``set`` with a
  submitted form returns a ``result`` form with a ``<reported/>`` table, at
  most ``max_results`` rows (XEP-0055 §3.2); the legacy fields (``<first/>``,
  ``<last/>``, ``<nick/>``, ``<email/>``, §2) are answered in kind. A search
  needs at least one non-empty field (``bad-request`` otherwise): the
  directory never lists everyone.

A field matches when its text occurs in the user's value, ignoring case;
``first`` also matches the formatted name (FN). Every given field must match.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import ClassVar, Final
from xml.etree.ElementTree import Element, SubElement

from ..disco import Identity, build_disco_info, build_disco_items
from ..errors import StanzaErrorCondition
from ..forms import Field, FieldType, Form, FormError, FormType, build_form, parse_form
from ..jid import JID
from ..stanza import Iq, IqType, Stanza, error_reply, iq_result
from ..xml.parser import XMLStreamError, parse_fragment
from .adhoc.engine import (
    NS_COMMANDS,
    Action,
    AdhocEngine,
    Call,
    Command,
    CommandInputError,
    Note,
    Step,
)
from .effects import DirectoryListing, Outcome, Persist, Reply, VCardDelete, VCardPut
from .hosts import HostService
from .service import Service
from .stages import AccountRemoved, Committed, Context, Event

__all__ = [
    "NS_SEARCH",
    "DirectoryIndex",
    "DirectoryIndexer",
    "DirectoryService",
    "Entry",
    "entry_from_vcard",
]

NS_SEARCH: Final = "jabber:iq:search"
_QUERY: Final = f"{{{NS_SEARCH}}}query"
_X: Final = "{jabber:x:data}x"
_VCARD: Final = "{vcard-temp}"
#: The searchable fields, with their labels (XEP-0055 §3).
FIELDS: Final = (
    ("first", "Given Name"),
    ("last", "Family Name"),
    ("nick", "Nickname"),
    ("email", "Email"),
)
#: The longest value of a search field (characters).
MAX_FIELD: Final = 256


@dataclass(frozen=True, slots=True)
class Entry:
    """The searchable part of one user's vCard."""

    jid: JID
    first: str = ""
    last: str = ""
    nick: str = ""
    email: str = ""
    fn: str = ""

    def value(self, var: str) -> str:
        return str(getattr(self, var))


def _text(parent: Element | None, path: str) -> str:
    if parent is None:
        return ""
    el = parent.find(path)
    return (el.text or "").strip() if el is not None else ""


def entry_from_vcard(jid: JID, data: bytes) -> Entry:
    """The searchable fields of a stored vCard (XEP-0054 §3): N/GIVEN,
    N/FAMILY, NICKNAME, the first EMAIL/USERID, FN. An unreadable vCard has
    none."""
    try:
        vcard = parse_fragment(data)
    except (ValueError, XMLStreamError):  # stored by the vCard service; be lenient
        return Entry(jid)
    v = _VCARD
    return Entry(
        jid,
        first=_text(vcard, f"{v}N/{v}GIVEN"),
        last=_text(vcard, f"{v}N/{v}FAMILY"),
        nick=_text(vcard, f"{v}NICKNAME"),
        email=_text(vcard, f"{v}EMAIL/{v}USERID"),
        fn=_text(vcard, f"{v}FN"),
    )


class DirectoryIndex:
    """Who is listed, and their searchable fields (bare JIDs)."""

    def __init__(self, *, listed_by_default: bool = False, max_results: int = 50) -> None:
        self.listed_by_default = listed_by_default
        self.max_results = max_results
        self.entries: dict[JID, Entry] = {}
        self.choices: dict[JID, bool] = {}

    def load(self, vcards: Iterable[tuple[JID, bytes]], choices: Mapping[JID, bool]) -> None:
        """Fill the index from the stores (at start)."""
        for jid, data in vcards:
            if jid.local is not None:
                self.entries[jid.bare] = entry_from_vcard(jid.bare, data)
        self.choices.update({jid.bare: listed for jid, listed in choices.items()})

    def is_listed(self, jid: JID) -> bool:
        return self.choices.get(jid.bare, self.listed_by_default)

    def search(self, criteria: Mapping[str, str]) -> list[Entry]:
        """The listed entries matching every criterion, by JID, at most ``max_results``."""
        wanted = {k: v.casefold() for k, v in criteria.items() if v}
        found: list[Entry] = []
        for jid in sorted(self.entries, key=str):
            entry = self.entries[jid]
            if not self.is_listed(jid):
                continue
            if all(self._matches(entry, var, text) for var, text in wanted.items()):
                found.append(entry)
                if len(found) >= self.max_results:
                    break
        return found

    @staticmethod
    def _matches(entry: Entry, var: str, text: str) -> bool:
        if text in entry.value(var).casefold():
            return True
        return var == "first" and text in entry.fn.casefold()


class DirectoryIndexer(Service):
    """Keeps a :class:`DirectoryIndex` in step with the committed writes."""

    observes: ClassVar[tuple[type[Event], ...]] = (Committed, AccountRemoved)

    def __init__(self, index: DirectoryIndex) -> None:
        self.index = index

    def observe(self, ctx: Context, event: Event) -> list[Outcome]:
        index = self.index
        if type(event) is Committed:
            if event.failed:
                return []
            for op in event.ops:
                t = type(op)
                if t is VCardPut and op.user.local is not None:  # type: ignore[union-attr]
                    user = op.user.bare  # type: ignore[union-attr]
                    index.entries[user] = entry_from_vcard(user, op.data)  # type: ignore[union-attr]
                elif t is VCardDelete:
                    index.entries.pop(op.user.bare, None)  # type: ignore[union-attr]
                elif t is DirectoryListing:
                    account, listed = op.account.bare, op.listed  # type: ignore[union-attr]
                    if listed is None:
                        index.choices.pop(account, None)
                    else:
                        index.choices[account] = listed
        elif type(event) is AccountRemoved:
            index.entries.pop(event.account.bare, None)
            if event.account.bare in index.choices:
                return [Persist(DirectoryListing(event.account.bare, None))]
        return []


class _Visibility(Command):
    """XEP-0050 command ``visibility``: list me in the directory, or not."""

    node = "visibility"
    name = "Directory listing"

    def __init__(self, index: DirectoryIndex) -> None:
        self.index = index

    def allowed(self, requester: JID) -> bool:
        return requester.local is not None

    def run(self, ctx: Context, call: Call) -> Step:
        if not call.forms:
            listed = self.index.is_listed(call.requester)
            field = Field(
                "listed",
                FieldType.BOOLEAN,
                "List me in the user directory",
                values=("1" if listed else "0",),
            )
            return Step(
                Form(FormType.FORM, title="Directory listing", fields=(field,)),
                actions=(Action.COMPLETE,),
            )
        choice = call.forms[-1].bool_value("listed")
        if choice is None:
            raise CommandInputError("listed", "a boolean is required")
        text = "you are listed" if choice else "you are not listed"
        return Step(
            notes=(Note(text),),
            outcomes=(Persist(DirectoryListing(call.requester.bare, choice)),),
        )


class DirectoryService(HostService):
    """Jabber Search (XEP-0055) at the directory's domain, and its
    ``visibility`` ad-hoc command (XEP-0050)."""

    name: ClassVar[str | None] = "User Directory"
    identities: ClassVar[tuple[Identity, ...]] = (Identity("directory", "user", "User Directory"),)
    features: ClassVar[tuple[str, ...]] = (NS_SEARCH, NS_COMMANDS)

    def __init__(self, index: DirectoryIndex, *, session_lifetime: float = 600.0) -> None:
        self.index = index
        self.commands = AdhocEngine([_Visibility(index)], session_lifetime=session_lifetime)

    def handle(self, ctx: Context, stanza: Stanza) -> list[Outcome]:
        if not isinstance(stanza, Iq) or not stanza.is_request:
            return []
        if stanza.to is None or stanza.to.local is not None or stanza.to.resource is not None:
            return [Reply(error_reply(stanza.element, StanzaErrorCondition.SERVICE_UNAVAILABLE))]
        payload = stanza.payload
        tag = None if payload is None else payload.tag
        if tag == _QUERY:
            assert payload is not None
            if stanza.type is IqType.GET:
                return [Reply(iq_result(stanza.element, self._form_query()))]
            return self._search(stanza, payload)
        if tag == f"{{{NS_COMMANDS}}}command":
            return self.commands.handle(ctx, stanza, JID(None, self.domain, None))
        disco = self._command_disco(stanza)
        if disco is not None:
            return disco
        answered = self.answer_disco(stanza)
        if answered is not None:
            return answered
        return [Reply(error_reply(stanza.element, StanzaErrorCondition.SERVICE_UNAVAILABLE))]

    def _command_disco(self, iq: Iq) -> list[Outcome] | None:
        payload = iq.payload
        if payload is None or iq.type is not IqType.GET or iq.from_ is None:
            return None
        node = payload.get("node")
        if node is None:
            return None
        entity = JID(None, self.domain, None)
        if payload.tag.endswith("disco#items}query") and node == NS_COMMANDS:
            items = self.commands.items(iq.from_, entity)
            return [Reply(iq_result(iq.element, build_disco_items(items)))]
        if payload.tag.endswith("disco#info}query"):
            info = self.commands.info(node, iq.from_)
            if info is not None:
                return [Reply(iq_result(iq.element, build_disco_info(info)))]
        return [Reply(error_reply(iq.element, StanzaErrorCondition.ITEM_NOT_FOUND))]

    def _form_query(self) -> Element:
        query = Element(_QUERY)
        SubElement(
            query, f"{{{NS_SEARCH}}}instructions"
        ).text = "Find a user by name, nickname or e-mail address."
        fields = [Field("FORM_TYPE", FieldType.HIDDEN, values=(NS_SEARCH,))]
        fields += [Field(var, FieldType.TEXT_SINGLE, label) for var, label in FIELDS]
        query.append(build_form(Form(FormType.FORM, title="User Directory", fields=tuple(fields))))
        for var, _ in FIELDS:  # the legacy fields (XEP-0055 §2)
            SubElement(query, f"{{{NS_SEARCH}}}{var}")
        return query

    def _search(self, iq: Iq, query: Element) -> list[Outcome]:
        x = query.find(_X)
        legacy = x is None
        criteria: dict[str, str] = {}
        if x is not None:
            try:
                form = parse_form(x)
            except FormError as exc:
                return self._bad(iq, str(exc))
            if form.type is not FormType.SUBMIT:
                return self._bad(iq, "the form's type must be 'submit'")
            for var, _ in FIELDS:
                value = form.value(var)
                if value is not None:
                    criteria[var] = value.strip()
        else:
            for var, _ in FIELDS:
                criteria[var] = _text(query, f"{{{NS_SEARCH}}}{var}")
        for var, value in criteria.items():
            if len(value) > MAX_FIELD:
                return self._bad(iq, f"field {var!r} is longer than {MAX_FIELD} characters")
        if not any(criteria.values()):
            return self._bad(iq, "fill in at least one field (first, last, nick, email)")
        found = self.index.search(criteria)
        result = Element(_QUERY)
        if legacy:
            for entry in found:
                item = SubElement(result, f"{{{NS_SEARCH}}}item", {"jid": str(entry.jid)})
                for var, _ in FIELDS:
                    SubElement(item, f"{{{NS_SEARCH}}}{var}").text = entry.value(var)
        else:
            reported = (
                Field("jid", FieldType.JID_SINGLE, "JID"),
                *(Field(var, FieldType.TEXT_SINGLE, label) for var, label in FIELDS),
            )
            items = tuple(
                (
                    Field("jid", values=(str(entry.jid),)),
                    *(Field(var, values=(entry.value(var),)) for var, _ in FIELDS),
                )
                for entry in found
            )
            hidden = Field("FORM_TYPE", FieldType.HIDDEN, values=(NS_SEARCH,))
            result.append(
                build_form(Form(FormType.RESULT, fields=(hidden,), reported=reported, items=items))
            )
        return [Reply(iq_result(iq.element, result))]

    @staticmethod
    def _bad(iq: Iq, text: str) -> list[Outcome]:
        return [Reply(error_reply(iq.element, StanzaErrorCondition.BAD_REQUEST, text=text))]
