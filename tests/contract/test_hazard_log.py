"""The hazard log names real tests: a renamed or deleted test must update the log."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_test_the_hazard_log_cites_exists():
    log = (ROOT / "docs" / "hazard-log.md").read_text()
    cited = []
    for cell in re.findall(r"`(tests/[\w/]*test_\w+\.py)::(\w+)`|`::(\w+)`|`(tests/[\w/]*test_\w+\.py)`", log):
        cited.append(cell)
    assert cited
    current = None
    missing = []
    for path, name, bare, whole in cited:
        if path or whole:
            current = path or whole
            assert (ROOT / current).exists(), current
        fn = name or bare
        if fn and f"def {fn}(" not in (ROOT / current).read_text():
            missing.append(f"{current}::{fn}")
    assert not missing, missing
