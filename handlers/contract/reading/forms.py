"""Forms as people fill them in, read into labelled values.

A referral or application reaches us as typed "Label: value" lines, a Word table
("Label | value"), an Outlook table turned into text ("Label      value", with the
value sometimes running on over indented lines), a PDF where the label sits on one
line and the answer on the next, numbered headings copied from a specification
("1. Name of applicant" with the answer below), and tick boxes (☒/☐, [x]/[ ],
Word check-box fields). This module turns all of that into candidates per field;
what a value *means* (a date, a practice, yes/no) is for the reader that asked.

The label words are data (catalogue/lexicon/<area>.toml): add a spelling there.
Mail-agnostic: no SQL, no sending, nothing logged (values may identify a patient).
"""
from __future__ import annotations

import io
import re
from dataclasses import dataclass

from handlers.contract.reading import lexicon


def load_lexicon(name: str) -> dict:
    """catalogue/lexicon/<name>.toml (bot/reading/lexicon.py: re-read when the file changes)."""
    return lexicon.load(name)


# -- tick boxes --------------------------------------------------------------------------------
TICKED = "☒☑✔✓■▣⊠✗✘"
UNTICKED = "☐□▢◻"
_BOX = re.compile(r"[" + TICKED + UNTICKED + r"]|\[\s*[xX✓✔*]?\s*\]|\(\s*[xX✓✔*]?\s*\)(?=\s*[A-Za-z])")


def _is_ticked(box: str) -> bool:
    if box in TICKED:
        return True
    if box in UNTICKED:
        return False
    return bool(re.search(r"[xX✓✔*]", box))


def ticked(value: str) -> list[str] | None:
    """The options ticked in a run of tick boxes: '☐ Physiotherapy ☒ Orthopaedics' -> ['Orthopaedics'],
    '[x] Yes [ ] No' -> ['Yes']; [] when boxes are there but none is ticked; None when there are no boxes."""
    boxes = list(_BOX.finditer(value or ""))
    if not boxes:
        return None
    out = []
    for i, m in enumerate(boxes):
        end = boxes[i + 1].start() if i + 1 < len(boxes) else len(value)
        option = value[m.end():end].strip(" \t|,;/")
        if _is_ticked(m.group(0)) and option:
            out.append(option)
    return out


def untick(text: str) -> str:
    """Each line with tick boxes keeps only what is ticked: 'Urgency | ☐ Urgent ☒ Routine' ->
    'Urgency | Routine' (an unticked choice never reads as an answer)."""
    if not _BOX.search(text or ""):
        return text or ""
    out = []
    for line in text.splitlines():
        m = _BOX.search(line)
        if m:
            chosen = ticked(line[m.start():])
            line = line[:m.start()].rstrip() + (" " + ", ".join(chosen) if chosen else "")
        out.append(line)
    return "\n".join(out)


# -- whole-text clean-up -----------------------------------------------------------------------
_DISCLAIMER = re.compile(
    r"^\s*\*{10,}\s*$|^\s*(?:this (?:e-?mail|message) (?:and any attachments? )?(?:may contain|is confidential|contains)"
    r"|nhsmail is the secure|disclaimer:)", re.I | re.M)


def strip_disclaimer(text: str) -> str:
    """The text up to a confidentiality footer (a line of asterisks or 'This message may contain ...')."""
    m = _DISCLAIMER.search(text or "")
    return (text[:m.start()] if m else text or "").rstrip()


def normalise(text: str) -> str:
    """Tick boxes resolved, Word table cells 'Label | value' as 'Label: value', non-breaking spaces plain."""
    text = untick((text or "").replace("\u00a0", " ").replace("\r\n", "\n"))
    # a two-cell table row: "Label | value" (more cells are left alone)
    return re.sub(r"^([^|\n]{1,80}?)\s+\|\s+([^|\n]*)$", r"\1: \2", text, flags=re.M)


# -- labelled fields ---------------------------------------------------------------------------
_LEAD_SPACE = re.compile(r"[ \t>]*")                                  # LabelSet's lead, in two parts
_LEAD_MARK = re.compile(r"[-•*·]\s*|\d{1,2}[.)]\s+|\(?[a-z]\)\s+", re.I)
_SEP = r"(?:\s*\([^)\n]{0,40}\))?\s*\??\s*(?:[:=|\t]\s*|\s[-–]\s*|[-–]\s+|\s{2,}|\?\s+)"


@dataclass(frozen=True)
class Found:
    value: str
    line: int          # where in the (normalised) text it was found: for the reader to echo


