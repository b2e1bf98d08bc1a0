"""Reading clinical letters and forms: labels, sections, the organisations they name.

Letters come as typed bodies, Outlook HTML turned to text, or PDF/DOCX text, in
which a label often sits on its own line with the value on the next. Patient
details stay in what these functions return; nothing here logs.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date

from handlers.contract import dates
from handlers.contract import nhs
from handlers.contract.reading.clinicletter import ods_codes_in

POSTCODE = re.compile(r"\b([A-Z]{1,2}\d[A-Z\d]?\s*\d[A-Z]{2})\b")
ADDRESS_LINE = re.compile(r"^\s*(?:from|to|cc|sent|date|subject)\s*:", re.I)
FROM_LINE = re.compile(r"^\s*From:\s*(.*?)<?([\w.+'-]+@[\w-]+(?:\.[\w-]+)+)>?\s*$", re.I | re.M)
TO_LINE = re.compile(r"^\s*To:\s*(.*?)<?([\w.+'-]+@[\w-]+(?:\.[\w-]+)+)>?\s*$", re.I | re.M)


class Labels:
    """The ways people write each field's label, as the regexes that find them."""

    def __init__(self, labels: dict[str, tuple[str, ...]]):
        self.pairs = sorted(((lab, key) for key, labs in labels.items() for lab in labs), key=lambda x: -len(x[0]))
        alternatives = "|".join(re.escape(lab) for lab, _ in self.pairs)
        self.only = re.compile(alternatives, re.I)
        self.line = re.compile(r"^\s*(?:[-•*·]\s*)?(" + alternatives + r")\s*[:\-–|\t]\s*(.+?)\s*$", re.I)

    def key(self, written: str) -> str:
        return next(k for lab, k in self.pairs if lab == written.lower())


@dataclass
class PatientFields:
    """Fields read from a form or letter, as written; the NHS number and date of birth read from them."""
    fields: dict[str, str] = field(default_factory=dict)

    def get(self, key: str) -> str:
        return self.fields.get(key, "")

    @property
    def nhs_number(self) -> str | None:
        return nhs.normalise(self.get("nhs_number"))

    @property
    def dob(self) -> date | None:
        return dates.parse(self.get("dob"))

    def identity_problems(self, on: date) -> list[tuple[str, str]]:
        """The NHS number (Modulus 11) and date of birth, each problem with its fix."""
        out = []
        if not self.get("nhs_number"):
            out.append(("NHS number", "is missing. Add the patient's 10-digit NHS number."))
        elif self.nhs_number is None:
            out.append(("NHS number", "is not 10 digits. Check it against the patient's record."))
        elif not nhs.is_valid(self.nhs_number):
            out.append(("NHS number", f"{nhs.display(self.nhs_number)} fails the NHS number check digit: two "
                                      "digits may be swapped. Check it against the patient's record."))
        if not self.get("dob"):
            out.append(("date of birth", "is missing (DD/MM/YYYY)."))
        elif self.dob is None or self.dob >= on:
            out.append(("date of birth", f"'{self.get('dob')}' is not a real date in the past (DD/MM/YYYY)."))
        return out


def join_label_lines(text: str, label_re: re.Pattern) -> str:
    """'Date of birth' / '09/12/1949' on two lines (as PDF text has it) -> 'Date of birth: 09/12/1949'."""
    lines = (text or "").splitlines()
    out, i = [], 0
    while i < len(lines):
        line = lines[i]
        bare = line.strip().rstrip(":").strip()
        if bare and label_re.fullmatch(bare) and i + 1 < len(lines):
            nxt = lines[i + 1].strip()
            labelled = re.match(r"(?:" + label_re.pattern + r")\s*[:\-–]", nxt, label_re.flags)
            if nxt and not labelled and not label_re.fullmatch(nxt.rstrip(":").strip()):
                out.append(f"{bare}: {nxt}")
                i += 2
                continue
        out.append(line)
        i += 1
    return "\n".join(out)


