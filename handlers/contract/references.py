"""The reference a case is known by in every reply, digest and export: LES- and six digits."""
from __future__ import annotations

import re

PREFIX = "LES-"
# as people quote it back: [LES-000123], LES-000123, les-123456 (six digits or more)
PATTERN = re.compile(r"\[?\b(LES-(\d{6,}))\b\]?", re.I)


def reference(case_id: int) -> str:
    return f"{PREFIX}{case_id:06d}"


def reference_or_none(case_id: int | None) -> str | None:
    return reference(case_id) if case_id else None
