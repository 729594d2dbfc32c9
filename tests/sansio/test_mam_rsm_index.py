"""RSM ``<index/>`` in MAM queries (XEP-0059 §2.5): a page by position in
the query's set, the first item's ``index`` and the set's ``count`` in
``<fin/>``, an empty complete page past the end, and the errors for a bad
index or one given with ``after``/``before``."""

from __future__ import annotations

from test_mam import JULIET, NURSE, RSM, World, error, fin, form, results, rsm


def test_a_page_starts_at_the_index_with_count_and_first_index() -> None:
    w = World()
    for i in range(5):
        w.chat(f"m{i}")
    answers = w.query(JULIET, rsm(max="2", index="2"))
    assert results(answers) == ["m2", "m3"]
    done = fin(answers)
    assert done.get("complete") is None
    assert done.find(f"{RSM}set/{RSM}first").get("index") == "2"
    assert done.findtext(f"{RSM}set/{RSM}count") == "5"
    last = w.query(JULIET, rsm(max="2", index="4"))
    assert results(last) == ["m4"] and fin(last).get("complete") == "true"
    past = w.query(JULIET, rsm(max="2", index="9"))
    assert results(past) == [] and fin(past).get("complete") == "true"
    assert fin(past).findtext(f"{RSM}set/{RSM}count") == "5"
    huge = w.query(JULIET, rsm(max="2", index="9" * 40))
    assert results(huge) == [] and fin(huge).get("complete") == "true"


def test_the_index_counts_within_the_filtered_set() -> None:
    w = World()
    for i in range(4):
        w.chat(f"r{i}")
        w.chat(f"n{i}", frm=NURSE)
    answers = w.query(JULIET, form(with_="nurse@example.com") + rsm(max="2", index="1"))
    assert results(answers) == ["n1", "n2"]
    assert fin(answers).findtext(f"{RSM}set/{RSM}count") == "4"


def test_a_bad_index_or_one_with_after_or_before_is_bad_request() -> None:
    w = World()
    w.chat("x")
    assert error(w.query(JULIET, rsm(max="1", index="-1"))) == "bad-request"
    assert error(w.query(JULIET, rsm(max="1", index="0", after="x"))) == "bad-request"
    assert error(w.query(JULIET, rsm(max="1", index="0", before="<empty>"))) == "bad-request"
