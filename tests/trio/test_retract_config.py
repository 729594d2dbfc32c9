"""``[mam] retract_window`` (XEP-0424 retractions, docs/mam.md "Retraction"):
loaded with its default, checked, named in errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from xmpp_trio.config import ConfigError, load_config


def test_the_retract_window_loads_with_its_default(tmp_path: Path) -> None:
    assert load_config(None).mam.retract_window == 100
    path = tmp_path / "xmpp.toml"
    path.write_text("[mam]\nretract_window = 7\n")
    assert load_config(path).mam.retract_window == 7


@pytest.mark.parametrize("value", ["0", "10001", '"many"'])
def test_a_bad_retract_window_names_the_key(tmp_path: Path, value: str) -> None:
    path = tmp_path / "xmpp.toml"
    path.write_text(f"[mam]\nretract_window = {value}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.key == "mam.retract_window"
