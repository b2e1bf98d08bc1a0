"""Read inter-practice referrals (MSK joint injection) out of text as practices write them: a
secretary's form with her own labels, a GP's prose letter ("Could Kettlebrook Health Centre please
see Mrs Ellison, born 14/03/1952"), an Outlook table, an EMIS/SystmOne paste, a forwarded chain, the
text of a DOCX form (☒/☐ boxes) or PDF letter; one patient or several (numbered blocks, repeated
labels, or a table with a column per patient).

This reads and checks fields; it does not decide, store or send anything. Which practice is which is
for bot/reading/practices.py and the handler. Patient details stay in the returned objects, never in
logs. Label words live in catalogue/lexicon/referrals.toml.
"""
from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from handlers.contract import dates
from handlers.contract.letters import PatientFields
from handlers.contract.reading import forms, negation, patient

LEXICON = Path(__file__).resolve().parents[2] / "catalogue" / "lexicon" / "referrals.toml"
PATIENT_KEYS = ("patient_name", "dob", "nhs_number", "address", "telephone")
EXTRAS = ("anticoagulants", "allergies", "diabetes", "previous_injections")
CLINICAL_KEYS = ("registered_practice", "why_not_registered", "receiving_practice", "referring_practice",
                 "joint", "reason") + EXTRAS
POSTCODE = re.compile(r"\b[A-Z]{1,2}\d[A-Z\d]?\s*\d[A-Z]{2}\b")
ODS = re.compile(r"\(([A-Z]\d{5})\)|\b([A-Z]\d{5})\b")
PHONE = re.compile(r"(?<![\d+])(?:\+44\s?\(?0?\)?\s?|0)\d{2,4}[\s-]?\d{3,4}[\s-]?\d{3,4}(?!\d)")
SIGN_OFF = re.compile(r"^\s*(?:kind(?:est)?\s+regards|best\s+regards|warm\s+regards|regards|many\s+thanks|"
                      r"thanks(?:\s+(?:again|very much))?|thank\s+you|with\s+thanks|yours\s+(?:sincerely|faithfully)|"
                      r"best\s+wishes|with\s+best\s+wishes|cheers|best)\s*[,.!]?\s*$", re.I)
CHAIN_START = re.compile(r"^\s*(?:From:|-{2,}\s*Original Message|-{2,}\s*Forwarded|_{8,}|-{20,}|Begin forwarded)",
                         re.I)
_DISCLAIMER_START = re.compile(r"^\s*\*{10,}\s*$")
_DISCLAIMER_WORDS = re.compile(r"this (?:e-?mail|message) (?:and any attachments? )?(?:may contain|is confidential)|"
                               r"nhsmail is the secure|joiningnhsmail|intended recipient", re.I)


def _lexicon() -> dict:
    global _LEX_CACHE
    try:
        stamp = LEXICON.stat().st_mtime_ns
    except OSError:
        stamp = 0
    if _LEX_CACHE[0] != stamp:
        raw = tomllib.loads(LEXICON.read_text(encoding="utf-8")) if stamp else {}
        labels = {k: list(v) for k, v in raw.get("labels", {}).items()}
        joints = raw.get("joints", {}).get("words", [])
        clinical = raw.get("clinical", {}).get("words", [])
        own = raw.get("own_patient", {}).get("phrases", [])
        outcomes = raw.get("outcomes", {})
        _LEX_CACHE = (stamp, {
            "require_contact": bool(raw.get("requirements", {}).get("address_or_contact", False)),
            "labels": labels, "labelset": forms.LabelSet(labels),
            "joint": re.compile(r"\b((?:left|right|bilateral|both|l|r|lt|rt)\.?\s+)?(?:" + _alt(joints) +
                                r")(?:\s+joint)?\b", re.I),
            "clinical": re.compile(r"\b(?:" + _alt(clinical) + r")", re.I),
            "own": re.compile(r"\b(?:" + _alt(own) + r")\b", re.I),
            "outcomes": {k: re.compile(r"(?<![\w'])(?:" + _alt(v) + r")(?![\w'])", re.I) for k, v in outcomes.items()},
        })
    return _LEX_CACHE[1]


