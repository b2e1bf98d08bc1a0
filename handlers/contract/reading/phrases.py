"""The letter lexicon (catalogue/lexicon/letters.toml) and its phrase lists, compiled to search fast.

A phrase list is an alternation of many literal phrases: slow to try at every position of a
letter, so the search tries it only where one of the phrases' first words is written. Shared by
every part of the letter reader (dates, sections, the patient block, practices named).
"""
from __future__ import annotations

import bisect
import re
from dataclasses import dataclass
from functools import lru_cache

from handlers.contract.reading.lexicon import derived
from handlers.contract.scan import matches_at


# ı and ſ: re.IGNORECASE matches them with i and s, but lower() leaves them as they are
ODD_CASE = re.compile("[\u0131\u017f]")


def lowered(text: str) -> str | None:
    """text.lower(), to find where a case-blind pattern can start with str.find; None when that
    would miss a place: a character whose lower case is longer (positions move), or ı / ſ."""
    low = text.lower()
    if len(low) != len(text) or (not text.isascii() and ODD_CASE.search(text)):
        return None
    return low


def _alt(words) -> str:
    """A regex alternation of phrases, longest first; a space matches any white space."""
    return _alt_of(tuple(words))


@lru_cache(maxsize=None)
def _alt_of(words: tuple) -> str:
    return "|".join(r"\s+".join(re.escape(p) for p in w.split()) for w in sorted(set(words), key=len, reverse=True))


@dataclass(frozen=True)
class Lexicon:
    raw: dict

    def words(self, section: str, key: str) -> list[str]:
        return list(self.raw.get(section, {}).get(key, []))

    def rx(self, section: str, key: str, flags=re.I) -> "Phrases":
        return _compiled(self, section, key, flags)


class Phrases:
    """A compiled alternation of lexicon phrases that searches fast: a pattern of many literal
    branches is slow to try at every position of a letter, so `search` and `finditer` try it
    only where one of the phrases' first words starts (found with str.find). Same results as
    the pattern's own; anything else (sub, split, .pattern …) goes to the pattern."""

    def __init__(self, pattern: re.Pattern, words):
        self.rx = pattern
        self.hints = tuple({w.split()[0].lower() for w in words if w.split()})

    def __getattr__(self, name):
        return getattr(self.rx, name)

    def finditer(self, text, *args):
        if args:
            return self.rx.finditer(text, *args)
        return _matches(self.rx, text, lowered(text), self.hints)

    def search(self, text, *args):
        if args:
            return self.rx.search(text, *args)
        return next(iter(self.finditer(text)), None)

    def in_each(self, texts) -> list[bool]:
        """[bool(self.search(t)) for t in texts], in one pass: the texts are joined with NULs
        (a phrase is words and white space, so no match runs over one, and at a NUL the
        pattern's word-boundary look-arounds see what they see at a text's ends)."""
        texts = list(texts)
        starts, at = [], 0
        for t in texts:
            starts.append(at)
            at += len(t) + 1
        hit = [False] * len(texts)
        for m in self.finditer("\0".join(texts)):
            hit[bisect.bisect_right(starts, m.start()) - 1] = True
        return hit

    def each(self, texts) -> list:
        """The texts that hold a phrase (see in_each)."""
        texts = list(texts)
        return [t for t, h in zip(texts, self.in_each(texts)) if h]


@lru_cache(maxsize=None)
def _compiled(lex: Lexicon, section: str, key: str, flags) -> "Phrases":
    words = lex.words(section, key)
    rx = re.compile(r"(?<![\w-])(?:" + _alt(words) + r")(?![\w])", flags) if words else re.compile(r"(?!)")
    return Phrases(rx, words)


def lexicon() -> Lexicon:
    """The lexicon, re-read when the file changes (editable without code)."""
    return derived("letters", _build)


def _build(raw: dict) -> "Lexicon":
    return Lexicon(_Frozen(raw))


class _Frozen(dict):
    """A dict usable as part of a cache key (the lexicon is read-only once loaded)."""

    def __hash__(self):
        return id(self)


_STARTS: dict[tuple[str, tuple[str, ...]], list[int]] = {}


@lru_cache(maxsize=64)
def _automaton(hints: tuple[str, ...]):
    """All the hints found in one pass over a text (Aho-Corasick, in C): for a long list this
    beats a str.find per hint several times over; for a short one str.find is quicker."""
    import ahocorasick
    a = ahocorasick.Automaton()
    for h in hints:
        a.add_word(h, h)
    a.make_automaton()
    return a


def _places(lowered: str, hints: tuple[str, ...]) -> dict[str, list[int]]:
    """Where each hint is written in the (lower-case) text."""
    out: dict[str, list[int]] = {}
    if len(hints) >= 20:
        for end, h in _automaton(hints).iter(lowered):
            out.setdefault(h, []).append(end - len(h) + 1)
        return out
    for h in hints:
        i = lowered.find(h)
        while i >= 0:
            out.setdefault(h, []).append(i)
            i = lowered.find(h, i + 1)
    return out


def _starts(lowered: str, hints: tuple[str, ...]) -> list[int]:
    """Where any of the hints is written in the (lower-case) text, in order. Remembered for the
    last few texts: readers try the same phrase list on the same letter more than once."""
    key = (lowered, hints)
    hit = _STARTS.get(key)
    if hit is None:
        if len(_STARTS) >= 256:
            _STARTS.clear()
        hit = _STARTS[key] = sorted({i for places in _places(lowered, hints).values() for i in places})
    return hit


def _matches(rx: re.Pattern, text: str, lowered: str | None, hints: tuple[str, ...], starts=None):
    """rx.finditer(text), found faster: the pattern (an alternation of many phrases, slow to try
    at every position) is tried only where one of its phrases' first words starts."""
    if lowered is None:
        return rx.finditer(text)
    places = _starts(lowered, hints) if starts is None else starts
    # not inside a word: the pattern's look-behind would refuse it there
    return matches_at(rx, text, (i for i in places
                                 if not (i and (lowered[i - 1].isalnum() or lowered[i - 1] in "_-"))))
