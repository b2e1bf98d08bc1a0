"""Words and phrases lesbot reads mail by, as data: one TOML file per service (see README)."""
