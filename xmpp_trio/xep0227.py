"""Export and import of the whole server in the XEP-0227 (Portable Import/Export
Format) file format, for migrations from and to Prosody (``prosody-migrator``
writes one XEP-0227 file per user) and ejabberd (``export_piefxis``).

Per user (XEP-0227 §4): the account with its SCRAM credentials (§4.3; this
server keeps SHA-1, SHA-256 and SHA-512, an export carries all three and an
import takes what the file has, or derives all three from a plaintext
``password`` attribute), the roster (§4.4, ``jabber:iq:roster``), offline
messages (§4.5), private XML storage (§4.6) and the vCard (§4.7). The other
elements of the format (PEP nodes, archives) and unknown namespaces are
skipped and reported (§3: "SHOULD notify the operator"). Hosts the
configuration does not serve are skipped and reported (§3.1), as are accounts
that exist already: an import never overwrites.
"""

from __future__ import annotations

import base64
import binascii
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree import ElementTree as ET
from xml.etree.ElementTree import Element, SubElement

from xmpp_sansio.jid import JID, InvalidJID
from xmpp_sansio.roster import InvalidRosterQuery, build_roster_query, parse_roster_query
from xmpp_sansio.sasl.credentials import HASHES, ScramCredentials
from xmpp_sansio.server.roster import StoredItem
from xmpp_sansio.xml import ns
from xmpp_sansio.xml.parser import parse_fragment
from xmpp_sansio.xml.writer import serialize

from .config import ServerConfig
from .services import open_database
from .storage import AccountExists, AccountStore
from .stores.offline import SqliteOfflineStorage
from .stores.private import SqlitePrivateStorage
from .stores.roster import SqliteRosterStorage
from .stores.vcard import SqliteVCardStorage

__all__ = ["PIE", "SCRAM", "Report", "export_server", "import_server"]

PIE = "urn:xmpp:pie:0"
SCRAM = "urn:xmpp:pie:0#scram"
_ROSTER = "jabber:iq:roster"
_PRIVATE = "jabber:iq:private"
_VCARD = "vcard-temp"
_DELAY = "urn:xmpp:delay"
#: XEP-0227 §4.3 mechanism names and this server's hashlib names.
_MECHANISMS = {"SCRAM-SHA-1": "sha1", "SCRAM-SHA-256": "sha256", "SCRAM-SHA-512": "sha512"}
_MECHANISM_OF = {hash_name: mech for mech, hash_name in _MECHANISMS.items()}


@dataclass
class Report:
    """What an export or an import did, and what it skipped (one line each)."""

    accounts: int = 0
    roster_items: int = 0
    vcards: int = 0
    private_items: int = 0
    offline_messages: int = 0
    skipped: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"{self.accounts} accounts, {self.roster_items} roster items, {self.vcards} vCards,"
            f" {self.private_items} private XML items, {self.offline_messages} offline messages"
        )


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _text(parent: Element, tag: str, text: str) -> None:
    SubElement(parent, tag).text = text


# --- export -------------------------------------------------------------------------


def export_server(config: ServerConfig, path: Path) -> Report:
    """Write every account of the served domains, with its data, to ``path``
    (one XEP-0227 document). Safe while the server runs (SQLite WAL readers)."""
    report = Report()
    root = Element(f"{{{PIE}}}server-data")
    with AccountStore.open(config.database_path) as store:
        db = open_database(config)
        try:
            hosts: dict[str, Element] = {}
            for local, domain in store.list_accounts():
                host = hosts.get(domain)
                if host is None:
                    host = hosts[domain] = SubElement(root, f"{{{PIE}}}host", {"jid": domain})
                _export_user(store, db, host, JID.from_parts(local, domain, None), report)
        finally:
            db.close()
    ET.indent(root)
    data = serialize(root, default_ns="")  # xmlns declared where it changes
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(b"<?xml version='1.0' encoding='UTF-8'?>\n" + data + b"\n")
    tmp.chmod(0o600)  # it holds credentials (XEP-0227 §8)
    tmp.replace(path)
    return report


