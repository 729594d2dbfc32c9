"""Logging set-up for ``serve``: plain text lines, or one JSON object per line
(``log_format = "json"``) for log collectors, with the session id of the
connection a line is about.

The session id comes from :data:`SESSION`, a context variable the server sets
in each connection's task (tasks started from it inherit it), so every line
logged while serving a connection carries it, whoever logs it.
"""

from __future__ import annotations

import json
import logging
import time
from contextvars import ContextVar
from typing import Final

from .config import LOG_FORMATS

__all__ = ["LOG_FORMATS", "SESSION", "TEXT_FORMAT", "JSONFormatter", "configure"]

#: The id of the client connection being served (None: not about one).
SESSION: ContextVar[int | None] = ContextVar("xmpp_trio_session", default=None)
TEXT_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JSONFormatter(logging.Formatter):
    """One JSON object per line: ``time`` (ISO 8601, UTC), ``level``,
    ``logger``, ``message``, ``session`` (when the line is about a client
    connection) and ``exception`` (a traceback, when there is one)."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        entry: dict[str, object] = {
            "time": f"{stamp}.{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        session = getattr(record, "session", None)
        if session is None:
            session = SESSION.get()
        if session is not None:
            entry["session"] = session
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


class _SessionFilter(logging.Filter):
    """Stamp each record with the session of the task that logs it (the
    context variable is read where the record is made, not where it is
    formatted)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "session"):
            record.session = SESSION.get()
        return True


def configure(level: str, log_format: str) -> None:
    """Log to standard error at ``level`` in ``log_format`` (``text`` or ``json``)."""
    handler = logging.StreamHandler()
    handler.addFilter(_SessionFilter())
    if log_format == "json":
        handler.setFormatter(JSONFormatter())
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=level.upper(), handlers=[handler])
