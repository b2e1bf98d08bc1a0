"""Workbooks for people: styled tables, and formulas that also carry their value.

openpyxl writes a formula with an empty cached value, so a reader that does not
calculate (openpyxl `data_only=True`, pandas, a mail preview) sees nothing.
`save_with_values` evaluates every formula lesbot writes — only SUM, SUMIFS and
`+`, the few a finance sheet needs — from the workbook's own cells, saves, and
puts each result into the formula cell's `<v>` element in the saved XML. The
value is computed from the same cells the formula names, so the two agree.
"""
from __future__ import annotations

import io
import re
import zipfile
from decimal import Decimal
from posixpath import dirname, join, normpath

from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils import get_column_letter, range_boundaries

MONEY = '"£"#,##0.00'
COUNT = "#,##0"
WHEN = "d mmm yyyy hh:mm"
FONT = "Calibri"                 # openpyxl's default body font; a Font() without a name renders as a serif
BOLD = Font(name=FONT, bold=True)
TITLE = Font(name=FONT, bold=True, size=14)
SUBTITLE = Font(name=FONT, bold=True, size=12)
ITALIC = Font(name=FONT, italic=True)
HEADER_FILL = PatternFill("solid", fgColor="DDE7F0")
TOP_LINE = Border(top=Side(style="thin"))
WRAP_TOP = Alignment(wrap_text=True, vertical="top")
TOP = Alignment(vertical="top")
WRAP_TOP_INDENT = Alignment(horizontal="left", vertical="top", wrap_text=True, indent=1)   # text right of figures


def put_text(ws, row: int, col: int, value):
    """A text cell that stays text, even when it starts with '=' (a name is never run as a formula)."""
    c = ws.cell(row, col, value)
    if isinstance(value, str) and c.data_type == "f":
        c.data_type = "s"
    return c


def header(ws, row: int, names: list[str], right: tuple[int, ...] = ()) -> None:
    """A bold, shaded header row; columns in `right` (numbers) are headed flush right, over their figures."""
    for col, name in enumerate(names, start=1):
        c = ws.cell(row, col, name)
        c.font, c.fill = BOLD, HEADER_FILL
        c.alignment = Alignment(vertical="top", horizontal="right" if col in right else None)


def fit_columns(ws, minimum: int = 8, maximum: int = 50, fixed: dict[str, float] | None = None) -> None:
    """Column widths from what the cells show (money as £1,234.00), within [minimum, maximum]."""
    widths: dict[int, int] = {}
    for row in ws.iter_rows():
        for c in row:
            if c.value is None:
                continue
            # figures get more room: right-aligned, they would otherwise touch the next column's text
            pad = 4 if c.data_type in ("n", "f") else 2
            widths[c.column] = max(widths.get(c.column, 0), _shown_len(c) + pad)
    for col, w in widths.items():
        ws.column_dimensions[get_column_letter(col)].width = min(max(w, minimum), maximum)
    for letter, w in (fixed or {}).items():
        ws.column_dimensions[letter].width = w


def fit_rows(ws, line_height: float = 15) -> None:
    """Tall enough rows for wrapped text: spreadsheet apps do not grow a row they are given without a
    height (LibreOffice keeps the default, so wrapped lines would overprint the next row)."""
    import textwrap
    for row in ws.iter_rows():
        lines = 1
        for c in row:
            if c.value is None or not (c.alignment and c.alignment.wrap_text):
                continue
            width = ws.column_dimensions[get_column_letter(c.column)].width or 8.43
            per_line = max(int(width * 1.1) - 1, 1)     # a width unit is one '0'; most letters are narrower
            lines = max(lines, sum(len(textwrap.wrap(part, per_line)) or 1 for part in str(c.value).splitlines()))
        if lines > 1:
            ws.row_dimensions[row[0].row].height = lines * line_height


