"""store.db.transaction(): all of a block or none of it, even when COMMIT itself fails."""
import sqlite3

import pytest

from store.db import connect, transaction


@pytest.fixture
def conn(tmp_path):
    c = connect(tmp_path / "t.db")
    c.execute("CREATE TABLE parent (id INTEGER PRIMARY KEY)")
    # checked at COMMIT, so a bad row makes the COMMIT fail
    c.execute("CREATE TABLE child (id INTEGER PRIMARY KEY, parent INTEGER "
              "REFERENCES parent(id) DEFERRABLE INITIALLY DEFERRED)")
    yield c
    c.close()


def test_a_block_commits(conn):
    with transaction(conn):
        conn.execute("INSERT INTO parent VALUES (1)")
    assert conn.execute("SELECT count(*) FROM parent").fetchone()[0] == 1 and not conn.in_transaction


def test_an_error_in_the_block_leaves_nothing(conn):
    with pytest.raises(ZeroDivisionError):
        with transaction(conn):
            conn.execute("INSERT INTO parent VALUES (1)")
            1 / 0
    assert conn.execute("SELECT count(*) FROM parent").fetchone()[0] == 0 and not conn.in_transaction


def test_a_failed_commit_is_rolled_back_and_the_connection_still_works(conn):
    with pytest.raises(sqlite3.IntegrityError):
        with transaction(conn):
            conn.execute("INSERT INTO parent VALUES (1)")
            conn.execute("INSERT INTO child VALUES (1, 99)")     # no parent 99: refused at COMMIT
    assert not conn.in_transaction
    assert conn.execute("SELECT count(*) FROM parent").fetchone()[0] == 0
    with transaction(conn):
        conn.execute("INSERT INTO parent VALUES (2)")
    assert conn.execute("SELECT id FROM parent").fetchall()[0][0] == 2
