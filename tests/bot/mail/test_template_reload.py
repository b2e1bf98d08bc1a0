"""Templates are compiled once and looked at on disk every FRESH_FOR seconds: an edit (or a new
HTML version) is used after that, without a restart, and not looked for on every reply."""
from __future__ import annotations

import os

import pytest

from bot.mail import compose


@pytest.fixture
def templates(tmp_path, monkeypatch):
    monkeypatch.setattr(compose, "TEMPLATES", tmp_path)
    compose.environment.cache_clear()
    compose._looked[0] = 0.0
    (tmp_path / "_layout.html.j2").write_text("<p>{{ title }}</p>{{ body_html }}")
    yield tmp_path
    compose.environment.cache_clear()
    compose._looked[0] = 0.0
    compose._missing.clear()


def _edit(path, text):
    path.write_text(text)
    st = path.stat()
    os.utime(path, (st.st_atime, st.st_mtime + 10))      # a clock tick the file system can see


def test_an_edited_template_is_used_after_fresh_for(templates, monkeypatch):
    _edit(templates / "note.txt.j2", "Subject: One\n\nfirst {{ n }}\n")
    assert compose.render("note", n=1)[:2] == ("One", "first 1")
    _edit(templates / "note.txt.j2", "Subject: Two\n\nsecond {{ n }}\n")
    assert compose.render("note", n=1)[0] == "One"          # within FRESH_FOR: the compiled one
    compose._looked[0] -= compose.FRESH_FOR                  # as if FRESH_FOR seconds had passed
    assert compose.render("note", n=2)[:2] == ("Two", "second 2")


def test_a_new_html_version_is_found_after_fresh_for(templates):
    _edit(templates / "note.txt.j2", "Subject: S\n\nbody\n")
    assert "<p>S</p>" in compose.render("note")[2]           # the layout, from the text
    _edit(templates / "note.html.j2", "<b>own {{ title }}</b>")
    assert "<p>S</p>" in compose.render("note")[2]           # not looked for again yet
    compose._looked[0] -= compose.FRESH_FOR
    assert compose.render("note")[2] == "<b>own S</b>"


def test_a_missing_template_is_named(templates):
    with pytest.raises(Exception, match="nothing.txt.j2"):
        compose.render("nothing")
