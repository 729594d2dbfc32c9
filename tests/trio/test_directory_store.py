"""The SQLite side of the admin commands and the directory, on real files:
``AccountCreate`` and ``DirectoryListing`` committed through
``ServerServices.commit`` (one transaction with the batch's other ops) and
read back after a restart."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from xmpp_sansio.jid import JID
from xmpp_sansio.server.effects import AccountCreate, DirectoryListing, VCardPut
from xmpp_trio.config import ServerConfig
from xmpp_trio.services import ServerServices, open_database
from xmpp_trio.storage import HASHES, AccountExists, AccountStore
from xmpp_trio.stores.directory import SqliteDirectoryStorage

ROMEO = JID.parse("romeo@localhost")
NURSE = JID.parse("nurse@localhost")
HASH = HASHES[0]


def services(config: ServerConfig) -> tuple[ServerServices, sqlite3.Connection]:
    db = open_database(config)
    store = AccountStore.open(config.database_path)
    return ServerServices(config, store, db), db


def test_listing_choices_and_vcards_survive_a_restart(server_config: ServerConfig) -> None:
    svc, db = services(server_config)
    svc.commit(
        [
            VCardPut(ROMEO, b"<vCard xmlns='vcard-temp'><NICKNAME>rom</NICKNAME></vCard>"),
            DirectoryListing(ROMEO, True),
            DirectoryListing(JID.parse("juliet@localhost"), False),
        ]
    )
    db.close()
    db = open_database(server_config)
    storage = SqliteDirectoryStorage(db)
    assert storage.choices() == {ROMEO: True, JID.parse("juliet@localhost"): False}
    assert [jid for jid, _ in storage.vcards()] == [ROMEO]
    # A restarted server indexes them: romeo is found.
    svc, db2 = services(server_config)
    assert svc.directory is not None
    assert [e.jid for e in svc.directory.index.search({"nick": "ro"})] == [ROMEO]
    svc.commit([DirectoryListing(ROMEO, None)])
    assert SqliteDirectoryStorage(db2).choices() == {JID.parse("juliet@localhost"): False}
    db.close()
    db2.close()


def test_account_create_commits_credentials_or_nothing(server_config: ServerConfig) -> None:
    svc, db = services(server_config)
    svc.commit([AccountCreate(NURSE, "N1ght-Nurse")])
    with AccountStore.open(server_config.database_path) as store:
        assert store.exists("nurse", "localhost")
        assert store.credentials("nurse", "localhost", HASH) is not None
    # An existing account fails the whole batch: the listing is not written either.
    with pytest.raises(AccountExists):
        svc.commit([DirectoryListing(ROMEO, True), AccountCreate(NURSE, "again")])
    assert SqliteDirectoryStorage(db).choices() == {}
    db.close()


def test_no_directory_host_when_disabled(server_config: ServerConfig, tmp_path: Path) -> None:
    import dataclasses

    from xmpp_trio.admin_config import DirectoryConfig

    config = dataclasses.replace(server_config, directory=DirectoryConfig(enabled=False))
    svc, db = services(config)
    assert svc.directory is None and "vjud.localhost" not in svc.hosts
    db.close()
