"""Vet attachments: keep what a handler can read, refuse or flag everything else.

Nothing here executes content or writes it to disk: archives and TNEF are
opened in memory, member by member, within the size limits.
"""
from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass, field

from bot.mail.parse import Attachment

READABLE = {"csv", "xlsx", "pdf", "docx", "txt"}
# Names that run code when opened: never for a human to click without a look.
DANGEROUS_EXT = {"exe", "dll", "scr", "com", "bat", "cmd", "ps1", "vbs", "vbe", "js", "jse",
                 "wsf", "wsh", "msi", "jar", "lnk", "hta", "iso", "img", "cpl", "reg", "sh",
                 "apk", "app", "pif", "msc", "vhd", "vhdx"}
MACRO_EXT = {"xlsm", "xltm", "xlsb", "xlam", "docm", "dotm", "pptm"}
OLD_OFFICE_EXT = {"xls", "doc", "ppt"}
ARCHIVE_EXT = {"zip"}
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


@dataclass
class Readable:
    filename: str
    kind: str            # csv | xlsx | pdf | docx | txt
    data: bytes
    inside: str = ""     # archive or winmail.dat it came out of


@dataclass
class Vetting:
    kept: list[Readable] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)     # (name, reason)
    dangerous: list[tuple[str, str]] = field(default_factory=list)   # (name, reason)
    ignored: list[str] = field(default_factory=list)                 # inline images etc.


def ext_of(name: str) -> str:
    return name.rsplit(".", 1)[-1].lower() if "." in name else ""


def _mb(n: int) -> str:
    return f"{n / (1024 * 1024):.0f} MB"


