"""benchmarks/mam_floor.py (issue 17): its hand-made ``<stanza-id/>`` is the
one the archive service stamps (so what it counts is what the server
writes), and every mode it measures runs."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import mam_floor  # noqa: E402

from xmpp_sansio.jid import JID  # noqa: E402
from xmpp_sansio.server.mam.service import SID  # noqa: E402
from xmpp_sansio.xml.ns import CLIENT  # noqa: E402
from xmpp_sansio.xml.writer import serialize  # noqa: E402


def test_the_hand_made_stamp_is_written_as_the_archive_service_writes_its_own(
    tmp_path: Path,
) -> None:
    mam, ctx = mam_floor.archiving(tmp_path)
    ctx.begin(None)
    stamped = mam_floor.message("hello")
    out = mam.transform(ctx, stamped, JID.parse("a@localhost/r"), JID.parse("b@localhost/r"))
    assert isinstance(out, tuple)  # Appended: the <stanza-id/> to add
    stamped.extend(out)
    theirs = stamped.find(SID)
    assert theirs is not None
    sid, by = theirs.get("id"), theirs.get("by")
    assert sid and by == "b@localhost"

    mine = mam_floor.message("hello")
    mam_floor.make_stamp(mine, sid, by, mam_floor.stamp_attrs(sid, by))

    written = serialize(mine, CLIENT)
    assert written == serialize(stamped, CLIENT)
    assert re.search(
        rb'<stanza-id xmlns="urn:xmpp:sid:0" id="[0-9a-f]+" by="b@localhost"/>', written
    )
    assert type(mine[-1]) is type(stamped[-1])  # the same path through the writer


@pytest.mark.parametrize("mode", mam_floor.MODES)
def test_every_mode_the_floor_counts_runs(mode: str, tmp_path: Path) -> None:
    mam_floor.setup(mode, tmp_path)(3)
