"""Run the server stream fuzz target over its seeds (fast; see
``server_stream_target`` and ``atheris_server_stream.py``)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import server_stream_target as target

from xmpp_sansio.stream.connection import State

SEEDS = sorted(target.CORPUS.glob("*.xml"))
KNOWN_BUG = "bad_header_after_success.xml"  # once sent an error without a header


def test_there_are_seeds() -> None:
    assert len(SEEDS) >= 10


@pytest.mark.parametrize("path", SEEDS, ids=lambda p: p.name)
def test_seed(path: Path) -> None:
    target.check(path.read_bytes(), strict=True)


def test_stream_error_after_sasl_restart_comes_with_a_new_header() -> None:
    """RFC 6120 §4.9.1.1: an error right after <success/> opens the new stream first."""
    target.check((target.CORPUS / KNOWN_BUG).read_bytes(), strict=True)


def test_seeds_are_current() -> None:
    for name, stream in target.seed_inputs().items():
        assert (target.CORPUS / name).read_bytes() == b"\x00" + stream, name


@pytest.mark.parametrize(
    ("name", "state"),
    [
        ("scram_full.xml", State.CLOSED),
        ("plain.xml", State.CLOSED),
        ("registration.xml", State.CLOSED),
        ("sm_resume.xml", State.READY),
    ],
)
def test_valid_seeds_negotiate(name: str, state: State) -> None:
    outcome = target.check((target.CORPUS / name).read_bytes())
    assert outcome.error is None
    assert outcome.server.state is state
    assert outcome.server.jid is not None


def test_any_chunking_of_the_full_negotiation_is_the_same() -> None:
    stream = (target.CORPUS / "scram_full.xml").read_bytes()[1:]
    whole = target.check(b"\x00" + stream)
    for step in (1, 7, 64):
        cuts = list(range(step, len(stream), step))[:8]
        head = bytes([len(cuts)]) + b"".join(c.to_bytes(2, "big") for c in cuts)
        chunked = target.check(head + stream)
        assert chunked.output == whole.output
        assert chunked.server.state is whole.server.state