_LEX_CACHE: tuple = (None, {})


def _alt(words) -> str:
    return "|".join(r"\s+".join(re.escape(p) for p in w.split()) for w in sorted(set(words), key=len, reverse=True))


LABELS = {k: tuple(v) for k, v in tomllib.loads(LEXICON.read_text(encoding="utf-8"))["labels"].items()} \
    if LEXICON.exists() else {}


class Referral(PatientFields):
    """One patient's referral: fields as written (fields), what was assumed or read from prose (notes)."""

    def __init__(self, fields: dict | None = None, notes: dict | None = None):
        super().__init__(dict(fields or {}))
        self.notes: dict[str, str] = dict(notes or {})     # field -> how it was read ("from the prose", ...)

    def ods(self, key: str) -> str | None:
        m = ODS.search(self.get(key))
        return (m.group(1) or m.group(2)) if m else None

    @property
    def dob(self) -> date | None:
        return patient.parse_date(self.get("dob"), self.on, birth=True) if self.get("dob") else None

    on: date | None = None

    def problems(self, on: date) -> list[tuple[str, str]]:
        """What is missing or wrong, each with the fix, as (field, problem)."""
        self.on = on
        out = self.identity_problems(on)
        if self.dob and self.dob < on and age_on(self.dob, on) < 18:
            out.append(("date of birth", "the patient is under 18; this service is for adults only "
                                         "(18 or over on the referral date)."))
        if not self.get("patient_name"):
            out.append(("patient name", "is missing."))
        for key, what in (("joint", "joint or site"), ("reason", "clinical reason")):
            if not self.get(key):
                out.append((what, "is missing."))
        return out

    def contact_problems(self) -> list[tuple[str, str]]:
        """The receiving practice must be able to reach the patient: an address or a telephone number."""
        if self.get("address") or self.get("telephone") or not _lexicon()["require_contact"]:
            return []
        return [("address or contact number", "is missing. Add the patient's address or a telephone number "
                                              "the receiving practice can use to contact them.")]

    def extras(self) -> dict[str, str]:
        """Anticoagulants, allergies, diabetes, previous injections as the receiving practice should see
        them: a negation is a recorded No, never 'not stated'."""
        out = {}
        for k in EXTRAS:
            v = self.get(k)
            out[k] = negation.value(k, v).display() if v else "not stated"
        return out


def age_on(born: date, on: date) -> int:
    return patient.age_on(born, on)


# -- the text as a form ---------------------------------------------------------------------------------
def clean(text: str) -> str:
    """Confidentiality footers out (the rest of a forwarded chain kept), line ends plain, trailing
    blanks off; Word-table rows 'Label | value' as 'Label: value'."""
    lines = (text or "").replace("\r\n", "\n").replace("\u00a0", " ").split("\n")
    out, skip = [], 0
    for line in lines:
        if _DISCLAIMER_START.match(line):
            skip = 14                       # a footer follows the asterisks: up to its last line
            continue
        if skip:
            if CHAIN_START.match(line):
                skip = 0
            else:
                skip -= 1
                if "joiningnhsmail" in line.lower():
                    skip = 0
                continue
        if _DISCLAIMER_WORDS.search(line) and len(line) > 40:
            continue
        out.append(line.rstrip())
    text = "\n".join(out)
    # strip the common indent (Outlook's HTML-to-text indents everything)
    indents = [len(ln) - len(ln.lstrip()) for ln in out if ln.strip()]
    common = min(indents) if indents else 0
    if common:
        text = "\n".join(ln[common:] if ln[:common].strip() == "" else ln for ln in text.split("\n"))
    return text


