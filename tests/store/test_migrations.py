"""The schema moves forward on a real file that already holds mail."""
from __future__ import annotations

import sqlite3

import sqlite_utils

from conftest import Lesbot, make_msg
from store import migrations
from handlers.contract.references import reference
from store.db import SCHEMA_VERSION, connect, migrate, reserve_case_ids


def test_a_v3_database_with_mail_upgrades_and_keeps_numbering(tmp_path, home):
    db = home / "lesbot.db"
    home.mkdir(parents=True)
    conn = connect(db)
    conn.execute("BEGIN")
    for v, step in enumerate(migrations.MIGRATIONS[:3], start=1):
        step(sqlite_utils.Database(conn))
        conn.execute(f"PRAGMA user_version={v}")
    conn.execute("COMMIT")
    for i in range(1, 4):
        conn.execute("INSERT INTO messages (received_at, source, raw, state) VALUES ('2026-10-01', 'file', ?, "
                     "'accepted')", (b"x" * i,))
    top = conn.execute("SELECT max(id) FROM messages").fetchone()[0]      # the last message opened a case
    conn.execute("INSERT INTO cases (id, created_at, org_code, kind, state, first_message) "
                 "VALUES (?, '2026-10-01', 'Z98101', 'claim', 'accepted', ?)", (top, top))
    assert migrate(conn) == SCHEMA_VERSION
    assert [r[0] for r in conn.execute("SELECT length(raw) FROM messages ORDER BY id")] == [1, 2, 3]
    assert conn.execute("SELECT count(*) FROM sqlite_master WHERE type='index' AND tbl_name='messages'").fetchone()[0] >= 5
    # reserved numbers are past every message and case, and no later message takes them
    got = reserve_case_ids(db, 2)
    assert got == [top + 1, top + 2]
    conn.execute("INSERT INTO messages (received_at, source, raw, state) VALUES ('2026-10-02', 'file', x'00', "
                 "'received')")
    after = conn.execute("SELECT max(id) FROM messages").fetchone()[0]
    assert after == got[-1] + 1
    conn.close()
    # and lesbot runs on it
    bot = Lesbot(home)
    r = bot.ingest(make_msg(body="Hello"))
    assert r["id"] == after + 1 and r["reference"] == reference(after + 1)
    bot.close()


def test_a_newer_database_is_refused(home):
    home.mkdir(parents=True)
    conn = sqlite3.connect(home / "x.db")
    conn.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    conn.close()
    import pytest
    with pytest.raises(RuntimeError, match="newer than this lesbot"):
        migrate(connect(home / "x.db"))
