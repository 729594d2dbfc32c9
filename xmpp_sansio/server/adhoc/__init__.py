"""Ad-hoc commands (XEP-0050) and the service administration commands
(XEP-0133) built on them; see docs/admin.md."""

from .engine import (
    NS_COMMANDS,
    Action,
    AdhocEngine,
    Call,
    Command,
    CommandInputError,
    Note,
    Step,
    simple,
)
from .service import AdhocService
from .xep0133 import NS_ADMIN, AdminCommands, AdminFacts, NoFacts, admin_commands

__all__ = [
    "NS_ADMIN",
    "NS_COMMANDS",
    "Action",
    "AdhocEngine",
    "AdhocService",
    "AdminCommands",
    "AdminFacts",
    "Call",
    "Command",
    "CommandInputError",
    "NoFacts",
    "Note",
    "Step",
    "admin_commands",
    "simple",
]