def _columns(text: str, labelset) -> list[str] | None:
    """A table with a column per patient: 'Name: Mr A | Mrs B' / 'DOB: x | y' ... -> one text per column."""
    rows = []
    for n, line in enumerate(text.splitlines()):
        m = labelset.match_line(line)
        if m and "|" in m.group(2) and not re.search(r"[☐☒□■]", line):
            cells = [c.strip() for c in m.group(2).split("|")]
            rows.append((n, m.group(1), cells))
    if len(rows) < 3:
        return None
    width = max(len(c) for _, _, c in rows)
    keyed = [r for r in rows if len(r[2]) == width]
    keys = {labelset.key(lab) for _, lab, _ in keyed}
    if width < 2 or len(keyed) < 3 or not ({"nhs_number", "dob", "patient_name"} & keys):
        return None
    lines = text.splitlines()
    first, last = keyed[0][0], keyed[-1][0]
    head, tail = "\n".join(lines[:first]), "\n".join(lines[last + 1:])
    out = []
    for i in range(width):
        body = [f"{lab}: {cells[i]}" for _, lab, cells in keyed]
        out.append(head + "\n" + "\n".join(body) + "\n" + tail)
    return out


NUMBERED = re.compile(r"^\s*(?:\(?(\d{1,2})[.)]|patient\s*(\d{1,2})\s*[:.)\-–]?|#(\d{1,2}))\s+", re.I)


def _blocks(text: str, labelset) -> tuple[str, list[str], str]:
    """(before, one block per patient, after). A new patient starts at a numbered item ('1)', '2.',
    'Patient 2:') holding identity details, or where a patient label (name, NHS number, date of birth)
    is written a second time."""
    lines = text.splitlines()
    starts = []
    for n, line in enumerate(lines):
        if NUMBERED.match(line):
            window = "\n".join(lines[n:n + 3])
            if patient.nhs_numbers(window) or patient.dates_of_birth(window) or \
                    re.search(r"\b(?:DOB|NHS)\b", window, re.I):
                starts.append(n)
    if len(starts) < 2:
        starts = []
        seen: set[str] = set()
        first_identity = None
        found = sorted((f.line, k) for k, fs in labelset.find(text).items() for f in fs
                       if k in ("patient_name", "surname", "forename", "title", "nhs_number", "dob"))
        prev_line = -10
        for n, key in found:
            if key in ("forename", "title"):
                continue
            if first_identity is None:
                first_identity = n
            if key in seen:
                # the new block starts at the first of the identity labels just above this one
                back = n
                ids = {ln for ln, _ in found}
                while back - 1 in ids and back - 1 > prev_line:
                    back -= 1
                if not starts:
                    starts.append(first_identity)
                starts.append(back)
                seen = set()
            seen.add(key)
            prev_line = n
    if len(starts) < 2:
        return "", [text], ""
    # a block runs to the next start; the last one to the first paragraph break after its details
    before = "\n".join(lines[:starts[0]])
    blocks = ["\n".join(lines[a:b]) for a, b in zip(starts, starts[1:])]
    rest = lines[starts[-1]:]
    cut = len(rest)
    for i, line in enumerate(rest):
        if i > 0 and not line.strip():
            nxt = next((ln for ln in rest[i + 1:] if ln.strip()), "")
            if not labelset.match_line(nxt) and not re.match(r"^\s{2,}\S", nxt):
                cut = i
                break
    blocks.append("\n".join(rest[:cut]))
    return before, blocks, "\n".join(rest[cut:])


def _signature_spans(text: str) -> list[tuple[int, int]]:
    """Where the sender's sign-off and signature are: from a sign-off line to the next quoted header,
    separator or end."""
    spans, pos = [], 0
    lines = text.split("\n")
    offsets = []
    for ln in lines:
        offsets.append(pos)
        pos += len(ln) + 1
    i = 0
    while i < len(lines):
        if SIGN_OFF.match(lines[i]):
            j, kept = i + 1, 0
            while j < len(lines) and not CHAIN_START.match(lines[j]) and kept < 10:
                ln = lines[j].strip()
                if ln and (len(ln.split()) > 14 or _lexicon()["labelset"].match_line(lines[j])):
                    break
                kept += 1 if ln else 0
                j += 1
            spans.append((offsets[i], offsets[j] if j < len(lines) else len(text)))
            i = j
        i += 1
    return spans


def _in(spans, pos) -> bool:
    return any(a <= pos < b for a, b in spans)


