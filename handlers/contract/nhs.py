"""NHS numbers: ten digits, the last a Modulus 11 check digit."""
from __future__ import annotations

import re

from handlers.contract.dates import digit_led_matches

SEPARATED = re.compile(r"(?<![\d£.])(\d{3})[ -]?(\d{3})[ -]?(\d{4})(?!\d|\.\d)")


def separated(text: str):
    """SEPARATED.finditer(text), found faster: a number starts a run of digits."""
    return digit_led_matches(text or "", SEPARATED, None)


def normalise(text: str) -> str | None:
    """'999 035 6793', '999-035-6793', '9990356793' -> '9990356793'; else None."""
    digits = _GAPS.sub("", text or "")
    return digits if _TEN.fullmatch(digits) else None


_GAPS, _TEN = re.compile(r"[\s-]"), re.compile(r"\d{10}")        # compiled once: asked many times a message


def is_valid(digits: str) -> bool:
    if not digits or len(digits) != 10 or not digits.isdigit():
        return False
    total = sum(int(d) * w for d, w in zip(digits[:9], range(10, 1, -1)))
    check = 11 - total % 11
    check = 0 if check == 11 else check
    return check != 10 and check == int(digits[9])


def display(digits: str) -> str:
    """As the NHS prints it: 3-3-4."""
    return f"{digits[:3]} {digits[3:6]} {digits[6:]}"


def count_in(text: str) -> int:
    """How many valid NHS numbers a text holds."""
    return sum(1 for m in separated(text) if is_valid("".join(m.groups())))