class LabelSet:
    """The labels of each field (as written in the lexicon), compiled once."""

    def __init__(self, labels: dict[str, list[str]]):
        self.pairs = sorted(((lab.lower(), key) for key, labs in labels.items() for lab in labs),
                            key=lambda p: -len(p[0]))
        self.line, self.alone = self._patterns([lab for lab, _ in self.pairs])
        self.keys = dict(self.pairs)
        # what a label can start with: the patterns try every label at a line's start (case-
        # insensitive, so sre cannot reject a branch by its first letter); three letters tell
        # which few labels can be there, and most lines start with none
        self._starts = {lab[:3] for lab, _ in self.pairs if len(lab) >= 3}
        self._short = tuple(lab for lab, _ in self.pairs if len(lab) < 3)

        self._narrowed: dict[frozenset, tuple] = {}
        self._by_line: dict[str, tuple | None] = {}
        self._found: dict[str, dict[str, list[Found]]] = {}

    @staticmethod
    def _patterns(labs: list[str]) -> tuple[re.Pattern, re.Pattern]:
        alt = "|".join(re.escape(lab) for lab in labs) or "(?!)"
        lead = r"^[ \t>]*(?:[-•*·]\s*|\d{1,2}[.)]\s+|\(?[a-z]\)\s+)?"
        return (re.compile(lead + r"(" + alt + r")" + _SEP + r"(\S.*?)\s*$", re.I),
                re.compile(lead + r"(" + alt + r")(?:\s*\([^)\n]{0,40}\))?\s*[:?]?\s*$", re.I))

    def key(self, written: str) -> str:
        return self.keys[written.lower()]

    def _for(self, line: str) -> tuple[re.Pattern, re.Pattern] | None:
        """The (line, alone) patterns narrowed to the labels that can start this line where the
        lead puts them (same order, so the same match), or None when none can."""
        # a letter's lines are looked at by several readers: remember the last few thousand
        try:
            return self._by_line[line]
        except KeyError:
            pass
        if len(self._by_line) > 4096:
            self._by_line.clear()
        hit = self._by_line[line] = self._narrow(line)
        return hit

    def _narrow(self, line: str) -> tuple[re.Pattern, re.Pattern] | None:
        low = line.lower()
        if len(low) != len(line):
            return self.line, self.alone
        at = _LEAD_SPACE.match(line).end()
        places = [at]
        m = _LEAD_MARK.match(line, at)
        if m:
            places.append(m.end())
        starts = frozenset(low[o:o + 3] for o in places) & self._starts
        if not starts and not any(low.startswith(self._short, o) for o in places):
            return None
        hit = self._narrowed.get(starts)
        if hit is None:
            hit = self._narrowed[starts] = self._patterns(
                [lab for lab, _ in self.pairs if len(lab) < 3 or lab[:3] in starts])
        return hit

    def match_line(self, line: str):
        """self.line.match(line), faster."""
        pats = self._for(line)
        return pats[0].match(line) if pats else None

    def match_alone(self, line: str):
        """self.alone.match(line), faster."""
        pats = self._for(line)
        return pats[1].match(line) if pats else None

    def is_label_line(self, line: str) -> bool:
        pats = self._for(line)
        return bool(pats and (pats[0].match(line) or pats[1].match(line)))

    def find(self, text: str) -> dict[str, list[Found]]:
        """Every value written against a label, in order, per field."""
        # readers ask about one text more than once (where patients start, then their details)
        hit = self._found.get(text)
        if hit is None:
            if len(self._found) >= 32:
                self._found.clear()
            hit = self._found[text] = self._find(text)
        return {k: list(fs) for k, fs in hit.items()}      # Found values are never changed

    def _find(self, text: str) -> dict[str, list[Found]]:
        lines = normalise(text).splitlines()
        out: dict[str, list[Found]] = {}
        i = 0
        while i < len(lines):
            line = lines[i]
            pats = self._for(line)
            m = pats[0].match(line) if pats else None
            if m:
                value, j = m.group(2), i + 1
                # an Outlook table cell running on over indented lines (an address split by <br>)
                col = m.start(2)
                while j < len(lines) and col >= 8 and lines[j].strip() and \
                        len(lines[j]) - len(lines[j].lstrip()) >= col - 2 and not self.is_label_line(lines[j]):
                    value += ", " + lines[j].strip()
                    j += 1
                out.setdefault(self.key(m.group(1)), []).append(Found(value.strip(), i))
                i += 1
                continue
            m = pats[1].match(line) if pats else None
            if m:
                # the label alone: the answer is on the next line(s) (PDF text, EMIS headings, Word forms)
                j = i + 1
                while j < len(lines) and not lines[j].strip() and j - i <= 2:
                    j += 1
                body = []
                indent = len(lines[j]) - len(lines[j].lstrip()) if j < len(lines) else 0
                while j < len(lines) and lines[j].strip() and not self.is_label_line(lines[j]) and len(body) < 15:
                    if body:
                        # go on only while the answer runs on: the same indent under a heading (EMIS),
                        # or a long line wrapped mid-sentence (PDF text)
                        prev = body[-1]
                        here = len(lines[j]) - len(lines[j].lstrip())
                        if not ((indent and here >= indent) or (len(prev) >= 60 and not re.search(r"[.!?:]$", prev))):
                            break
                    body.append(lines[j].strip())
                    j += 1
                if body:
                    out.setdefault(self.key(m.group(1)), []).append(Found(" ".join(body), i))
            i += 1
        return out


