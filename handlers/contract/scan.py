"""A pattern's finditer, found faster where the places a match can begin are known.

Mail-agnostic: text in, matches out.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Iterator


def matches_at(rx: re.Pattern, text: str, places: Iterable[int]) -> Iterator[re.Match]:
    """rx.finditer(text), when every match begins at one of `places` (in ascending order): rx is
    tried only there, and not inside the last match, as finditer would skip it."""
    end = 0
    for i in places:
        if i < end:
            continue
        m = rx.match(text, i)
        if m:
            yield m
            end = m.end()
