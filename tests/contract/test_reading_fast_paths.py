"""The reading layer's fast paths (issue 10, speed) must give exactly what the plain code gave:
  - letters.named_in (one Aho-Corasick pass over the text) == a substring test per organisation;
  - outcome_reading.outcome_kind (patterns tried only where a phrase's first word is) == plain search;
  - practices.find_in_text (words no name can start skipped, fuzzy scores and roles remembered) ==
    the plain reading, on a fresh directory and on one that has read other texts first;
  - dates.digit_led_matches (a date pattern tried only where a run of digits begins) == its finditer;
  - letterpatient.nhs_labels (the label pattern tried only where 'nhs' is written) == its finditer.
Checked on random text built from the words involved, their neighbours and awkward characters
(letters whose case-folding is not ASCII: 'ſ' folds to 's', 'K' to 'k', 'İ' lower-cases to two)."""
from __future__ import annotations

import re
import string

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from handlers.contract import dates, letters
from handlers.contract.reading import practices
from handlers.contract.reading.letterdates import SHORT_DATE, SHORT_DATE_START
from handlers.contract.reading.practicewords import lexicon as practice_words
from handlers.referrals import outcome_reading
from handlers.referrals.lexicon import lexicon as referral_words

GLUE = [" ", "  ", "\n", "\n\n", "-", "_", ".", ",", "(", ")", ":", "/", "'", "’", "&", "\t", "ſ", "K", "İ",
        "ß", "é", "x", "7", "☒ ", "☐ ", "[x] ", "12 "]
SLOW = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _cased(words):
    w = st.sampled_from(sorted(words))
    return w | w.map(str.upper) | w.map(str.title)


def _text(words, size=40):
    piece = _cased(words) | st.sampled_from(GLUE) | st.text(max_size=3)
    return st.lists(piece, max_size=size).map("".join)


# -- named_in -----------------------------------------------------------------------------------------
NAMES = ["Wyke Bridge Medical Practice", "The Wyke Bridge Surgery", "St. Ebba's Surgery", "Hollins & Green HC",
         "NHS The", "Marram Dunes Health Centre", "Practice 1", "Practice 12", "Practice 12", "Old Chapel"]
POSTCODES = ["WQ4 6WC", "AM3 8PA", "AM38PA", "ZZ1 1ZZ"]


def _plain_named_in(orgs, text):
    """named_in as it was: a substring test per organisation."""
    codes = {c for c, _, _ in orgs}
    found = [c for c in dict.fromkeys(letters.ods_codes_in(text or "")) if c in codes]
    flat = " " + letters._norm(text or "") + " "
    postcodes = {m.replace(" ", "") for m in letters.POSTCODE.findall((text or "").upper())}
    for code, name, theirs in orgs:
        if code not in found and (name in flat or postcodes & theirs):
            found.append(code)
    return found


ORG = st.tuples(st.sampled_from(NAMES) | st.text(max_size=12),
                st.lists(st.sampled_from(POSTCODES), max_size=2).map(";".join))
NAME_WORDS = {w for n in NAMES for w in re.split(r"\W+", n) if w} | {"Y90001", "Y90002", "Z98101"} | set(POSTCODES)


@settings(max_examples=400, **SLOW)
@given(st.lists(ORG, max_size=8), st.lists(_text(NAME_WORDS, 25), min_size=1, max_size=4))
def test_named_in_finds_what_a_test_per_organisation_finds(rows, texts):
    orgs = letters.compared([{"ods_code": f"Y9000{i}", "name": name, "postcodes": pcs}
                             for i, (name, pcs) in enumerate(rows)])
    for text in texts:          # the same list again: its index is reused
        assert letters.named_in(orgs, text) == _plain_named_in(orgs, text)


def test_named_in_by_code_name_and_postcode():
    orgs = letters.compared([{"ods_code": "Y90001", "name": "Practice 1", "postcodes": "AM3 8PA"},
                             {"ods_code": "Y90012", "name": "Practice 12", "postcodes": ""},
                             {"ods_code": "Y90002", "name": "The Wyke Bridge Surgery", "postcodes": ""}])
    assert letters.named_in(orgs, "Registered: Practice 12 (Y90012)") == ["Y90012"]
    assert letters.named_in(orgs, "seen at wyke bridge surgery, then AM3 8PA; Y90002") == ["Y90002", "Y90001"]
    assert letters.named_in(orgs, "Practice 123") == []
    assert letters.named_in([], "Practice 1") == []