class Vetter:
    def __init__(self, limits):
        self.limits = limits

    def vet(self, attachments: list[Attachment]) -> Vetting:
        v = Vetting()
        real = []
        for a in attachments:
            if a.content_type.startswith("image/") and (a.inline or not a.filename):
                v.ignored.append(a.filename or "inline image")
            elif a.content_type.startswith("message/") or (
                    not a.filename and a.content_type.startswith("text/")):
                v.ignored.append(a.filename or a.content_type)
            else:
                real.append(a)
        if len(real) > self.limits.max_attachments:
            v.refused.append(("(all attachments)",
                              f"{len(real)} attachments; the limit is {self.limits.max_attachments}. "
                              "Send fewer files per email."))
            return v
        for a in real:
            name = a.filename or f"unnamed {a.content_type}"
            try:
                self._one(v, name, a.content_type, a.data, inside="")
            except Exception as e:       # a file damaged in a way no check foresaw: refuse it by name
                v.refused.append((name, f"could not be opened ({type(e).__name__}); it may be damaged. "
                                        "Save it again and resend."))
        return v

    def _one(self, v: Vetting, name: str, ctype: str, data: bytes, inside: str, depth: int = 0):
        label = f"{name} (in {inside})" if inside else name
        ext = ext_of(name)
        if len(data) > self.limits.max_attachment_bytes:
            v.refused.append((label, f"is {_mb(len(data))}; the limit for one file is "
                                     f"{_mb(self.limits.max_attachment_bytes)}."))
            return
        if ext in DANGEROUS_EXT or data[:2] == b"MZ" or data[:4] == b"\x7fELF":
            v.dangerous.append((label, "is a program or script, which could be malicious"))
            return
        if ext in MACRO_EXT:
            v.refused.append((label, "is a macro-enabled Office file, which lesbot does not open. "
                                     "Save it as a plain .xlsx or .docx and send it again."))
            return
        if data[:8] == OLE_MAGIC:
            if b"E\x00n\x00c\x00r\x00y\x00p\x00t\x00e\x00d\x00P\x00a\x00c\x00k\x00a\x00g\x00e" in data:
                v.refused.append((label, "is password-protected (encrypted), so lesbot cannot read it. "
                                         "Remove the password and send it again."))
            else:
                v.refused.append((label, "is an old-style Office file (.xls/.doc). "
                                         "Save it as .xlsx or .docx and send it again."))
            return
        if ext == "dat" and (ctype == "application/ms-tnef" or name.lower() == "winmail.dat"
                             or data[:4] == b"\x78\x9f\x3e\x22"):
            self._tnef(v, label, data, depth)
            return
        if ext in ARCHIVE_EXT or ctype in ("application/zip", "application/x-zip-compressed"):
            self._zip(v, label, data, depth)
            return
        if ext in ("xlsx", "docx"):
            problem = self._office_zip_problem(data, ext)
            if problem:
                v.refused.append((label, problem))
            else:
                v.kept.append(Readable(name, ext, data, inside))
            return
        if ext == "pdf" or data[:5] == b"%PDF-":
            if data[:5] != b"%PDF-":
                v.refused.append((label, "is named .pdf but is not a PDF file."))
            elif b"/Encrypt" in data:
                v.refused.append((label, "is a password-protected (encrypted) PDF, which lesbot "
                                         "cannot read. Send it without a password."))
            elif b"/JavaScript" in data or b"/Launch" in data:
                v.dangerous.append((label, "is a PDF with embedded scripts or launch actions"))
            else:
                v.kept.append(Readable(name, "pdf", data, inside))
            return
        if ext in ("csv", "txt") or ctype in ("text/csv", "text/plain"):
            if b"\x00" in data[:4096]:
                v.refused.append((label, "is not a text file, though its name says so."))
            else:
                v.kept.append(Readable(name, "csv" if ext == "csv" or ctype == "text/csv" else "txt",
                                       data, inside))
            return
        if ctype.startswith("image/"):
            v.ignored.append(label)
            return
        v.refused.append((label, "is a kind of file lesbot cannot read. "
                                 "Send claims and letters as .csv, .xlsx, .pdf or .docx."))

    def _office_zip_problem(self, data: bytes, ext: str) -> str | None:
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as z:
                infos = z.infolist()
                names = {i.filename for i in infos}
                unpacked = sum(i.file_size for i in infos)
                if any(i.flag_bits & 0x1 for i in infos):
                    return "is encrypted, so lesbot cannot read it."
        except (zipfile.BadZipFile, NotImplementedError, ValueError, EOFError, OSError):
            return f"is named .{ext} but is not a valid Office file (it may be damaged)."
        if unpacked > self.limits.max_unpacked_bytes:
            return (f"unpacks to {_mb(unpacked)}, over the {_mb(self.limits.max_unpacked_bytes)} "
                    "limit (it may be a zip bomb). Send a smaller file.")
        if any(n.lower().endswith("vbaproject.bin") for n in names):
            return "contains macros, which lesbot does not open. Save it without macros (.xlsx/.docx)."
        marker = "xl/" if ext == "xlsx" else "word/"
        if not any(n.startswith(marker) for n in names):
            return f"is named .{ext} but is not a valid Office file."
        return None

    def _zip(self, v: Vetting, label: str, data: bytes, depth: int):
        if depth:
            v.refused.append((label, "is an archive inside an archive, which lesbot does not open."))
            return
        try:
            z = zipfile.ZipFile(io.BytesIO(data))
            infos = [i for i in z.infolist() if not i.is_dir()]
        except (zipfile.BadZipFile, NotImplementedError, ValueError, EOFError, OSError):
            v.refused.append((label, "is not a valid zip archive."))
            return
        if any(i.flag_bits & 0x1 for i in infos):
            v.refused.append((label, "is a password-protected zip, which lesbot cannot open."))
            return
        total = sum(i.file_size for i in infos)
        if total > self.limits.max_unpacked_bytes:
            v.refused.append((label, f"unpacks to {_mb(total)}, over the "
                                     f"{_mb(self.limits.max_unpacked_bytes)} limit (it may be a zip bomb)."))
            return
        if len(infos) > self.limits.max_attachments:
            v.refused.append((label, f"holds {len(infos)} files; the limit is {self.limits.max_attachments}."))
            return
        before = len(v.kept)
        for i in infos:
            member = i.filename.replace("\\", "/").rsplit("/", 1)[-1]
            # Read at most the declared size + 1: a lying header can't inflate us further.
            with z.open(i) as f:
                content = f.read(i.file_size + 1)
            if len(content) > i.file_size:
                v.refused.append((label, "is a damaged or forged zip archive."))
                return
            self._one(v, member, "", content, inside=label, depth=depth + 1)
        if len(v.kept) == before and not v.dangerous and not v.refused:
            v.refused.append((label, "holds nothing lesbot can read."))

    def _tnef(self, v: Vetting, label: str, data: bytes, depth: int):
        try:
            import tnefparse
            t = tnefparse.TNEF(data)
            items = [(a.long_filename() or a.name or "attachment", a.data) for a in t.attachments]
        except Exception:
            v.refused.append((label, "is an Outlook winmail.dat that lesbot cannot open. "
                                     "Send again with Outlook set to plain text or HTML format."))
            return
        if not items:
            v.refused.append((label, "is an Outlook winmail.dat with no attachment in it. "
                                     "Send again with Outlook set to plain text or HTML format."))
            return
        for fname, content in items:
            if isinstance(fname, bytes):
                fname = fname.decode("latin-1")
            self._one(v, fname, "", content or b"", inside=label, depth=depth + 1)


def pdf_text(data: bytes, max_pages: int = 50) -> str:
    from pypdf import PdfReader
    reader = PdfReader(io.BytesIO(data))
    return "\n".join((p.extract_text() or "") for p in reader.pages[:max_pages])


def docx_text(data: bytes) -> str:
    import docx
    d = docx.Document(io.BytesIO(data))
    lines = [p.text for p in d.paragraphs]
    for table in d.tables:
        for row in table.rows:
            lines.append(" | ".join(c.text for c in row.cells))
    return "\n".join(lines)


def text_of(r: Readable) -> str:
    """Text of a kept attachment, for handlers that read letters and forms."""
    if r.kind == "pdf":
        return pdf_text(r.data)
    if r.kind == "docx":
        return docx_text(r.data)
    if r.kind in ("csv", "txt"):
        from bot.mail.parse import decode_bytes
        return decode_bytes(r.data.removeprefix(b"\xef\xbb\xbf"), "utf-8")
    return ""
