"""Bounded fuzzing of the XML stream parser, collected by pytest.

The invariant: whatever bytes arrive, in whatever chunks, the parser only ever
raises :class:`XMLStreamError`, its events form a stream, it enforces its
limits, and once broken it stays broken (see ``parser_target.check``).
``FUZZ_EXAMPLES`` (default 300) sets the number of examples per test.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from parser_target import TOKENS, check, seeds, split

from xmpp_sansio.xml.element import Element, canonical
from xmpp_sansio.xml.parser import StreamEnd, StreamHeader, XMLStreamError

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "300"))
SEEDS = seeds()
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=5000,  # a hang fails the example instead of stalling the run
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
CUTS = st.lists(st.integers(min_value=0, max_value=1 << 16), max_size=16)


def key(ev: StreamHeader | Element | StreamEnd) -> object:
    return canonical(ev) if isinstance(ev, Element) else ev


@st.composite
def mutated_seeds(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 8))):
        op = draw(st.sampled_from(["insert", "delete", "flip", "token", "duplicate", "truncate"]))
        pos = draw(st.integers(0, len(data)))
        if op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete":
            del data[pos : pos + draw(st.integers(1, 16))]
        elif op == "flip" and pos < len(data):
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "token":
            data[pos:pos] = draw(st.sampled_from(TOKENS))
        elif op == "duplicate":
            data[pos:pos] = data[pos : pos + draw(st.integers(1, 64))]
        elif op == "truncate":
            del data[pos:]
    return bytes(data)


def test_seed_corpus_is_present() -> None:
    assert len(SEEDS) >= 10


@pytest.mark.parametrize("hold", [False, True], ids=["fast", "hold"])
def test_every_seed_parses_the_same_whole_and_byte_by_byte(hold: bool) -> None:
    for seed in SEEDS:
        whole = check([seed], hold=hold)
        single = check(split(seed, range(len(seed))), hold=hold)
        if isinstance(whole, XMLStreamError):
            assert isinstance(single, XMLStreamError)
            assert single.condition == whole.condition
        else:
            assert not isinstance(single, XMLStreamError), single
            assert [key(e) for e in single] == [key(e) for e in whole]


@FUZZ
@given(st.binary(max_size=2048), CUTS, st.booleans())
def test_fuzz_arbitrary_bytes_only_raise_xml_stream_error(
    data: bytes, cuts: list[int], hold: bool
) -> None:
    check(split(data, cuts), hold=hold)


@FUZZ
@given(mutated_seeds(), CUTS, st.booleans())
def test_fuzz_mutated_seeds_only_raise_xml_stream_error(
    data: bytes, cuts: list[int], hold: bool
) -> None:
    check(split(data, cuts), hold=hold)


@FUZZ
@given(st.sampled_from(SEEDS), CUTS, st.booleans())
def test_fuzz_chunking_of_a_seed_does_not_change_its_events(
    seed: bytes, cuts: list[int], hold: bool
) -> None:
    reference = check([seed], hold=False)
    out = check(split(seed, cuts), hold=hold)
    if isinstance(reference, XMLStreamError):
        assert isinstance(out, XMLStreamError)
        assert out.condition == reference.condition
    else:
        assert not isinstance(out, XMLStreamError), out
        assert [key(e) for e in out] == [key(e) for e in reference]


@FUZZ
@given(
    st.lists(st.sampled_from(TOKENS) | st.binary(max_size=6), max_size=40),
    CUTS,
    st.booleans(),
)
def test_fuzz_token_soup_only_raises_xml_stream_error(
    parts: list[bytes], cuts: list[int], hold: bool
) -> None:
    check(split(b"".join(parts), cuts), hold=hold)


@FUZZ
@given(mutated_seeds() | st.sampled_from(SEEDS), CUTS, st.booleans())
def test_fuzz_compacting_between_chunks_changes_no_outcome(
    data: bytes, cuts: list[int], hold: bool
) -> None:
    """StreamParser.compact() between any two chunks: the same events, or the
    same error, as without it."""
    chunks = split(data, cuts)
    reference = check(chunks, hold=hold)
    out = check(chunks, hold=hold, compact=True)
    if isinstance(reference, XMLStreamError):
        assert isinstance(out, XMLStreamError), out
        assert out.condition == reference.condition
    else:
        assert not isinstance(out, XMLStreamError), out
        assert [key(e) for e in out] == [key(e) for e in reference]
