"""Attachments: what is kept for handlers, refused with a reason, or quarantined.

Each case is a real .eml written to disk and ingested through `lesbot ingest`'s
code path (store, then process), so parsing and vetting are exercised end to end.
"""
from __future__ import annotations

import io
import struct
import zipfile

import pytest

from bot.mail.attachments import Vetter, pdf_text, text_of
from bot.settings.config import Limits
from bot.mail.parse import Attachment, parse
from conftest import DATA, Lesbot, make_msg


def with_attachment(name, data, ctype="application/octet-stream", extra_files=()):
    m = make_msg(subject="Claim attached", body="Please find our claim attached.")
    maintype, subtype = ctype.split("/")
    m.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    for n, d in extra_files:
        m.add_attachment(d, maintype="application", subtype="octet-stream", filename=n)
    return m


def zip_bytes(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for n, d in files.items():
            z.writestr(n, d)
    return buf.getvalue()


def xlsx_bytes(extra: dict[str, bytes] | None = None) -> bytes:
    import openpyxl
    wb = openpyxl.Workbook()
    wb.active["A1"] = "Practice code"
    buf = io.BytesIO()
    wb.save(buf)
    if not extra:
        return buf.getvalue()
    src = zipfile.ZipFile(io.BytesIO(buf.getvalue()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for i in src.infolist():
            z.writestr(i, src.read(i))
        for n, d in extra.items():
            z.writestr(n, d)
    return out.getvalue()


def tnef_bytes(files: list[tuple[str, bytes]]) -> bytes:
    def attr(level, aid, data):
        return struct.pack("<BII", level, aid, len(data)) + data + struct.pack("<H", sum(data) & 0xFFFF)
    out = struct.pack("<IH", 0x223E9F78, 0x0001) + attr(1, 0x00089006, struct.pack("<I", 0x00010000))
    for name, data in files:
        out += attr(2, 0x00069002, b"\x00" * 14) + attr(2, 0x00018010, name.encode() + b"\x00") + \
            attr(2, 0x0006800F, data)
    return out


def encrypt_flag(z: bytes) -> bytes:
    """Set the 'encrypted' bit in every header, as a password-protected zip has."""
    b = bytearray(z)
    for sig, off in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        i = b.find(sig)
        while i != -1:
            b[i + off] |= 1
            i = b.find(sig, i + 4)
    return bytes(b)


CSV = b"Practice code,Service,Month,Count\r\nZ98101,denosumab,Sep-26,14\r\n"
OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 200


@pytest.fixture
def small(home):
    b = Lesbot(home, limits={"max_attachment_bytes": 200_000, "max_unpacked_bytes": 1_000_000,
                             "max_attachments": 3})
    yield b
    b.close()


def ingest_file(b, tmp_path, m):
    path = tmp_path / "message.eml"
    path.write_bytes(m.as_bytes())
    return b.ingest(path)


@pytest.mark.parametrize("name,data,ctype", [
    ("claim.exe", b"MZ\x90\x00" + b"\x00" * 100, "application/octet-stream"),
    ("claim.pdf", b"MZ\x90\x00" + b"\x00" * 100, "application/pdf"),   # a program named .pdf
    ("run.js", b"WScript.Shell", "application/javascript"),
    ("form.pdf", b"%PDF-1.4\n1 0 obj << /OpenAction << /S /JavaScript /JS (app.alert(1)) >> >>", "application/pdf"),
    ("claims.zip", zip_bytes({"invoice.scr": b"MZ" + b"\x00" * 50}), "application/zip"),
])
def test_possibly_malicious_is_quarantined(small, tmp_path, name, data, ctype):
    r = ingest_file(small, tmp_path, with_attachment(name, data, ctype))
    assert (r["outcome"], r["kind"], r["reply"]) == ("quarantined", "suspicious_attachment", None)
    assert name in r["errors"][0]["field"] or "claims.zip" in r["errors"][0]["field"]


@pytest.mark.parametrize("name,data,ctype,words", [
    ("claim.xlsm", xlsx_bytes(), "application/vnd.ms-excel.sheet.macroEnabled.12", "macro-enabled"),
    ("claim.xlsx", xlsx_bytes({"xl/vbaProject.bin": b"\x00" * 10}),
     "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "contains macros"),
    ("claim.xlsx", OLE + "EncryptedPackage".encode("utf-16-le"),
     "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "password-protected"),
    ("claim.xls", OLE, "application/vnd.ms-excel", "old-style"),
    ("letter.pdf", b"%PDF-1.6\n1 0 obj\n<< /Encrypt 2 0 R >>\n", "application/pdf", "encrypted"),
    ("claim.xlsx", xlsx_bytes({"xl/bomb.xml": b"\x00" * 2_000_000}),
     "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "zip bomb"),
    ("claim.xlsx", b"not a zip at all", "application/octet-stream", "not a valid Office file"),
    ("big.csv", b"a,b\n" * 60_000, "text/csv", "limit for one file"),
    ("claims.zip", encrypt_flag(zip_bytes({"claim.csv": CSV})), "application/zip", "password-protected zip"),
    ("claims.zip", zip_bytes({"inner.zip": zip_bytes({"claim.csv": CSV})}), "application/zip",
     "archive inside an archive"),
    ("claims.zip", zip_bytes({"photo.heic": b"\x00\x01"}), "application/zip", "cannot read"),
    ("letter.odt", b"PK\x03\x04 something", "application/vnd.oasis.opendocument.text", "cannot read"),
    ("winmail.dat", tnef_bytes([]), "application/ms-tnef", "no attachment"),
    ("winmail.dat", b"\x78\x9f\x3e\x22 broken", "application/ms-tnef", "winmail.dat"),
])
def test_refused_with_reason_and_reply(small, tmp_path, name, data, ctype, words):
    r = ingest_file(small, tmp_path, with_attachment(name, data, ctype))
    assert (r["outcome"], r["kind"]) == ("rejected", "attachments")
    problems = " ".join(e["field"] + " " + e["problem"] for e in r["errors"])
    assert words in problems
    reply = small.outbox()[0]["raw"].decode()
    assert name in reply and "could not open" in reply


def test_too_many_attachments(small, tmp_path):
    m = with_attachment("a.csv", CSV, "text/csv", extra_files=[("b.csv", CSV), ("c.csv", CSV), ("d.csv", CSV)])
    r = ingest_file(small, tmp_path, m)
    assert r["outcome"] == "rejected" and "the limit is 3" in r["errors"][0]["problem"]


def test_readable_attachments_are_kept_including_inside_zip_and_tnef():
    v = Vetter(Limits())
    atts = [Attachment("claim.csv", "text/csv", CSV),
            Attachment("form.xlsx", "application/octet-stream", xlsx_bytes()),
            Attachment("claims.zip", "application/zip", zip_bytes({"dir/oct.csv": CSV})),
            Attachment("winmail.dat", "application/ms-tnef", tnef_bytes([("nov.csv", CSV)])),
            Attachment("image001.png", "image/png", b"\x89PNG", inline=True)]
    got = v.vet(atts)
    assert not got.refused and not got.dangerous
    assert [(k.filename, k.kind, k.inside) for k in got.kept] == [
        ("claim.csv", "csv", ""), ("form.xlsx", "xlsx", ""), ("oct.csv", "csv", "claims.zip"),
        ("nov.csv", "csv", "winmail.dat")]
    assert got.ignored == ["image001.png"]
    assert "Z98101" in text_of(got.kept[2])


def test_winmail_dat_with_a_claim_is_accepted_for_handling(small, tmp_path):
    r = ingest_file(small, tmp_path, with_attachment("winmail.dat", tnef_bytes([("claim.csv", CSV)]),
                                                     "application/ms-tnef"))
    assert (r["kind"], r["outcome"]) == ("claim", "accepted")   # the CSV inside winmail.dat was read


def test_sample_pdf_letter_text_and_csv_and_xlsx_are_kept():
    for name, kind in (("12-denosumab-letter-pdf-attachment.eml", "pdf"), ("03-claim-csv-attachment.eml", "csv"),
                       ("04-claim-xlsx-attachment.eml", "xlsx")):
        p = parse((DATA / name).read_bytes())
        v = Vetter(Limits()).vet(p.attachments)
        assert [k.kind for k in v.kept] == [kind] and not v.refused
    p = parse((DATA / "12-denosumab-letter-pdf-attachment.eml").read_bytes())
    text = pdf_text(p.attachments[0].data)
    assert "999" in text and "enosumab" in text
    csv_name = parse((DATA / "03-claim-csv-attachment.eml").read_bytes()).attachments[0].filename
    assert csv_name == "Ashdown Vale – LES claim Sep-26.csv"   # RFC 2047 inside a quoted parameter