def _shown_len(c) -> int:
    v = c.value
    if c.data_type == "f":
        return 12
    if isinstance(v, (int, float)) and c.number_format == MONEY:
        return len(f"£{v:,.2f}")
    if isinstance(v, (int, float)):
        return len(f"{v:,}")
    if hasattr(v, "strftime"):
        return 17
    return max((len(line) for line in str(v).splitlines()), default=0)


def print_wide(ws, title_rows: str | None = None) -> None:
    """Landscape, one page wide, header repeated on every page."""
    ws.page_setup.orientation = "landscape"
    ws.page_setup.paperSize = ws.PAPERSIZE_A4
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0
    if title_rows:
        ws.print_title_rows = title_rows


# -- formulas and their values ---------------------------------------------------------
class FormulaError(ValueError):
    pass


_TOKEN = re.compile(r"\s*(?:(?P<num>\d+(?:\.\d+)?)"
                    r"|(?P<ref>(?:'(?:[^']|'')+'!|[A-Za-z_][\w.]*!)?\$?[A-Z]{1,3}\$?\d+(?::\$?[A-Z]{1,3}\$?\d+)?)"
                    r"|(?P<func>[A-Z]+)\("
                    r"|(?P<op>[+,)]))")


class _Evaluator:
    """SUM(...), SUMIFS(sum_range, criteria_range, criterion) and `+` over a workbook's cells."""

    def __init__(self, wb):
        self.wb = wb
        self.memo: dict[tuple[str, str], object] = {}

    def cell_value(self, ws, coord: str):
        key = (ws.title, coord)
        if key not in self.memo:
            c = ws[coord]
            self.memo[key] = None      # a formula that reaches itself ends as empty, not a hang
            self.memo[key] = self.formula(ws, c.value) if c.data_type == "f" else c.value
        return self.memo[key]

    def formula(self, ws, text: str):
        outer = getattr(self, "tokens", None), getattr(self, "pos", 0)   # a reference may evaluate another formula
        self.tokens, self.pos = self._tokens(text.lstrip("=")), 0
        try:
            value = self._expr(ws)
            if self.pos != len(self.tokens):
                raise FormulaError(f"cannot evaluate {text!r}")
        finally:
            self.tokens, self.pos = outer
        return _number(value)

    @staticmethod
    def _tokens(text: str) -> list[tuple[str, str]]:
        out, i = [], 0
        while i < len(text.rstrip()):
            m = _TOKEN.match(text, i)
            if not m:
                raise FormulaError(f"cannot evaluate {text!r} at {text[i:]!r}")
            out.append((m.lastgroup, m.group(m.lastgroup)))
            i = m.end()
        return out

    def _next(self):
        tok = self.tokens[self.pos] if self.pos < len(self.tokens) else ("end", "")
        self.pos += 1
        return tok

    def _expr(self, ws):
        value = self._term(ws)
        while self.pos < len(self.tokens) and self.tokens[self.pos] == ("op", "+"):
            self.pos += 1
            value = _sum([value]) + _sum([self._term(ws)])
        return value

    def _term(self, ws):
        kind, text = self._next()
        if kind == "num":
            return Decimal(text)
        if kind == "ref":
            return self._ref(ws, text)
        if kind == "func":
            args = [self._expr(ws)]
            while self._next() == ("op", ","):
                args.append(self._expr(ws))
            if self.tokens[self.pos - 1] != ("op", ")"):
                raise FormulaError(f"unclosed {text}(")
            if text == "SUM":
                return _sum(args)
            if text == "SUMIFS" and len(args) == 3:
                return self._sumifs(*args)
        raise FormulaError(f"cannot evaluate {kind} {text!r}")

    def _ref(self, ws, text: str) -> list:
        if "!" in text:
            name, text = text.rsplit("!", 1)
            ws = self.wb[name[1:-1].replace("''", "'") if name.startswith("'") else name]
        lo_col, lo_row, hi_col, hi_row = range_boundaries(text.replace("$", ""))
        return [self.cell_value(ws, f"{get_column_letter(c)}{r}")
                for r in range(lo_row, hi_row + 1) for c in range(lo_col, hi_col + 1)]

    @staticmethod
    def _sumifs(values, keys, criterion):
        want = criterion[0] if isinstance(criterion, list) else criterion
        if not criterion_is_plain(want):
            raise FormulaError(f"SUMIFS criterion {want!r} would be read as a pattern")
        want = str(want).casefold()
        return _sum([v for v, k in zip(values, keys) if k is not None and str(k).casefold() == want])