def _patient_zone(text: str, labelled: dict) -> int:
    """Where the patient's details start: the paragraph of the first identity detail. A letterhead
    above it (the practice's own address and telephone) is not the patient's."""
    marks = []
    for key in ("patient_name", "surname", "nhs_number", "dob"):
        for f in labelled.get(key, []):
            marks.append(_line_offset(text, f.line))
    for c in patient.nhs_numbers(text):
        marks.append(c.start)
    for c in patient.dates_of_birth(text):
        marks.append(c.start)
    m = re.search(r"(?im)^\s*re\s*:", text)
    if m:
        marks.append(m.start())
    if not marks:
        return 0
    first = min(marks)
    para = max(text.rfind("\n\n", 0, first), text.rfind("\n \n", 0, first))
    line_start = text.rfind("\n", 0, first) + 1
    if para < 0 or text.count("\n", para, first) > 12:
        return line_start
    return para + 1


def _line_offset(text: str, n: int) -> int:
    pos = 0
    for _ in range(n):
        nxt = text.find("\n", pos)
        if nxt < 0:
            return len(text)
        pos = nxt + 1
    return pos


def _labelled(text: str, labelset) -> dict:
    return labelset.find(text)


def extract(text: str, on: date | None = None, subject: str = "") -> list[Referral]:
    """One Referral per patient found in text (empty when none is)."""
    lex = _lexicon()
    labelset = lex["labelset"]
    text = clean(text)
    columns = _columns(text, labelset)
    if columns:
        out = []
        for col in columns:
            out += extract(col, on, subject)[:1]
        return out
    before, blocks, after = _blocks(text, labelset)
    shared = before + "\n" + after
    shared_labels = _labelled(shared, labelset) if len(blocks) > 1 else {}
    out = []
    for block in blocks:
        r = _read_one(block if len(blocks) > 1 else text, on, subject if len(blocks) == 1 else "",
                      lex, labelset, context=shared if len(blocks) > 1 else "")
        for key in ("receiving_practice", "registered_practice", "referring_practice", "why_not_registered"):
            if not r.get(key) and shared_labels.get(key):
                r.fields[key] = shared_labels[key][0].value
        if any(r.get(k) for k in ("nhs_number", "dob", "patient_name")) or r.notes.get("nhs_label_empty"):
            out.append(r)
    return out


REGISTERED_INLINE = re.compile(
    r"\b(?i:registered\s+(?:here\s+)?(?:with|at)\s+(?:us\s+(?:at|as)\s+|ourselves\s+at\s+)?)(?!us\b|this\b|our\b)"
    r"((?:the\s+)?[A-Z][^\n.;]*?(?:\([A-Z]\d{5}\))?)\s*(?:[.;,]|\(since|\s+since\b|$)", re.M)
PRACTICE_LINE = re.compile(r"\b(?:surgery|practice|medical\s+centre|health\s+centre|hospital|ods|clinic|"
                           r"family\s+doctors|nhs\s+trust)\b", re.I)
HOUSE = re.compile(r"(?:(?:flat|apartment|apt|unit)\s+\w+,?\s+)?(?<![\d/.-])\b\d{1,4}[A-Za-z]?,?\s+[A-Z][^\n():]*?" +
                   POSTCODE.pattern, re.I)


def _without(text: str, spans) -> str:
    """text with the spans blanked (same length, so positions hold)."""
    chars = list(text)
    for a, b in spans:
        for i in range(a, min(b, len(chars))):
            if chars[i] != "\n":
                chars[i] = " "
    return "".join(chars)


def _value(labelled: dict, key: str, text: str, zone: int = 0, spans=()) -> str:
    for f in labelled.get(key, []):
        at = _line_offset(text, f.line)
        if key in ("address", "telephone") and at < zone:
            continue               # a letterhead's address or telephone: the practice's, not the patient's
        if _in(spans, at):
            continue
        if key in ("address", "telephone") and _practice_paragraph(text, at):
            continue
        v = f.value.strip().strip("|").strip()
        if v:
            return v
    return ""


