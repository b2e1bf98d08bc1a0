"""lesbot's store: one SQLite file (WAL) opened through sqlite-utils.

Schema changes are numbered migrations; PRAGMA user_version records how far a
database has come, so an old file is upgraded in place at start.
"""
from store.db import connect, open_db, audit, SCHEMA_VERSION

__all__ = ["connect", "open_db", "audit", "SCHEMA_VERSION"]
