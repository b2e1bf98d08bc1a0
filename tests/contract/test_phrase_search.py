"""The letter reader's fast phrase search (clinicletter.Phrases) must find exactly what the plain
compiled pattern finds: it only skips places where no phrase can start. Checked on random text
built from the lexicon's own words, their neighbours and awkward characters."""
from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from handlers.contract.reading import clinicletter as cl

LEX = cl.lexicon()
LISTS = [(section, key) for section, entries in LEX.raw.items() if isinstance(entries, dict)
         for key, words in entries.items() if isinstance(words, list) and words]
WORDS = sorted({w for section, key in LISTS for phrase in LEX.words(section, key) for w in phrase.split()})
GLUE = [" ", "  ", "\n", "\n\n", "-", "_", ".", ",", "(", ")", ":", "/", "\0", "İ", "ı", "ſ", "K", "ß", "é", "x", "7", "'", "\t"]


PHRASES = sorted({phrase for section, key in LISTS for phrase in LEX.words(section, key)})


def _piece():
    word = st.sampled_from(WORDS) | st.sampled_from(PHRASES)     # whole phrases, so matches happen
    cased = word.map(str.upper) | word.map(str.title) | word
    return cased | st.sampled_from(GLUE) | st.text(max_size=4)


TEXT = st.lists(_piece(), max_size=60).map("".join)


def _spans(it):
    return [(m.start(), m.end(), m.group(0)) for m in it]


def test_there_are_phrase_lists_to_check():
    assert len(LISTS) > 10 and len(WORDS) > 50
    # short first words (two letters) take their own path through the search
    assert any(len(p.split()[0]) == 2 for p in PHRASES)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(TEXT, st.sampled_from(LISTS))
def test_fast_search_finds_what_the_pattern_finds(text, where):
    phrases = LEX.rx(*where)
    assert _spans(phrases.finditer(text)) == _spans(phrases.rx.finditer(text))
    first = phrases.search(text)
    plain = phrases.rx.search(text)
    assert (first and first.span()) == (plain and plain.span())


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(TEXT, max_size=6), st.sampled_from(LISTS))
def test_each_text_is_judged_on_its_own(texts, where):
    phrases = LEX.rx(*where)
    assert phrases.in_each(texts) == [bool(phrases.rx.search(t)) for t in texts]


def _plain_keywords(text):
    """The date-role words as the plain patterns find them, merged the reader's way."""
    found = [(m.start(), m.end(), role) for role in cl.ROLE_ORDER
             for m in LEX.rx("date_roles", role).rx.finditer(text)]
    found.sort(key=lambda k: (k[0], -(k[1] - k[0])))
    out, last_end = [], -1
    for k in found:
        if k[0] >= last_end:
            out.append(k)
            last_end = max(last_end, k[1])
    return out


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(TEXT)
def test_date_role_words_are_found_as_the_patterns_find_them(text):
    assert cl._keywords(text, LEX) == _plain_keywords(text)