def _practice_paragraph(text: str, at: int) -> bool:
    """Is the line at `at` in a letterhead or signature: a paragraph naming a practice and no patient?"""
    a = max(text.rfind("\n\n", 0, at), 0)
    b = text.find("\n\n", at)
    para = text[a:b if b >= 0 else len(text)]
    if len(para.splitlines()) > 8:
        lines = text[:at].count("\n")
        all_lines = text.splitlines()
        para = "\n".join(all_lines[max(0, lines - 3):lines + 2])
    return bool(PRACTICE_LINE.search(para)) and not patient.nhs_numbers(para) and not patient.dates_of_birth(para) \
        and not re.search(r"(?im)^\s*(?:patient|name|pt)\b", para)


def _read_one(text: str, on: date | None, subject: str, lex: dict, labelset, context: str = "") -> Referral:
    r = Referral()
    labelled = _labelled(text, labelset)
    spans = _signature_spans(text)
    zone = _patient_zone(text, labelled)
    body = _without(text, spans)                     # no signatures
    zone_text = " " * zone + body[zone:]

    # name
    name = _value(labelled, "patient_name", text)
    if name:
        name = _name_from_label(name)
    sur, fore = _value(labelled, "surname", text), _value(labelled, "forename", text)
    if sur and fore and not name:
        title = _value(labelled, "title", text)
        name = " ".join(x for x in (title, fore, sur) if x)
    if not name:
        for c in patient.patient_names(zone_text):
            if re.match(r"(?i)(?:dr|prof)\.?\s", c.name) and c.how not in ("label", "re_line", "surname_forename"):
                continue
            if re.search(r"\band\b", c.name):
                continue
            name = c.name
            r.notes["patient_name"] = "read from the letter"
            break
    if name:
        r.fields["patient_name"] = name

    # NHS number
    written = _value(labelled, "nhs_number", text)
    digits = re.sub(r"\D", "", written)
    if written and len(digits) >= 9:
        r.fields["nhs_number"] = written
    else:
        number = patient.nhs_number(zone_text) or patient.nhs_number(body)
        if number:
            r.fields["nhs_number"] = number
            r.notes["nhs_number"] = "read from the letter"
        else:
            bad = patient.invalid_nhs_numbers(zone_text)
            if bad:
                r.fields["nhs_number"] = bad[0].written
    if not r.get("nhs_number") and patient.nhs_label_empty(text):
        r.notes["nhs_label_empty"] = "yes"

    # date of birth
    dob = _value(labelled, "dob", text)
    if dob and patient.parse_date(dob, on, birth=True):
        r.fields["dob"] = dob
    else:
        found = patient.dates_of_birth(zone_text, on) or patient.dates_of_birth(body, on)
        good = [c for c in found if c.date]
        if good:
            r.fields["dob"] = good[0].written
        elif found or dob:
            r.fields["dob"] = dob or found[0].written
        else:
            bare = _bare_dob(zone_text, on)
            if bare:
                r.fields["dob"] = bare
                r.notes["dob"] = "an unlabelled date beside the patient's details"

    # address and telephone
    address = _value(labelled, "address", text, zone, spans)
    if address:
        address = _address_run_on(text, labelled, address, labelset)
    else:
        address = _inline_address(zone_text)
    if address:
        r.fields["address"] = address
    tel = _value(labelled, "telephone", text, zone, spans)
    if not tel:
        tel = _inline_phone(zone_text)
    if tel:
        r.fields["telephone"] = tel

    # practices, as written (the handler resolves them against the directory)
    for key in ("registered_practice", "receiving_practice", "referring_practice", "why_not_registered", "referrer"):
        v = _value(labelled, key, text)
        if v:
            r.fields[key] = v

    if not r.get("registered_practice"):
        m = REGISTERED_INLINE.search(body)
        if m and len(m.group(1).split()) <= 8:
            r.fields["registered_practice"] = m.group(1).strip(" ,.")
            r.notes["registered_practice"] = "read from the letter"

    # joint and reason
    joint = _value(labelled, "joint", text)
    reasons = [f.value.strip() for f in labelled.get("reason", []) if f.value.strip()]
    reason = " ".join(dict.fromkeys(reasons))
    prose = _prose(zone_text, labelset, lex)
    if not joint:
        joint = _joint(prose, lex) or _joint(reason, lex) or (_joint(subject, lex) if subject else "")
        if joint:
            r.notes["joint"] = "read from the letter"
    if joint:
        r.fields["joint"] = joint
    if not reason and prose:
        clinical = [p for p in prose if lex["clinical"].search(p) and len(p.split()) >= 8]
        if clinical:
            reason = max(clinical, key=len)
            r.notes["reason"] = "read from the letter"
    if reason:
        r.fields["reason"] = " ".join(reason.split())

    # extras: labelled as written; otherwise read from sentences (a negation is a No)
    said = negation.from_prose("\n".join(prose))
    for key in EXTRAS:
        v = _value(labelled, key, text)
        if v:
            r.fields[key] = v
        elif key in said:
            r.fields[key] = said[key].display()
            r.notes[key] = "read from the letter"
    return r


