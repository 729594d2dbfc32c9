"""XEP-0363 slot requests sans I/O (xmpp_sansio/server/upload.py): the
signature, its expiry and what it covers; the slot answer and its record."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from xmpp_sansio.server.upload import sign, verify

KEY = b"k" * 32
SLOT = "0123456789abcdef0123456789abcdef"


def test_a_signature_is_valid_until_it_expires() -> None:
    signature = sign(KEY, SLOT, "a.txt", 5, "text/plain", 1000)
    assert verify(KEY, SLOT, "a.txt", 5, "text/plain", 1000, signature, 999.9)
    assert not verify(KEY, SLOT, "a.txt", 5, "text/plain", 1000, signature, 1000.0)


def test_the_signature_covers_slot_name_size_type_expiry_and_key() -> None:
    signature = sign(KEY, SLOT, "a.txt", 5, "text/plain", 1000)
    for changed in (
        (KEY, SLOT[:-1] + "0", "a.txt", 5, "text/plain", 1000),
        (KEY, SLOT, "b.txt", 5, "text/plain", 1000),
        (KEY, SLOT, "a.txt", 6, "text/plain", 1000),
        (KEY, SLOT, "a.txt", 5, "text/html", 1000),
        (KEY, SLOT, "a.txt", 5, "text/plain", 2000),
        (b"x" * 32, SLOT, "a.txt", 5, "text/plain", 1000),
    ):
        assert not verify(*changed, signature, 0.0)  # type: ignore[misc]


@given(st.text(max_size=40))
def test_a_slot_that_is_not_32_hex_digits_never_verifies(slot: str) -> None:
    signature = sign(KEY, slot, "a", 1, "t/t", 10)
    assert verify(KEY, slot, "a", 1, "t/t", 10, signature, 0.0) == (
        len(slot) == 32 and all(c in "0123456789abcdef" for c in slot)
    )