# -- outcome_kind ---------------------------------------------------------------------------------------
def _outcome_phrases():
    from handlers.referrals.lexicon import LEXICON
    import tomllib
    raw = tomllib.loads(LEXICON.read_text(encoding="utf-8"))
    return sorted({p for ps in raw.get("outcomes", {}).values() for p in ps})


PHRASES = _outcome_phrases()
OUTCOME_WORDS = set(PHRASES) | {w for p in PHRASES for w in p.split()} | {"given", "no", "not", "seen", "injection"}


def _plain_outcome_kind(text):
    rx = referral_words()["outcomes"]
    for kind in ("did_not_attend", "no_injection", "injection"):
        if rx[kind].search(text or ""):
            return kind
    return None


def test_there_are_outcome_phrases_to_check():
    assert len(PHRASES) > 20 and all(referral_words()["outcome_hints"].values())


@settings(max_examples=600, **SLOW)
@given(_text(OUTCOME_WORDS, 30))
def test_outcome_kind_is_the_plain_search(text):
    assert outcome_reading.outcome_kind(text) == _plain_outcome_kind(text)


def test_outcome_kind_cases():
    assert outcome_reading.outcome_kind("Seen today, no injection given.") == "no_injection"
    assert outcome_reading.outcome_kind("Knee injected 3/11.") == "injection"
    assert outcome_reading.outcome_kind("non-injected; DNA'd twice") == "did_not_attend"
    assert outcome_reading.outcome_kind("uninjected") is None
    assert outcome_reading.outcome_kind("ſeen, INJECTION GIVEN") == "injection"        # not ASCII: plain search
    assert outcome_reading.outcome_kind("") is None and outcome_reading.outcome_kind(None) is None


# -- find_in_text -----------------------------------------------------------------------------------------
def _directory():
    rows = [("Z98101", "Meresfield Medical Centre"), ("Z98102", "Ashdown Vale Surgery"),
            ("Z98103", "Kettlebrook Health Centre"), ("Z98105", "Fallowcombe Surgery"),
            ("Y90001", "Practice 1"), ("Y90012", "Practice 12"), ("Y90003", "Wyke Bridge Medical Practice"),
            ("Y90004", "St. Ebba's Surgery"), ("Y99801", "Highmere Hospital")]
    return practices.Directory([{"ods_code": c, "name": n, "kind": "hospital" if "Hospital" in n else "practice",
                                 "emails": [f"{c.lower()}@nhs.net"]} for c, n in rows])


def _plain_role_in(window):
    rx = practice_words()["role_rx"]
    best, at = None, -1
    for role in ("history", "referring", "registered", "receiving"):
        for m in rx[role].finditer(window):
            if m.start() > at or (m.start() == at and role != "receiving"):
                best, at = role, m.start()
    return best


