"""The words lesbot reads by are data (catalogue/lexicon/*.toml): each file loads, names only
services the catalogue knows, and an edit is picked up without a restart."""
from __future__ import annotations

import os
import tomllib

from handlers.contract.catalogue import load as load_catalogue
from handlers.contract.reading import lexicon


def test_every_lexicon_file_loads_and_claims_name_known_services():
    names = sorted(p.stem for p in lexicon.DIR.glob("*.toml"))
    assert {"claims", "referrals", "letters", "imsk", "training", "machine"} <= set(names)
    for name in names:
        assert isinstance(lexicon.load(name), dict) and lexicon.load(name), name
    catalogue = load_catalogue()
    for code in lexicon.load("claims")["services"]:
        assert catalogue.get(code) is not None, code


def test_an_edit_is_picked_up_by_the_next_message(tmp_path, monkeypatch):
    monkeypatch.setattr(lexicon, "DIR", tmp_path)
    monkeypatch.setattr(lexicon, "_checked", {})
    f = tmp_path / "demo.toml"
    f.write_text('words = ["dmab"]\n')
    built = []

    def build(raw):
        built.append(raw)
        return set(raw["words"])
    assert lexicon.derived("demo", build) == {"dmab"}
    assert lexicon.derived("demo", build) == {"dmab"} and len(built) == 1      # built once per version
    f.write_text('words = ["dmab", "prolia"]\n')
    st = f.stat()
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    lexicon._checked.clear()             # as a second later
    assert lexicon.derived("demo", build) == {"dmab", "prolia"} and len(built) == 2


def test_machine_subjects_are_lower_case_and_unique():
    raw = tomllib.loads((lexicon.DIR / "machine.toml").read_text(encoding="utf-8"))
    for kind in ("auto_reply", "receipt", "bounce"):
        words = raw[kind]["subjects"]
        assert words == [w.lower() for w in words] and len(set(words)) == len(words), kind