def _export_user(
    store: AccountStore, db: sqlite3.Connection, host: Element, user: JID, report: Report
) -> None:
    assert user.local is not None
    element = SubElement(host, f"{{{PIE}}}user", {"name": user.local})
    report.accounts += 1
    for hash_name in HASHES:
        creds = store.credentials(user.local, user.domain, hash_name)
        if creds is None:
            continue
        scram = SubElement(element, f"{{{SCRAM}}}scram-credentials")
        scram.set("mechanism", _MECHANISM_OF[hash_name])
        _text(scram, f"{{{SCRAM}}}iter-count", str(creds.iterations))
        _text(scram, f"{{{SCRAM}}}salt", _b64(creds.salt))
        _text(scram, f"{{{SCRAM}}}server-key", _b64(creds.server_key))
        _text(scram, f"{{{SCRAM}}}stored-key", _b64(creds.stored_key))
    _, stored = SqliteRosterStorage(db).get(user)
    items = [s.item for s in stored if s.in_roster]
    if items:
        element.append(build_roster_query(items))
        report.roster_items += len(items)
    vcard = SqliteVCardStorage(db).get(user)
    if vcard is not None:
        element.append(parse_fragment(vcard))
        report.vcards += 1
    private = SqlitePrivateStorage(db)
    keys = sorted(private.sizes(user))
    if keys:
        query = SubElement(element, f"{{{_PRIVATE}}}query")
        for namespace, local in keys:
            data = private.get(user, namespace, local)
            if data is not None:
                query.append(parse_fragment(data))
                report.private_items += 1
    messages = SqliteOfflineStorage(db).peek(user)
    if messages:
        offline = SubElement(element, f"{{{PIE}}}offline-messages")
        for message in messages:
            stanza = parse_fragment(message.stanza)
            if stanza.find(f"{{{_DELAY}}}delay") is None:  # when it was stored (XEP-0203)
                stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(message.stamp))
                SubElement(stanza, f"{{{_DELAY}}}delay", {"stamp": stamp, "from": user.domain})
            offline.append(stanza)
            report.offline_messages += 1


# --- import -------------------------------------------------------------------------


def _documents(source: Path) -> Iterator[tuple[Path, Element]]:
    """The XEP-0227 documents of ``source``: one file, or every ``*.xml`` of a
    directory (``prosody-migrator`` writes one per user)."""
    files = sorted(source.rglob("*.xml")) if source.is_dir() else [source]
    if not files:
        raise ValueError(f"{source}: no XEP-0227 files (*.xml)")
    for path in files:
        try:
            root = ET.parse(path).getroot()
        except (ET.ParseError, OSError) as exc:
            raise ValueError(f"{path}: not a readable XML document: {exc}") from None
        if root.tag != f"{{{PIE}}}server-data":
            raise ValueError(f"{path}: not a XEP-0227 document (root {root.tag})")
        yield path, root


def _client_namespace(element: Element) -> Element:
    """``element`` with the export's namespace (or none) mapped to
    ``jabber:client`` (XEP-0227 §4.5: offline messages are ``jabber:client``
    stanzas; some exporters leave them in the document's default namespace)."""
    tag = element.tag
    if tag.startswith(f"{{{PIE}}}"):
        tag = f"{{{ns.CLIENT}}}" + tag.removeprefix(f"{{{PIE}}}")
    elif not tag.startswith("{"):
        tag = f"{{{ns.CLIENT}}}" + tag
    copy = Element(tag, dict(element.attrib))
    copy.text = element.text
    for child in element:
        inner = _client_namespace(child)
        inner.tail = child.tail
        copy.append(inner)
    return copy


def _credentials(user: Element, where: str, report: Report) -> list[ScramCredentials]:
    found = []
    for scram in user.iter(f"{{{SCRAM}}}scram-credentials"):
        mechanism = scram.get("mechanism", "")
        hash_name = _MECHANISMS.get(mechanism)
        if hash_name is None:
            report.skipped.append(f"{where}: {mechanism or 'unnamed'} credentials (unsupported)")
            continue
        try:
            found.append(
                ScramCredentials(
                    hash_name=hash_name,
                    salt=base64.b64decode(scram.findtext(f"{{{SCRAM}}}salt", ""), validate=True),
                    iterations=int(scram.findtext(f"{{{SCRAM}}}iter-count", "")),
                    stored_key=base64.b64decode(
                        scram.findtext(f"{{{SCRAM}}}stored-key", ""), validate=True
                    ),
                    server_key=base64.b64decode(
                        scram.findtext(f"{{{SCRAM}}}server-key", ""), validate=True
                    ),
                )
            )
        except (ValueError, binascii.Error):
            report.skipped.append(f"{where}: malformed {mechanism} credentials")
    usable: dict[str, ScramCredentials] = {}
    for c in found:  # one set per mechanism (§4.3); some exporters repeat it
        if c.iterations > 0 and c.salt and c.stored_key and c.server_key:
            usable.setdefault(c.hash_name, c)
    return list(usable.values())


