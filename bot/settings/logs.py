"""Logging for lesbot's processes: one format, and nothing that identifies a patient.

Libraries that read attachments (pypdf, openpyxl, python-docx …) log or warn with pieces of
the file they choke on, which may be a patient's details. Their loggers are quietened, Python
warnings are routed through logging, and every record passes a filter that masks anything
shaped like an NHS number or a date before it is written.
"""
from __future__ import annotations

import logging
import re
import sys

QUIET = ("pypdf", "PyPDF2", "openpyxl", "docx", "PIL", "inscriptis", "mailparser_reply", "fontTools",
         "matplotlib", "tnefparse", "py.warnings")
NHS_LIKE = re.compile(r"(?<!\d)\d{3}[ -]?\d{3}[ -]?\d{4}(?!\d)")
DATE_LIKE = re.compile(r"(?<!\d)\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}(?!\d)")


QUOTED = re.compile(r"'[^'\n]{1,300}'|\"[^\"\n]{1,300}\"|‘[^’\n]{1,300}’|“[^”\n]{1,300}”")


def scrub(text: str) -> str:
    return DATE_LIKE.sub("[date]", NHS_LIKE.sub("[number]", text))


def for_the_record(text: str) -> str:
    """A problem as stored where the contract team reads it (claims.reason, messages.errors, the
    digest): the sender's own words quoted back are left out (they may name a patient), and
    anything shaped like an NHS number or a date is masked. The sender's reply keeps the quote."""
    return scrub(QUOTED.sub("(the practice's text, not stored)", text or ""))


class Scrub(logging.Filter):
    """Masks NHS-number-like and date-like text in the message, its arguments and any traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            record.msg = scrub(record.getMessage())
        except Exception:            # a record that cannot be formatted: keep only its template
            record.msg = scrub(str(record.msg))
        record.args = None
        if record.exc_info:
            record.exc_text = scrub(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


def setup(verbose: bool = False) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(Scrub())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    # aiosmtpd logs every SMTP command at INFO: too costly and too noisy per message.
    logging.getLogger("mail.log").setLevel(logging.DEBUG if verbose else logging.WARNING)
    # APScheduler announces each job it adds at INFO; lesbot logs its own job runs.
    logging.getLogger("apscheduler").setLevel(logging.DEBUG if verbose else logging.WARNING)
    logging.captureWarnings(True)
    for name in QUIET:
        logging.getLogger(name).setLevel(logging.ERROR)


def record_internal_error(home, exc: BaseException, argv: list[str]) -> str:
    """Append an unexpected error's traceback (masked like every log line) to HOME/errors.log, so
    the operator sees one line and whoever fixes it has the detail. Returns where it went."""
    import os
    import tempfile
    import traceback
    from datetime import datetime, timezone
    from pathlib import Path
    text = (f"--- {datetime.now(timezone.utc).isoformat(timespec='seconds')} lesbot {' '.join(argv)}\n" +
            "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))
    for path in (Path(home) / "errors.log", Path(tempfile.gettempdir()) / "lesbot-errors.log"):
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "a", encoding="utf-8") as f:
                f.write(scrub(text))
            os.chmod(path, 0o600)
            return str(path)
        except OSError:
            continue
    return "(nowhere: no writable folder)"