# -- numbered / headed sections ----------------------------------------------------------------
@dataclass
class Section:
    key: str | None        # the item the heading names, if any
    number: int | None     # "3." before it, if numbered
    heading: str
    body: str
    line: int


_NUMBERED = re.compile(r"^\s*(?:item\s+|section\s+)?(\d{1,2})\s*[.):]\s*(\S.*)$", re.I)


def sections(text: str, headings: dict[str, list[str]]) -> list[Section]:
    """Split an application into sections: a numbered line ("3. The written support ...") or a line
    starting with a known heading ("Benefits:", "How the proposal supports the LDP"); the answer is
    what follows on that line after ':' or '-' plus the lines up to the next heading."""
    pairs = sorted(((h.lower(), k) for k, hs in headings.items() for h in hs), key=lambda p: -len(p[0]))
    alt = "|".join(re.escape(h) for h, _ in pairs)
    head = re.compile(r"^\s*(?:the\s+)?(" + alt + r")\b", re.I)
    keys = dict(pairs)
    lines = normalise(text).splitlines()
    found: list[Section] = []
    for n, line in enumerate(lines):
        number = None
        rest = line.strip()
        m = _NUMBERED.match(line)
        if m:
            number, rest = int(m.group(1)), m.group(2).strip()
        elif re.match(r"^\s*[-•*·]", line):
            continue                       # a bullet inside an answer, not a heading
        h = head.match(rest)
        key = keys.get(h.group(1).lower()) if h else None
        if key is None and number is None:
            continue
        # the heading ends at ':' / ' - ' when the answer follows on the same line
        split = re.match(r"^(.{1,160}?)(?:\s*:\s+|\s*:$|\s+[-–]\s+(?=[a-z0-9£\"'(]))(.*)$", rest)
        if split and (key is None or head.match(split.group(1))):
            heading, inline = split.group(1), split.group(2)
        elif key is not None and len(rest.split()) <= (24 if number is not None else 10) and \
                not re.search(r"[.!?,;]\s*$", rest):
            heading, inline = rest, ""
        elif number is not None:
            heading, inline = rest, ""
        else:
            continue                       # a sentence that starts with a heading's words is an answer
        if key is None and number is not None and len(heading.split()) > 24:
            continue                       # a numbered sentence in an answer, not a heading
        found.append(Section(key, number, heading.strip(), inline.strip(), n))
    for i, s in enumerate(found):
        end = found[i + 1].line if i + 1 < len(found) else len(lines)
        more = "\n".join(ln.strip() for ln in lines[s.line + 1:end]).strip()
        s.body = (s.body + ("\n" + more if more else "")).strip()
    return found


# -- Word documents in reading order -----------------------------------------------------------
_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"


def _para_text(p) -> str:
    out = []
    for el in p.iter():
        tag = el.tag
        if tag == _W + "t":
            out.append(el.text or "")
        elif tag == _W + "tab":
            out.append("\t")
        elif tag in (_W + "br", _W + "cr"):
            out.append("\n")
        elif tag == _W + "checkBox":          # a legacy Word form check box: no glyph in the text
            checked = el.find(_W + "checked")
            default = el.find(_W + "default")
            state = checked if checked is not None else default
            on = state is not None and state.get(_W + "val", "1") not in ("0", "false")
            out.append("☒ " if on else "☐ ")
    return "".join(out)


def docx_text(data: bytes) -> str:
    """A .docx as text in reading order: paragraphs, and each table row as 'cell | cell' where it
    stands (a costs table stays under its heading); check-box fields as ☒/☐."""
    import docx
    d = docx.Document(io.BytesIO(data))
    lines = []
    for el in d.element.body.iterchildren():
        if el.tag == _W + "p":
            lines.append(_para_text(el))
        elif el.tag == _W + "tbl":
            for tr in el.iter(_W + "tr"):
                cells = []
                for tc in tr.iterchildren(_W + "tc"):
                    text = "\n".join(_para_text(p) for p in tc.iter(_W + "p")).strip()
                    if not cells or text != cells[-1]:       # merged cells repeat
                        cells.append(" ".join(text.split("\n")))
                lines.append(" | ".join(cells))
    return "\n".join(lines)