def criterion_is_plain(value) -> bool:
    """SUMIFS matches this text exactly (no wildcard, no comparison, within Excel's 255 characters)."""
    s = "" if value is None else str(value)
    return bool(s) and len(s) <= 255 and not re.search(r"[*?~]", s) and s[:1] not in "<>="


def _sum(args) -> Decimal:
    total = Decimal(0)
    for a in args:
        for v in (a if isinstance(a, list) else [a]):
            if isinstance(v, (int, float, Decimal)) and not isinstance(v, bool):
                total += Decimal(repr(v)) if isinstance(v, float) else Decimal(v)
    return total


def _number(value):
    if isinstance(value, list):
        value = _sum(value)
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def formula_values(wb) -> dict[str, dict[str, object]]:
    """{sheet title: {cell: value}} for every formula cell in the workbook."""
    ev = _Evaluator(wb)
    out: dict[str, dict[str, object]] = {}
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for c in row:
                if c.data_type == "f":
                    out.setdefault(ws.title, {})[c.coordinate] = ev.cell_value(ws, c.coordinate)
    return out


def save_with_values(wb) -> bytes:
    """The workbook as XLSX bytes, every formula cell holding its computed value too."""
    values = formula_values(wb)
    buf = io.BytesIO()
    wb.save(buf)
    return set_cached_values(buf.getvalue(), values)


_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG_REL = "http://schemas.openxmlformats.org/package/2006/relationships"


def set_cached_values(xlsx: bytes, values: dict[str, dict[str, object]]) -> bytes:
    """Write `values` ({sheet: {cell: number}}) into the <v> of those formula cells of a saved XLSX."""
    from lxml import etree      # python-docx's dependency; keeps the parts' namespaces as written
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    src = zipfile.ZipFile(io.BytesIO(xlsx))
    parts = _sheet_parts(src, parser)
    changed: dict[str, bytes] = {}
    for title, cells in values.items():
        part = parts[title]
        root = etree.fromstring(src.read(part), parser)
        seen = set()
        for c in root.iter(f"{{{_MAIN}}}c"):
            ref = c.get("r")
            if ref not in cells or c.find(f"{{{_MAIN}}}f") is None:
                continue
            value = cells[ref]
            v = c.find(f"{{{_MAIN}}}v")
            if v is None:
                v = etree.SubElement(c, f"{{{_MAIN}}}v")
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                c.attrib.pop("t", None)
                v.text = repr(value)
            elif value is None:
                c.remove(v)
            else:
                c.set("t", "str")
                v.text = str(value)
            seen.add(ref)
        if seen != set(cells):
            raise FormulaError(f"{title}: formula cells not found in the saved sheet: {sorted(set(cells) - seen)}")
        changed[part] = etree.tostring(root, xml_declaration=True, encoding="UTF-8", standalone=True)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info, changed.get(info.filename, src.read(info.filename)))
    return out.getvalue()


def _sheet_parts(z: zipfile.ZipFile, parser) -> dict[str, str]:
    """Sheet title → its part's name in the zip, by the workbook's relationships."""
    from lxml import etree
    wb = etree.fromstring(z.read("xl/workbook.xml"), parser)
    rels = etree.fromstring(z.read("xl/_rels/workbook.xml.rels"), parser)
    target = {r.get("Id"): r.get("Target") for r in rels.iter(f"{{{_PKG_REL}}}Relationship")}
    out = {}
    for s in wb.iter(f"{{{_MAIN}}}sheet"):
        t = target[s.get(f"{{{_REL}}}id")]
        out[s.get("name")] = t.lstrip("/") if t.startswith("/") else normpath(join(dirname("xl/workbook.xml"), t))
    return out
