"""Tables inside a text: pasted or rendered from HTML/Word (a header row, then rows), and a PDF's
table that comes out one cell per line."""
from __future__ import annotations

import re

from handlers.claims.wording import CELL_SPLIT, columns, is_total, money, month_columns
from handlers.contract.reading import months as rmonths


class TextTables:
    """The table part of TextReader (which supplies line, finder, received, ex, where and skip_to)."""

    def vertical(self, lines, i):
        """A PDF table comes out one cell per line: the service, then its code, number, price, total."""
        cells = []
        for j in range(i + 1, min(i + 7, len(lines))):
            t = lines[j].strip()
            if not re.fullmatch(r"£?\s?[\d,]+(?:\.\d+)?|n/?a|-", t, re.I):
                break
            cells.append(t)
        count = next((c for c in cells if re.fullmatch(r"\d{1,5}", c)), None)
        if count is None:
            return None
        self.skip_to = i + 1 + len(cells)
        money_cells = [c for c in cells if c.startswith("£") or re.fullmatch(r"\d+\.\d\d", c)]
        return count, money_cells[0] if money_cells else "", money_cells[1] if len(money_cells) > 1 else ""

    def table(self, lines, i, head_cells) -> int:
        """A table pasted or rendered from HTML/Word: a header row naming the service and the count
        column (or months as columns), then its rows. Returns how many lines it used (0: not a table).
        Rows of a table laid out with spaces (Outlook HTML as text) are cut at the header's column
        positions, so an empty cell stays empty; Word rows ("a | | b") are cut at the bars."""
        piped = "|" in lines[i] or "\t" in lines[i].strip()
        bar = "|" if "|" in lines[i] else "\t"
        positions = None
        if piped:
            head_cells = [c.strip() for c in lines[i].strip().strip("|").split(bar)]
        else:
            found = [(m.start(), m.group(0)) for m in re.finditer(r"\S+(?: \S+)*", lines[i])]
            positions = [p for p, _ in found]
            head_cells = [t for _, t in found]
        head = [c.lower() for c in head_cells]
        col = columns(head)
        month_cols = month_columns(head_cells, self.received)
        if "service" in col and "count" in col:
            kind = "rows"
        elif len(month_cols) >= 1 and (
                "service" in col or self.finder.codes(head_cells[0]) or head[0] in ("", "service")):
            kind = "months"
        else:
            return 0
        used = 1
        header_service = self.finder.codes(head_cells[0])
        for j in range(i + 1, len(lines)):
            s = lines[j].strip()
            if not s:
                used += 1
                continue
            if piped:
                cells = [c.strip() for c in s.strip("|").split(bar)]
            else:
                cells = _cut(lines[j], positions) if positions else [c.strip() for c in CELL_SPLIT.split(s)]
            if len([c for c in cells if c]) < 2:
                break
            used += 1
            n = j + 1
            first = next((c for c in cells if c), "")
            if is_total(first) or first.lower().startswith(("total", "declaration", "signed")):
                tot = next((c for c in reversed(cells) if "£" in c), None)
                if tot:
                    self.ex.stated_total = money(tot)
                continue
            if kind == "rows":
                self.table_row(cells, col, n, head)
            else:
                self.month_row(cells, head_cells, month_cols, header_service, n)
        return used

    def table_row(self, cells, col, n, head):
        if len(cells) != len(head):
            # a rendered table may drop empty cells: align from the left only when lengths agree
            if len(cells) < max(col.values()) + 1:
                return
        get = lambda k: cells[col[k]] if k in col and col[k] < len(cells) else ""  # noqa: E731
        label = get("service")
        code = (self.finder.codes(label) or self.finder.codes(get("snomed")) or [None])[0]
        month_text = get("month")
        own = rmonths.one(month_text, self.received) if month_text else None
        count = get("count")
        if code is None and not label:
            return
        if not count.strip():
            if code and code != "other":
                self.ex.mentions.append((code, self.where(n), label + " (no number given)"))
            return
        self.line(label, code, count, n, own, price=get("price"), total=get("total"))
        if code is None:
            self.ex.lines[-1].service = None

    def month_row(self, cells, head_cells, month_cols, header_service, n):
        label = cells[0]
        codes = self.finder.codes(label) or header_service
        if not codes:
            if not label:
                return
            codes = [None]
        for idx, span in month_cols:
            if idx >= len(cells):
                continue
            v = cells[idx].strip()
            if not v:
                continue
            if not re.fullmatch(r"-?[\d,]+(?:\.0+)?|nil|none", v, re.I):
                self.ex.notes.append(f"{head_cells[idx]}: '{v}' is not a number, so nothing is claimed for it.")
                continue
            self.line(f"{label} {head_cells[idx]}".strip(), codes[0], v, n, span)
            self.ex.lines[-1].month_how = "month from the column heading"
            if codes[0] is None:
                self.ex.lines[-1].service = None


def _cut(line: str, positions: list[int]) -> list[str]:
    """A space-aligned row cut into the header's columns: each run of text goes to the column whose
    heading starts at or before it (a little slack for right-aligned numbers)."""
    cells = [""] * len(positions)
    for m in re.finditer(r"\S+(?: \S+)*", line):
        idx = max([k for k, p in enumerate(positions) if p <= m.start() + 2] or [0])
        cells[idx] = (cells[idx] + " " + m.group(0)).strip()
    return cells
