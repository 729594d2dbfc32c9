"""HTTP File Upload (XEP-0363) on the HTTP listener: PUT and GET of the
files behind the slots that :class:`xmpp_sansio.server.upload.UploadService`
gives, stored as ``<data_dir>/upload/files/<slot>``, and their expiry."""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from pathlib import Path

import trio

from xmpp_sansio.http import (
    DownloadRequested,
    HTTPEvent,
    HTTPServerConnection,
    UploadReceived,
    UploadRequested,
)
from xmpp_sansio.server.upload import UploadService, valid_slot, verify

from .stores.upload import SqliteUploadStorage

__all__ = ["UploadFiles"]

log = logging.getLogger("xmpp_trio.http")

#: seconds between two sweeps of expired slots and files at most
SWEEP_INTERVAL = 60.0


class UploadFiles:
    """What the HTTP listener does for ``/upload/``: check a PUT against its
    signature and slot, store the body, serve it back, delete expired files."""

    def __init__(self, service: UploadService, storage: SqliteUploadStorage, data_dir: Path):
        self.service = service
        self.storage = storage
        self.directory = data_dir / "upload" / "files"
        self.directory.mkdir(parents=True, exist_ok=True)

    async def handle(self, conn: HTTPServerConnection, event: HTTPEvent) -> None:
        if isinstance(event, UploadRequested):
            self._check(conn, event)
        elif isinstance(event, UploadReceived):
            await self._store(conn, event)
        elif isinstance(event, DownloadRequested):
            await self._download(conn, event)

    def _check(self, conn: HTTPServerConnection, put: UploadRequested) -> None:
        """§5: the URL's signature covers the slot, the name, the size and the
        type; the slot must be recorded and its file not uploaded yet."""
        policy = self.service.policy
        if not verify(
            policy.key,
            put.slot,
            put.filename,
            put.size,
            put.content_type,
            put.expires,
            put.signature,
            time.time(),
        ):
            conn.refuse(403, "bad or expired upload URL")
            return
        try:
            stored = self.storage.get(put.slot)
        except sqlite3.Error:
            log.exception("upload: cannot read slot %s", put.slot)
            conn.refuse(503, "storage unavailable")
            return
        if stored is None or stored.filename != put.filename:
            conn.refuse(403, "unknown slot")
        elif stored.uploaded:
            conn.refuse(409, "this slot has been used")
        else:
            conn.accept_upload()

    async def _store(self, conn: HTTPServerConnection, upload: UploadReceived) -> None:
        path = self.directory / upload.slot
        partial = path.with_suffix(".part")

        def write() -> None:
            with partial.open("wb") as file:
                file.write(upload.body)
                file.flush()
                os.fsync(file.fileno())
            partial.replace(path)

        try:
            await trio.to_thread.run_sync(write)
            if not self.storage.mark_uploaded(upload.slot):
                conn.refuse(409, "this slot has been used")
                return
        except (OSError, sqlite3.Error):
            log.exception("upload: cannot store slot %s", upload.slot)
            conn.refuse(503, "cannot store the file")
            return
        conn.upload_stored()

    async def _download(self, conn: HTTPServerConnection, get: DownloadRequested) -> None:
        stored = self.storage.get(get.slot) if valid_slot(get.slot) else None
        if (
            stored is None
            or not stored.uploaded
            or stored.filename != get.filename
            or stored.file_expires <= time.time()
        ):
            conn.not_found(head=get.head)
            return
        try:
            body = await trio.to_thread.run_sync((self.directory / get.slot).read_bytes)
        except OSError:
            conn.not_found(head=get.head)
            return
        conn.send_file(body, stored.content_type, head=get.head, download=True)

    def sweep(self, now: float) -> int:
        """Delete the expired slots and files; the number of files deleted."""
        removed = 0
        for slot in self.storage.expire(now):
            try:
                (self.directory / slot).unlink()
                removed += 1
            except FileNotFoundError:
                pass
        return removed

    async def run_expiry(self) -> None:
        """Sweep now and then (file lifetimes are in days; slots in minutes)."""
        interval = min(SWEEP_INTERVAL, self.service.policy.slot_lifetime)
        while True:
            try:
                removed = self.sweep(time.time())
                if removed:
                    log.info("upload: %d expired files deleted", removed)
            except (OSError, sqlite3.Error):
                log.exception("upload: expiry failed")
            await trio.sleep(interval)
