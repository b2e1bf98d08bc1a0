"""The registered practice a GP wrote, found in the directory however it was written."""
from __future__ import annotations

import re

from handlers import casework
from handlers.contract.reading import forms
from store.directory import orgs_of_kinds

_ABBREV = forms.load_lexicon("imsk")["practice_abbreviations"]
_GENERIC = set(forms.load_lexicon("imsk")["practice_generic"]["words"])


def resolve_practice(conn, value: str) -> str | None:
    """The one directory practice a written value names: ODS code, full name or postcode, then the
    name with its short forms written out ('Pendle Moss MC'), then its distinctive words."""
    code = casework.practice_from(conn, value)
    if code:
        return code
    words = re.findall(r"[a-z0-9]+", value.lower().replace("'", ""))
    expanded = " ".join(_ABBREV.get(w, w) for w in words)
    code = casework.practice_from(conn, expanded)
    if code:
        return code
    have = set(expanded.split())
    hits = []
    for row in orgs_of_kinds(conn, ("practice",)):
        distinct = {w for w in re.findall(r"[a-z0-9]+", row["name"].lower().replace("'", "")) if w not in _GENERIC}
        if distinct and distinct <= have:
            hits.append(row["ods_code"])
    if len(hits) == 1:
        return hits[0]
    try:                             # the shared practice reader: fuzzy names ('Pendel Moss Med Ctr')
        from handlers.contract.reading import practices
        found = practices.match_name(value, casework.directory(conn))
    except Exception:                # not there yet, or a directory it cannot read: ask instead
        return None
    if len(found) == 1 or (len(found) > 1 and found[0][1] >= 90 and found[0][1] - found[1][1] >= 10):
        return found[0][0]
    return None
