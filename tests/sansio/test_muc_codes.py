"""Each status code issue 14 lists is asserted on the wire by some MUC test:
this reads the MUC test files and collects the codes passed to their
``assert_status`` calls."""

from __future__ import annotations

import ast
from pathlib import Path

from xmpp_sansio.server.muc import codes

TESTS = Path(__file__).resolve().parents[1]
LISTED = {100, 101, 104, 110, 170, 171, 172, 173, 174, 201, 210, 301, 303, 307, 321, 322, 332, 333}
#: Listed but never sent, and why (docs/muc.md says so too).
NOT_SENT = {174: "fully-anonymous rooms are not offered: whois is 'moderators' or 'anyone'"}


def asserted_codes() -> set[int]:
    found: set[int] = set()
    for path in sorted(TESTS.glob("*/test_muc*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not (
                isinstance(node, ast.Call) and getattr(node.func, "id", None) == "assert_status"
            ):
                continue
            for arg in node.args[1:]:
                if isinstance(arg, ast.Constant) and isinstance(arg.value, int):
                    found.add(arg.value)
                elif (
                    isinstance(arg, ast.Attribute)
                    and isinstance(arg.value, ast.Name)
                    and arg.value.id == "codes"
                ):
                    found.add(getattr(codes, arg.attr))
    return found


def test_every_listed_status_code_is_asserted_by_a_test() -> None:
    assert LISTED - set(NOT_SENT) <= asserted_codes()


def test_the_codes_not_sent_are_used_nowhere_in_the_service() -> None:
    package = Path(codes.__file__).parent
    for path in package.glob("*.py"):
        if path.name != "codes.py":
            assert "NOW_FULLY_ANONYMOUS" not in path.read_text(), path