def section(text: str, heading: str, headings: list[str], max_lines: int = 40) -> str:
    """The lines under a heading (a line that starts with it) up to the next known heading."""
    lines = (text or "").splitlines()
    start = None
    head = re.compile(r"^\s*(?:\d+[.)]\s*)?(?:" + heading + r")\b[^\n]*$", re.I)
    for n, line in enumerate(lines):
        if head.match(line) and len(line.strip()) <= 80:
            start = n
            break
    if start is None:
        return ""
    stop = re.compile(r"^\s*(?:\d+[.)]\s*)?(?:" + "|".join(h for h in headings if h != heading) + r")\b",
                      re.I)
    first = lines[start]
    # "Diagnosis: osteoporosis" keeps what follows the heading on its own line
    rest = re.sub(r"^\s*(?:\d+[.)]\s*)?(?:" + heading + r")\s*[:\-–]?\s*", "", first, flags=re.I)
    body = [rest] if rest.strip() else []
    for line in lines[start + 1:start + 1 + max_lines]:
        if stop.match(line) and len(line.strip()) <= 80:
            break
        if re.match(r"^\s*(yours sincerely|yours faithfully|kind regards|best wishes)\b", line, re.I):
            break
        body.append(line)
    return "\n".join(body).strip()


def words(text: str) -> int:
    return len(re.findall(r"[A-Za-z]{2,}", text or ""))


@dataclass
class Quoted:
    """Who an earlier message in a forwarded chain was from and to."""
    from_addr: str = ""
    to_addr: str = ""


def forwarded(text: str) -> Quoted:
    """The first 'From: … <addr>' header block quoted in a body (Outlook's forward/reply)."""
    q = Quoted()
    m = FROM_LINE.search(text or "")
    if m:
        q.from_addr = m.group(2).lower()
        t = TO_LINE.search(text, m.end())
        if t and t.start() - m.end() < 400:
            q.to_addr = t.group(2).lower()
    return q


def _norm(name: str) -> str:
    name = name.lower().replace("&", " and ")
    name = re.sub(r"[^a-z0-9 ]+", " ", name)
    return " ".join(w for w in name.split() if w not in ("the", "nhs"))


def compared(rows) -> list[tuple[str, str, set]]:
    """(code, name as compared, postcodes) per directory row (ods_code, name, postcodes)."""
    return [(r["ods_code"], f" {_norm(r['name'])} ",
             {p.replace(" ", "") for p in (r["postcodes"] or "").split(";") if p}) for r in rows]


def named_in(orgs: list[tuple[str, str, set]], text: str) -> list[str]:
    """ODS codes of the organisations (as `compared` gives them) the text names: by code, full
    name or postcode. Codes written in the text first, then the others in `orgs` order."""
    index = _index_of(orgs)
    found = [c for c in dict.fromkeys(ods_codes_in(text or "")) if c in index.codes]
    flat = " " + _norm(text or "") + " "
    hits: set[int] = set()
    if index.codes:
        for _, rows in index.names.iter(flat):        # every name that is a substring of flat
            hits.update(rows)
    for m in POSTCODE.findall((text or "").upper()):
        hits.update(index.postcodes.get(m.replace(" ", ""), ()))
    for i in sorted(hits):
        if orgs[i][0] not in found:
            found.append(orgs[i][0])
    return found


@dataclass
class _Index:
    codes: set
    names: object                     # ahocorasick.Automaton: " name " -> rows (positions in orgs)
    postcodes: dict                   # postcode without spaces -> rows


_INDEXES: dict[int, tuple[list, _Index]] = {}


def _index_of(orgs: list) -> _Index:
    """One pass over the text for all names, instead of a substring test per organisation. Built
    once per list (casework keeps one list per directory version); keyed by identity, the list
    kept with it so that its id cannot be reused."""
    hit = _INDEXES.get(id(orgs))
    if hit is not None and hit[0] is orgs:
        return hit[1]
    import ahocorasick
    names = ahocorasick.Automaton()
    postcodes: dict[str, list[int]] = {}
    for i, (_, name, theirs) in enumerate(orgs):
        if name in names:
            names.get(name).append(i)
        else:
            names.add_word(name, [i])
        for pc in theirs:
            postcodes.setdefault(pc, []).append(i)
    names.make_automaton()
    index = _Index({c for c, _, _ in orgs}, names, postcodes)
    if len(_INDEXES) >= 8:
        _INDEXES.clear()
    _INDEXES[id(orgs)] = (orgs, index)
    return index
