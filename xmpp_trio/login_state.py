"""What a client keeps from one login to the next (XEP-0388 §2.3, XEP-0484):
its stable user-agent id and its FAST token, in memory or in a JSON file
only its owner can read (mode 0600: the token is as good as a password for
its lifetime, XEP-0484 §4.1)."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import uuid
from pathlib import Path

from xmpp_sansio.stream.login_options import LoginOptions, SavedFastToken

__all__ = ["LoginState"]

log = logging.getLogger("xmpp_trio.login_state")


class LoginState:
    """A client installation's login memory; :meth:`load` reads (or starts)
    ``path``, :meth:`options` gives what the next login uses, :meth:`update`
    takes what the login returned and saves it when it changed."""

    def __init__(
        self,
        *,
        user_agent_id: str | None = None,
        fast_token: SavedFastToken | None = None,
        path: Path | None = None,
    ) -> None:
        self.user_agent_id = user_agent_id or str(uuid.uuid4())
        self.fast_token = fast_token
        self.path = path

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> LoginState:
        """The state saved at ``path``; a new one (saved there at once, so the
        user-agent id stays stable) when the file does not exist or is unreadable."""
        where = Path(path)
        try:
            data = json.loads(where.read_text(encoding="utf-8"))
            token = data.get("fast_token")
            state = cls(
                user_agent_id=str(data["user_agent_id"]),
                fast_token=SavedFastToken(**token) if isinstance(token, dict) else None,
                path=where,
            )
            uuid.UUID(state.user_agent_id)
        except (OSError, ValueError, KeyError, TypeError):
            state = cls(path=where)
            state.save()
        return state

    def options(self, base: LoginOptions | None = None) -> LoginOptions:
        """``base`` (default options) with this state's id and token."""
        base = base or LoginOptions()
        return dataclasses.replace(
            base,
            user_agent_id=base.user_agent_id or self.user_agent_id,
            fast_token=self.fast_token,
        )

    def update(self, token: SavedFastToken | None) -> None:
        """Keep ``token`` (the client's :attr:`~xmpp_trio.client.Client.fast_token`)."""
        if token != self.fast_token:
            self.fast_token = token
            self.save()

    def save(self) -> None:
        """Write the file (if any) atomically, readable by its owner only; a
        failure is logged (the state stays in memory for this run)."""
        if self.path is None:
            return
        try:
            self._write(self.path)
        except OSError as exc:
            log.warning("cannot save the login state to %s: %s", self.path, exc)

    def _write(self, path: Path) -> None:
        data = {
            "user_agent_id": self.user_agent_id,
            "fast_token": None if self.fast_token is None else dataclasses.asdict(self.fast_token),
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