def import_server(config: ServerConfig, source: Path, *, iterations: int | None = None) -> Report:
    """Import the XEP-0227 file (or directory of files) ``source`` into the
    database of ``config``. Run it with the server stopped (the caller holds
    the data directory's lock). Raises ``ValueError`` for a file that is not
    XEP-0227; what cannot be imported is skipped and reported."""
    report = Report()
    served = set(config.domains)
    with AccountStore.open(config.database_path) as store:
        db = open_database(config)
        try:
            for path, root in _documents(source):
                for host in root.findall(f"{{{PIE}}}host"):
                    domain = host.get("jid", "")
                    if domain not in served:
                        report.skipped.append(f"{path.name}: host {domain!r} is not served here")
                        continue
                    for user in host.findall(f"{{{PIE}}}user"):
                        _import_user(
                            store, db, domain, user, report, iterations or config.scram_iterations
                        )
        finally:
            db.close()
    return report


def _import_user(
    store: AccountStore,
    db: sqlite3.Connection,
    domain: str,
    user: Element,
    report: Report,
    iterations: int,
) -> None:
    name = user.get("name", "")
    try:
        jid = JID.from_parts(name, domain, None)
    except InvalidJID as exc:
        report.skipped.append(f"user {name!r}@{domain}: invalid JID ({exc})")
        return
    assert jid.local is not None
    where = str(jid)
    password = user.get("password")
    try:
        if password:
            store.create(jid.local, domain, password, iterations=iterations)
        else:
            credentials = _credentials(user, where, report)
            if not credentials:
                report.skipped.append(f"{where}: no password or SCRAM credentials")
                return
            store.create_with_credentials(jid.local, domain, credentials)
    except AccountExists:
        report.skipped.append(f"{where}: the account exists already (not overwritten)")
        return
    except ValueError as exc:
        report.skipped.append(f"{where}: {exc}")
        return
    report.accounts += 1
    for child in user:
        if child.tag == f"{{{_ROSTER}}}query":
            _import_roster(db, jid, child, report)
        elif child.tag == f"{{{_VCARD}}}vCard":
            SqliteVCardStorage(db).put(jid, serialize(child))
            report.vcards += 1
        elif child.tag == f"{{{_PRIVATE}}}query":
            items = [
                (*_split(item.tag), serialize(item)) for item in child if item.tag.startswith("{")
            ]
            SqlitePrivateStorage(db).put_many(jid, items)
            report.private_items += len(items)
        elif child.tag == f"{{{PIE}}}offline-messages":
            _import_offline(db, jid, child, report)
        elif child.tag != f"{{{SCRAM}}}scram-credentials":
            report.skipped.append(f"{where}: {child.tag} (not imported)")


def _split(tag: str) -> tuple[str, str]:
    namespace, _, local = tag[1:].partition("}")
    return namespace, local


def _import_roster(db: sqlite3.Connection, user: JID, query: Element, report: Report) -> None:
    try:
        _, items = parse_roster_query(query)
    except InvalidRosterQuery as exc:
        report.skipped.append(f"{user}: roster ({exc})")
        return
    roster = SqliteRosterStorage(db)
    for item in items:
        roster.put(user, StoredItem(item))
        report.roster_items += 1


def _import_offline(db: sqlite3.Connection, user: JID, parent: Element, report: Report) -> None:
    storage = SqliteOfflineStorage(db)
    for element in parent:
        stanza = _client_namespace(element)
        if stanza.tag != f"{{{ns.CLIENT}}}message":
            report.skipped.append(f"{user}: offline {element.tag} (not a message)")
            continue
        stamp = time.time()
        delay = stanza.find(f"{{{_DELAY}}}delay")
        if delay is not None and delay.get("stamp"):
            stamp = _parse_stamp(delay.get("stamp", ""), stamp)
        try:
            data = serialize(stanza)
        except ValueError as exc:
            report.skipped.append(f"{user}: offline message ({exc})")
            continue
        storage.push(user, data, stamp, limit=1 << 30)
        report.offline_messages += 1


def _parse_stamp(text: str, default: float) -> float:
    """A XEP-0082 DateTime as Unix time (``default`` if it does not parse)."""
    import datetime

    try:
        return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return default