def _plain_find_in_text(text, directory, kinds=("practice",), fuzzy=True):
    """find_in_text as it was before its fast paths (every word tried, every fuzzy window scored)."""
    from rapidfuzz import fuzz, process
    import bisect
    text = text or ""
    out = []
    wanted = directory.codes(kinds)
    for m in re.finditer(r"\b([A-Z][A-Z0-9]{2,5})\b", text):
        if m.group(1) in wanted and re.search(r"\d", m.group(1)):
            out.append(practices.Mention(m.group(1), "ods", m.group(1), m.start()))
    for m in practices.EMAIL.finditer(text):
        p = directory.by_email(m.group(0))
        if p and p.ods_code in wanted:
            out.append(practices.Mention(p.ods_code, "email", m.group(0), m.start()))
    toks = [(part, m.start(), m.end()) for m in practices._TOKEN.finditer(text)
            for part in practices._norm(m.group(0)).split()]
    words = [t[0] for t in toks]
    generic = practice_words()["generic"]
    exact_idx, sizes, fuzzy_idx = directory.name_index(kinds)
    fuzzy_sizes = sorted({n for _, n in fuzzy_idx}) if fuzzy else []

    def suffixed(j):
        follow = " ".join(words[j:j + 3])
        return any(follow == g or follow.startswith(g + " ") for g in generic)

    def candidates(i, word):
        for n in sizes.get(word, ()):
            for cand in exact_idx.get(" ".join(words[i:i + n]), ()):
                yield cand, 100.0
        for n in fuzzy_sizes:
            bucket = fuzzy_idx.get((word[:1], n))
            if not bucket or i + n > len(words):
                continue
            window = " ".join(words[i:i + n])
            if window in exact_idx:
                continue
            cutoff = 86 if n > 1 else 90
            a = len(window)
            lengths, forms, cands = bucket
            lo = bisect.bisect_left(lengths, a * cutoff / (200 - cutoff))
            hi = bisect.bisect_right(lengths, a * (200 - cutoff) // cutoff)
            if lo >= hi:
                continue
            hits = process.extract(window, forms[lo:hi], scorer=fuzz.ratio, score_cutoff=cutoff, limit=None)
            for _, score, k in sorted(hits, key=lambda h: h[2]):
                yield cands[lo + k], score

    for i, word in enumerate(words):
        for (code, form, n, is_core), score in candidates(i, word):
            if code not in wanted:
                continue
            exact = score == 100.0 and " ".join(words[i:i + n]) == form
            start, end = toks[i][1], toks[i + n - 1][2]
            if practices._street(text, start, end):
                continue
            if is_core and not suffixed(i + n):
                if n < 2 or practices._capital(text, start) is False:
                    continue
                score -= 10
            out.append(practices.Mention(code, "name" if exact else "fuzzy", text[start:end], start, score=score))
    out = practices._dedupe(out)
    for mention in out:
        if mention.start >= 0:
            mention.role = _plain_role_at(text, mention.start)
    return _plain_ticks(text, out)


def _plain_role_at(text, start):
    line_start = text.rfind("\n", 0, start) + 1
    window = text[max(line_start, start - 80):start]
    cut = max(window.rfind(". "), window.rfind("; "), window.rfind("? "))
    if cut >= 0:
        window = window[cut + 2:]
    role = _plain_role_in(window)
    if role is None and line_start == start or (role is None and not window.strip()):
        prev_end = line_start - 1
        prev_start = text.rfind("\n", 0, max(prev_end, 0)) + 1
        prev = text[prev_start:max(prev_end, prev_start)]
        if prev.strip().endswith(":") and len(prev.strip()) < 60:
            role = _plain_role_in(prev)
    return role


def _plain_ticks(text, found):
    out = []
    for m in found:
        line_start = text.rfind("\n", 0, m.start) + 1
        box = re.search(r"([" + practices.TICKED + practices.UNTICKED + r"]|\[\s*[xX✓✔*]?\s*\])\s*$",
                        text[line_start:m.start])
        if box:
            b = box.group(1)
            if b in practices.UNTICKED or re.fullmatch(r"\[\s*\]", b):
                continue
            m.how = "ticked"
            line_end = text.find("\n", m.start)
            m.role = _plain_role_in(text[line_start:line_end if line_end >= 0 else len(text)]) or "receiving"
        out.append(m)
    return out


PRACTICE_WORDS = {w for n in ["Meresfield Medical Centre", "Meresfeild Medical Center", "Ashdown Vale Surgery",
                              "Kettlebrook Health Centre", "Kettlebrook HC", "Fallowcombe Surgery", "Practice 1",
                              "Practice 12", "Practise 12", "Wyke Bridge Medical Practice", "St Ebbas", "Highmere",
                              "Hospital", "Z98101", "Y90012", "y90003@nhs.net", "z98102@nhs.net", "patient",
                              "previous", "address", "Primary Care Centre", "Medical Group", "Wyke Bridge", "Family Doctors"]
                  for w in n.split()} | {"refer to", "registered with", "Receiving practice:", "previously at",
                                         "Dear", "seen at", "Road", "Address:"}
SHARED = _directory()          # reads every example: its remembered scores and roles must not leak


def _view(found):
    return [(m.ods_code, m.how, m.written, m.start, m.role, m.score) for m in found]


@settings(max_examples=400, **SLOW)
@given(_text(PRACTICE_WORDS, 40), st.booleans())
def test_find_in_text_is_the_plain_reading(text, fuzzy):
    plain = _view(_plain_find_in_text(text, _directory(), fuzzy=fuzzy))
    assert _view(practices.find_in_text(text, _directory(), fuzzy=fuzzy)) == plain
    assert _view(practices.find_in_text(text, SHARED, fuzzy=fuzzy)) == plain


def test_find_in_text_cases():
    d = _directory()
    text = "Referring practice: Practice 1 (Y90001)\nReceiving practice: Practise 12\nPreviously at Kettlebrook HC."
    assert _view(practices.find_in_text(text, d)) == _view(_plain_find_in_text(text, d))
    assert {(m.ods_code, m.role) for m in practices.find_in_text(text, d)} >= {
        ("Y90001", "referring"), ("Y90012", "receiving"), ("Z98103", "history")}


# -- dates: tried only where a run of digits begins -----------------------------------------------------
DATE_BITS = ["14/03/1948", "14.03.48", "2026-11-05", "3rd", "of", "Sept", "March", "nov.", "2026", "48", "7",
             "123456", "/", ".", "-", ",", " ", "\n", "a", "x7", "٣", "１２", "ſ", "é", "–"]


@settings(max_examples=600, **SLOW)
@given(st.lists(st.sampled_from(DATE_BITS) | st.text(alphabet=string.digits + "/.- stnd", max_size=4), max_size=30)
       .map("".join))
def test_digit_led_matches_are_the_patterns_own(text):
    for rx, start in ((dates.DATE_RE, dates.DATE_START), (SHORT_DATE, SHORT_DATE_START)):
        want = [m.span() for m in rx.finditer(text)]
        assert [m.span() for m in dates.digit_led_matches(text, rx, start)] == want


NUMBER_BITS = ["999 148 7166", "999-148-7166", "999.148.7166", "9991487166", "01632 960000", "+44", "£", ".", ",",
               "/", "-", " ", "\u00a0", "\n", "x", "12", "٣", "１２", "é"]


@settings(max_examples=600, **SLOW)
@given(st.lists(st.sampled_from(NUMBER_BITS) | st.text(alphabet=string.digits + " .-", max_size=5), max_size=20)
       .map("".join))
def test_nhs_number_patterns_tried_at_runs_of_digits_are_their_own(text):
    from handlers.contract import nhs
    from handlers.contract.reading import patient
    for rx in (nhs.SEPARATED, patient._GROUPED):
        want = [m.span() for m in rx.finditer(text)]
        assert [m.span() for m in dates.digit_led_matches(text, rx, None)] == want
    assert [m.span() for m in nhs.separated(text)] == [m.span() for m in nhs.SEPARATED.finditer(text)]


def test_digit_runs():
    assert dates.digit_runs("a12 b/3 45x") == (1, 6, 8)
    assert dates.digit_runs("12") == (0,)
    assert dates.digit_runs("é 1–2") == (2, 4)            # other characters keep their places
    assert dates.digit_runs("born ٣/١/١٩٤٨") is None       # a digit outside ASCII: the pattern's own scan


# -- the NHS number label: tried only where "nhs" is written ------------------------------------------------
NHS_BITS = ["NHS", "nhs", "Nhs", "NHſ", "nhſ", "NHS No", "NHS number:", "NHS#", "NHS:", " ", "\n", "\t", "-", ":",
            "999 148 7166", "9991487166", "x", "ı", "İ", "é", "no.", "|", "–"]


@settings(max_examples=500, **SLOW)
@given(st.lists(st.sampled_from(NHS_BITS) | st.text(max_size=3), max_size=25).map("".join))
def test_nhs_labels_are_the_patterns_own(text):
    from handlers.contract.reading import letterpatient
    want = [(m.span(), m.group(1)) for m in letterpatient.NHS_LABEL.finditer(text)]
    assert [(m.span(), m.group(1)) for m in letterpatient.nhs_labels(text)] == want
