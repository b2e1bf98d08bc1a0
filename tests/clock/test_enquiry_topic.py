"""The enquiry topic's shortcut (topics none of whose first words are in the text are skipped)
gives the same topic as searching every topic's words."""
from __future__ import annotations

import re

from hypothesis import given, settings, strategies as st

from handlers.contract.reading import lexicon
from handlers.enquiry.handler import _build, topic


def topic_by_full_search(text: str) -> str:
    topics, _ = lexicon.derived("enquiry", _build)
    low = text.lower()
    best, best_n = "", 0
    for lab, pattern, _firsts in topics:
        n = len(set(pattern.findall(low)))
        if n > best_n:
            best, best_n = lab, n
    return best


def lexicon_words() -> list[str]:
    topics, _ = lexicon.derived("enquiry", _build)
    words = []
    for _lab, pattern, _firsts in topics:
        words += re.sub(r"^\(\?<!\\w\)\(\?:|\)\(\?!\\w\)$", "", pattern.pattern).replace("\\", "").split("|")
    return words


WORDS = lexicon_words()
PIECES = st.sampled_from(WORDS + ["Dear", "team", "thanks", "?", "-", "\n", "not", "been", "x", "2026", "Re:"])


@settings(max_examples=300, deadline=None)
@given(st.lists(PIECES, max_size=25), st.lists(st.sampled_from([" ", "", ",", ".", "\n", "-"]), max_size=25))
def test_the_shortcut_never_changes_the_topic(pieces, glue):
    text = "".join(p + (glue[i] if i < len(glue) else " ") for i, p in enumerate(pieces))
    assert topic(text) == topic_by_full_search(text)


def test_topics_are_found():
    assert len(WORDS) > 20
    assert topic("When is the next payment run? We have not been paid") == "payment"
    assert topic("Kind regards") == ""


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(list("aeiorstnjcdu KIĴ-\n") + ["Return", "AUDIT", "Inject", "ſ", "jOInt"]),
                max_size=30))
def test_could_say_never_hides_a_case_blind_match(pieces):
    text = "".join(pieces)
    import re
    from handlers.base import could_say
    for words in (("inject", "steroid", "joint"), ("return", "audit")):
        rx = re.compile("|".join(words), re.I)
        if rx.search(text):
            assert could_say(text, *words)