def _name_from_label(value: str) -> str:
    """'CLEGG, Desmond' -> 'Desmond CLEGG'; 'Mrs Judith FEATHERSTONE (Female)' -> 'Mrs Judith FEATHERSTONE'."""
    v = re.sub(r"\s*\((?:male|female|m|f)\)\s*", " ", value, flags=re.I).strip()
    names = patient.patient_names(f"Patient name: {v}")
    return names[0].name if names else v


def _bare_dob(text: str, on: date | None) -> str:
    """A date alone on a line in a patient block ('Mr Barry Cunliffe' / '21/03/1947' / '9996726630'),
    old enough to be a birth date."""
    for line in text.splitlines():
        s = line.strip()
        if not s or len(s) > 40:
            continue
        found = dates.find(s)
        if len(found) == 1 and found[0][1]:
            pos, d, written = found[0]
            rest = (s[:pos] + s[pos + len(written):]).strip(" ,()")
            if rest and not re.fullmatch(r"(?:aged?\s*)?\d{1,3}\s*(?:y|yrs?|years?)?(?:\s*old)?", rest, re.I):
                continue
            ref = on or date.today()
            if d.year <= ref.year - 1:
                return written
    return ""


def _address_run_on(text: str, labelled: dict, value: str, labelset) -> str:
    """A labelled address split over lines (PDF text): the lines below it up to the postcode."""
    if POSTCODE.search(value):
        return value
    lines = forms.normalise(text).splitlines()
    for f in labelled.get("address", []):
        if f.value.strip() != value:
            continue
        parts, j = [value], f.line + 1
        while j < len(lines) and j <= f.line + 5:
            ln = lines[j].strip()
            if not ln or labelset.is_label_line(lines[j]):
                break
            if ln != value:
                parts.append(ln)
            if POSTCODE.search(ln):
                return ", ".join(dict.fromkeys(parts))
            j += 1
    return value


def _inline_address(text: str) -> str:
    for line in text.splitlines():
        if not POSTCODE.search(line) or PRACTICE_LINE.search(line):
            continue
        hits = []
        for start in (m.start() for m in re.finditer(r"(?<![\d/.-])\b\d{1,4}[A-Za-z]?,?\s+[A-Z]|\b(?i:flat|apartment|apt|unit)\s", line)):
            m = HOUSE.match(line, start)
            if m and not re.match(r"\d{4}\b", line[start:]):
                hits.append(m)
        if hits:
            best = min(hits, key=lambda m: len(m.group(0)))
            return best.group(0).strip(" ,.")
        pc = POSTCODE.search(line)
        head = line[:pc.end()]
        cut = max(head.rfind("("), head.rfind(")"), head.rfind(":"), head.lower().rfind(" of "))
        if cut >= 0:
            tail = head[cut + 1:].strip(" ,.")
            tail = re.sub(r"^of\s+", "", tail, flags=re.I)
            if 2 <= len(tail.split()) <= 12:
                return tail
        # 'The Bothy, Chapel Lane, Wyke WQ3 1BL' alone on its line
        s = re.split(r"\s{2,}|\s(?:tel|mob|phone|home|mobile)\b", line.strip(), flags=re.I)[0]
        if s and len(s.split()) <= 12 and not re.search(r"\b(?:dob|nhs)\b", s, re.I):
            return s.strip(" ,.")
    return ""


