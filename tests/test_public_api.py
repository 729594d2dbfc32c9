"""Both packages export their public API from ``__init__.py`` with ``__all__``."""

from __future__ import annotations

import importlib
import inspect

import pytest


@pytest.mark.parametrize("package", ["xmpp_sansio", "xmpp_trio", "xmpp_sansio.client"])
def test_every_exported_name_exists_once_and_is_the_defining_modules_object(package: str) -> None:
    module = importlib.import_module(package)
    exported = module.__all__
    assert len(exported) == len(set(exported))
    for name in exported:
        value = getattr(module, name)
        home = getattr(value, "__module__", None)
        if (home is not None and inspect.isclass(value)) or inspect.isfunction(value):
            # Re-exported, not redefined: the object its own module holds.
            assert getattr(importlib.import_module(value.__module__), name) is value


def test_the_documented_imports_work() -> None:
    from xmpp_sansio import JID, ClientConnection, ClientServices, MessageObject
    from xmpp_trio import Bot, IMClient, open_client, open_persistent_client, run_server

    assert JID.parse("juliet@example.com").local == "juliet"
    assert all(
        callable(x)
        for x in (ClientConnection, ClientServices, MessageObject, Bot, IMClient, run_server)
    )
    assert inspect.isfunction(open_client) and inspect.isfunction(open_persistent_client)


def test_the_sans_io_api_pulls_in_no_io_module() -> None:
    import subprocess
    import sys

    code = (
        "import sys, xmpp_sansio; "
        "bad = {'trio', 'ssl', 'asyncio', 'sqlite3', 'xmpp_trio'} & set(sys.modules); "
        "print(sorted(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
