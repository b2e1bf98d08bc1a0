"""The words lesbot reads mail by: catalogue/lexicon/<name>.toml, one file per service.

`load(name)` gives the file as a dict; `derived(name, build)` gives what a reader builds from it
(compiled patterns, sets), built once per version of the file: an edit is picked up by the next
message (within a second), without a restart.
"""
from __future__ import annotations

import time
import tomllib
from pathlib import Path
from typing import Callable

DIR = Path(__file__).resolve().parents[3] / "catalogue" / "lexicon"
_cache: dict[tuple[str, object], tuple[int, object]] = {}


_checked: dict[str, tuple[float, int]] = {}


def _stamp(name: str) -> int:
    """The file's modification time, looked at no more than once a second per file."""
    now = time.monotonic()
    hit = _checked.get(name)
    if hit and now - hit[0] < 1.0:
        return hit[1]
    try:
        stamp = (DIR / f"{name}.toml").stat().st_mtime_ns
    except OSError:
        stamp = 0
    _checked[name] = (now, stamp)
    return stamp


def _raw(raw: dict) -> dict:
    return raw


def load(name: str) -> dict:
    return derived(name, _raw)


def derived(name: str, build: Callable[[dict], object]):
    """build(raw dict) -> anything, rebuilt only when the file changes. `build` must be a
    module-level function: it is part of the cache key."""
    stamp = _stamp(name)
    key = (name, build)
    hit = _cache.get(key)
    if hit is None or hit[0] != stamp:
        raw = tomllib.loads((DIR / f"{name}.toml").read_text(encoding="utf-8")) if stamp else {}
        hit = (stamp, build(raw))
        _cache[key] = hit
    return hit[1]