def _inline_phone(text: str) -> str:
    for line in text.splitlines():
        if PRACTICE_LINE.search(line):
            continue
        m = PHONE.search(line)
        if m:
            return m.group(0).strip()
    return ""


def _prose(text: str, labelset, lex) -> list[str]:
    """The paragraphs (and long lines) of a letter that are not labels, headers, identity lines or
    quoted headers."""
    out = []
    for para in re.split(r"\n\s*\n", text):
        keep, skip_next = [], False
        for ln in para.splitlines():
            s = ln.strip()
            if skip_next:
                skip_next = False
                continue
            if labelset.match_alone(ln):
                skip_next = True            # a PDF label alone: its value is the next line
                continue
            if not s or labelset.match_line(ln) or re.match(r"(?i)^(?:from|sent|to|cc|subject|date)\s*:", s):
                continue
            if patient.nhs_numbers(s) and len(s.split()) < 25:
                continue                    # an identity line
            if POSTCODE.search(s) and len(s.split()) <= 8:
                continue                    # an address line
            keep.append(s)
        if keep:
            out.append(" ".join(keep))
    return out


def _joint(texts, lex) -> str:
    """The site to inject: a sided mention ('left knee') in a sentence about the injection first, then
    any sided mention, then any mention."""
    if isinstance(texts, str):
        texts = [texts]
    found = []
    for t in texts:
        for sent in re.split(r"(?<=[.!?])\s+", t or ""):
            for m in lex["joint"].finditer(sent):
                found.append((bool(m.group(1)), bool(re.search(r"inject", sent, re.I)), " ".join(m.group(0).split())))
    for want in ((True, True), (True, False), (False, True), (False, False)):
        for sided, inj, written in found:
            if (sided, inj) == want:
                return written
    return ""


# -- outcomes reported by the receiving practice --------------------------------
SEEN_CUE = re.compile(r"\b(seen|saw|consultation|attended|attend|appointment|reviewed|clinic|date|on|injected|"
                      r"given|examined)\b", re.I)
BIRTH_CUE = re.compile(r"\b(DOB|D\.O\.B|born|birth)\b\W*$", re.I)
DAY_MONTH = re.compile(r"(?<![\d/.-])(\d{1,2})[/.](\d{1,2})(?![\d/]|\.\d)")
RELATIVE = re.compile(r"\b(today|this morning|this afternoon|yesterday)\b", re.I)


@dataclass
class Outcome:
    kind: str | None          # injection, no_injection, did_not_attend
    seen_on: date | None
    seen_text: str = ""


def outcome_kind(text: str) -> str | None:
    """did_not_attend, no_injection or injection, from the words used (a DNA first; 'no injection
    given' is not 'injection given')."""
    rx = _lexicon()["outcomes"]
    if rx["did_not_attend"].search(text or ""):
        return "did_not_attend"
    if rx["no_injection"].search(text or ""):
        return "no_injection"
    if rx["injection"].search(text or ""):
        return "injection"
    return None


