"""The file door: .eml files, Maildir folders and mbox files, for backfill and replay."""
from __future__ import annotations

import mailbox
from pathlib import Path
from typing import Iterator


class SourceError(ValueError):
    pass


def expand(paths: list[str]) -> list[tuple[str, object]]:
    """Each path becomes one or more (label, loader) pairs; loaders return raw bytes."""
    out: list[tuple[str, object]] = []
    for name in paths:
        p = Path(name)
        if not p.exists():
            raise SourceError(f"{name}: no such file or folder")
        if p.is_dir() and all((p / sub).is_dir() for sub in ("cur", "new")):
            md = mailbox.Maildir(str(p), factory=None, create=False)
            for key in sorted(md.keys()):
                out.append((f"{p}/{key}", lambda md=md, key=key: md.get_bytes(key)))
        elif p.is_dir():
            for f in sorted(p.iterdir()):
                if f.is_file() and f.suffix.lower() in (".eml", ".msg", ".txt") or f.suffix == "":
                    if f.is_file():
                        out.extend(expand([str(f)]))
        elif _is_mbox(p):
            box = mailbox.mbox(str(p), create=False)
            for i, key in enumerate(box.keys()):
                out.append((f"{p}#{i + 1}", lambda box=box, key=key: _mbox_bytes(box, key)))
        else:
            out.append((str(p), p.read_bytes))
    return out


def _is_mbox(p: Path) -> bool:
    with open(p, "rb") as f:
        return f.read(5) == b"From "


def _mbox_bytes(box: mailbox.mbox, key) -> bytes:
    raw = box.get_bytes(key)
    # Undo mboxrd ">From " quoting only at the start of lines.
    return raw.replace(b"\n>From ", b"\nFrom ")


def iter_messages(paths: list[str]) -> Iterator[tuple[str, bytes]]:
    for label, loader in expand(paths):
        yield label, loader()
