"""Reading the configuration file's TOML: typed values with precise errors.

Shared by :mod:`xmpp_trio.config` and the modules of its sections
(``http_config``, ``pubsub_config``, ``muc_config``).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TypeAlias, cast

__all__ = ["ConfigError", "Loader", "Table", "toml_type"]


class ConfigError(Exception):
    """The configuration is invalid; ``str()`` explains what is wrong and where.

    ``path`` is the configuration file (None for built-in defaults) and ``key``
    the dotted key that is wrong (None when the problem is the whole file).
    """

    def __init__(self, message: str, *, path: Path | None = None, key: str | None = None) -> None:
        self.path = path
        self.key = key
        self.reason = message
        where = str(path) if path is not None else "configuration"
        if key is not None:
            where = f"{where}: {key}"
        super().__init__(f"{where}: {message}")


Table: TypeAlias = Mapping[str, object]


def toml_type(value: object) -> str:
    """Name ``value``'s type the way TOML does, for error messages."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a float"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return f"a {type(value).__name__}"


class Loader:
    """Reads typed values out of the parsed TOML, raising precise ConfigErrors."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.base = path.parent

    def error(self, key: str | None, message: str) -> ConfigError:
        return ConfigError(message, path=self.path, key=key)

    def check_keys(self, table: Table, valid: Iterable[str], prefix: str, section: str) -> None:
        """Reject keys of ``table`` not in ``valid``; ``prefix`` is the dotted key prefix."""
        names = sorted(valid)
        for key in table:
            if key not in names:
                hint = difflib.get_close_matches(key, names, n=1)
                did_you_mean = f" (did you mean {hint[0]!r}?)" if hint else ""
                raise self.error(
                    f"{prefix}{key}",
                    f"unknown key {key!r}{did_you_mean}; valid keys {section} are: "
                    + ", ".join(names),
                )

    def table(self, parent: Table, key: str, name: str) -> Table:
        value = parent.get(key, {})
        if not isinstance(value, dict):
            raise self.error(name, f"must be a table ([{name}]), got {toml_type(value)}")
        return cast(Table, value)

    def boolean(self, table: Table, key: str, name: str, default: bool) -> bool:
        value = table.get(key, default)
        if not isinstance(value, bool):
            raise self.error(name, f"must be true or false, got {toml_type(value)} ({value!r})")
        return value

    def integer(
        self, table: Table, key: str, name: str, default: int, *, minimum: int, maximum: int
    ) -> int:
        value = table.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(name, f"must be an integer, got {toml_type(value)} ({value!r})")
        if not minimum <= value <= maximum:
            raise self.error(name, f"must be between {minimum} and {maximum}, got {value}")
        return value

    def number(self, table: Table, key: str, name: str, default: float) -> float:
        value = table.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.error(name, f"must be a number, got {toml_type(value)} ({value!r})")
        if not 0 < value < float("inf"):
            raise self.error(name, f"must be a positive number of seconds, got {value}")
        return float(value)

    def string(self, table: Table, key: str, name: str, default: str) -> str:
        value = table.get(key, default)
        if not isinstance(value, str):
            raise self.error(name, f"must be a string, got {toml_type(value)} ({value!r})")
        return value

    def path_value(self, table: Table, key: str, name: str) -> Path | None:
        if key not in table:
            return None
        value = table[key]
        if not isinstance(value, str) or not value:
            raise self.error(
                name, f"must be a non-empty string (a file path), got {toml_type(value)}"
            )
        path = Path(value).expanduser()
        return path if path.is_absolute() else self.base / path