def seen_date(text: str, on: date | None = None) -> tuple[date | None, str]:
    """The date the patient was seen (or was due): a date after 'seen', 'attended', 'on', ...; a day
    and month without a year ('23/12') is the latest such date not after `on`; 'yesterday' / 'today'
    count from `on`. A date after 'DOB' / 'born' is never it."""
    text = text or ""
    found = [(p, d, w) for p, d, w in dates.find(text)]
    taken = [(p, p + len(w)) for p, _, w in found]
    if on:
        for m in DAY_MONTH.finditer(text):
            if any(a <= m.start() < b for a, b in taken):
                continue
            day, month = int(m.group(1)), int(m.group(2))
            for y in (on.year, on.year - 1):
                try:
                    d = date(y, month, day)
                except ValueError:
                    d = None
                    break
                if d <= on:
                    break
            if d:
                found.append((m.start(), d, m.group(0)))
    found.sort()
    seen, fallback = None, None
    for pos, d, written in found:
        if BIRTH_CUE.search(text[max(0, pos - 40):pos]) or d is None:
            continue
        if on and (on - d).days > 400:
            continue                  # a birth date or history, not this consultation
        if fallback is None:
            fallback = (d, written)
        if SEEN_CUE.search(text[max(0, pos - 60):pos]):
            seen = (d, written)
            break
    if seen is None and fallback:
        seen = fallback
    if seen is None and on:
        m = RELATIVE.search(text)
        if m:
            d = on if m.group(1).lower() != "yesterday" else date.fromordinal(on.toordinal() - 1)
            seen = (d, m.group(0))
    return seen if seen else (None, "")


def read_outcome(text: str, on: date | None = None) -> Outcome:
    """What the receiving practice says happened, and when."""
    d, written = seen_date(text, on)
    return Outcome(outcome_kind(text), d, written)


def _identifiers(name: str, nhs_number: str | None) -> list[re.Pattern]:
    out = []
    if nhs_number:
        out.append(re.compile(r"(?<!\d)" + r"[\s-]?".join(nhs_number) + r"(?!\d)"))
    words = [w for w in re.split(r"\s+", (name or "").strip()) if w]
    titles = [w for w in words if re.fullmatch(r"(?i)(?:mr|mrs|miss|ms|mx|dr|master)\.?", w)]
    rest = [w for w in words if w not in titles]
    if rest:
        surname = re.escape(rest[-1])
        if titles:
            out.append(re.compile(r"\b" + re.escape(titles[0].rstrip(".")) + r"\.?\s+(?:[A-Z][\w'-]*\s+){0,2}" +
                                  surname + r"\b", re.I))
        if len(rest) > 1:
            out.append(re.compile(r"\b" + re.escape(rest[0]) + r"\s+(?:[A-Z][\w'-]*\s+){0,1}" + surname + r"\b", re.I))
            out.append(re.compile(r"\b" + surname + r"\s*,\s*" + re.escape(rest[0]) + r"\b", re.I))
    return out


def read_outcomes(text: str, people: list[tuple], on: date | None = None) -> dict:
    """Outcomes for several patients written in one message (a table, a line each, 'Mr X - injected').
    people: [(key, name, nhs_number)]. Each line belongs to the one patient it names (and the lines after
    it); lines naming none or several are shared. Returns {key: Outcome} for the patients mentioned (or the
    only one)."""
    text = text or ""
    if len(people) == 1:
        key = people[0][0]
        return {key: read_outcome(text, on)}
    ids = {key: _identifiers(name, nhs) for key, name, nhs in people}
    owned: dict = {key: [] for key, _, _ in people}
    shared, current = [], None
    couple = re.compile(r"\b(?:mr|mrs|ms|miss)\s+(?:and|&)\s+(?:mr|mrs|ms|miss)\s+([A-Z][\w'-]+)", re.I)
    for line in text.splitlines():
        named = [k for k, rxs in ids.items() if any(rx.search(line) for rx in rxs)]
        c = couple.search(line)
        if c:
            named += [k for k, name, _ in people if c.group(1).lower() in (name or "").lower().split()
                      or c.group(1).lower() in (name or "").lower()]
            named = list(dict.fromkeys(named))
        if len(named) == 1:
            current = named[0]
            owned[current].append(line)
        elif named:
            current = None
            shared.append(line)
        elif current is not None and line.strip():
            owned[current].append(line)
        else:
            if not line.strip():
                current = None if current is None else current
            shared.append(line)
    common = "\n".join(shared)
    out = {}
    for key, lines in owned.items():
        if not lines:
            continue
        mine = "\n".join(lines)
        kind = outcome_kind(mine) or outcome_kind(common)
        d, written = seen_date(mine, on)
        if d is None:
            d, written = seen_date(common, on)
        out[key] = Outcome(kind, d, written)
    return out
