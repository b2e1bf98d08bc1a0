"""Settings: lesbot.toml, then LESBOT_* environment variables, validated by pydantic.

A wrong setting stops lesbot at start with a message naming the setting,
rather than failing later on the first message that needs it. The sections ([imap], [relay] …)
are in sections.py.
"""
from __future__ import annotations

import difflib
import json
import os
import re
import tomllib
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator
from pydantic_settings import (BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource,
                               SettingsConfigDict, TomlConfigSettingsSource)

from bot.settings.sections import (ADDRESS_HINT, CalendarSettings, DigestSettings, ImapSettings, ImskSettings,
                                   Limits, ReferralSettings, RelaySettings, ReminderSettings, SchedulerSettings,
                                   TrainingSettings, _check_address)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LESBOT_", env_nested_delimiter="__",
                                      extra="forbid")

    home: Path = Path("./var")
    # Comma-separated; mail for any other address is refused (550).
    inbox: str = "les.inbox@localhost"
    from_name: str = "LES inbox (lesbot)"
    from_address: str = ""          # default: the first inbox address
    bounce_address: str = ""        # default: lesbot-bounces@<inbox domain>
    message_id_domain: str = ""     # default: lesbot.<inbox domain>
    instance: str = "lesbot"        # value of the loop header on everything we send
    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(2525, ge=1, le=65535)
    # An Authentication-Results authserv-id to trust (e.g. your relay); empty: don't check.
    trusted_authserv_id: str = ""
    # Envelope senders allowed to send for any directory address (e.g. a forwarding relay that
    # rewrites the envelope). Anyone else's envelope must be the From address or its organisation's.
    trusted_envelope_senders: list[str] = []
    contract_team: str = ""
    # Untoward events under the denosumab LES are forwarded here (the clinical governance lead).
    clinical_governance: str = ""
    referrals: ReferralSettings = ReferralSettings()
    calendar: CalendarSettings = CalendarSettings()
    # Which service each inbox address is for (les, imsk, training); unlisted addresses are les.
    routes: dict[str, str] = {}
    imsk: ImskSettings = ImskSettings()
    training: TrainingSettings = TrainingSettings()
    reminders: ReminderSettings = ReminderSettings()
    digest: DigestSettings = DigestSettings()
    scheduler: SchedulerSettings = SchedulerSettings()
    # Your own LES catalogue (TOML): adds services or replaces shipped ones by code.
    catalogue_file: str = ""
    imap: ImapSettings = ImapSettings()
    relay: RelaySettings = RelaySettings()
    limits: Limits = Limits()

    @field_validator("inbox")
    @classmethod
    def _inbox(cls, v: str) -> str:
        parts = [_check_address(p) for p in v.split(",") if p.strip()]
        if not parts:
            raise ValueError(f"at least one inbox address is needed ({ADDRESS_HINT})")
        return ",".join(parts)

    @field_validator("from_address", "bounce_address", "contract_team", "clinical_governance")
    @classmethod
    def _optional_address(cls, v: str) -> str:
        return _check_address(v) if v.strip() else ""

    @field_validator("routes")
    @classmethod
    def _routes(cls, v: dict) -> dict:
        bad = {k: x for k, x in v.items() if x not in ("les", "imsk", "training")}
        if bad:
            raise ValueError(f"services are les, imsk or training, not {', '.join(map(str, bad.values()))}")
        return {k.strip().lower(): x for k, x in v.items()}

    @field_validator("catalogue_file")
    @classmethod
    def _catalogue(cls, v: str) -> str:
        if v:
            from handlers.contract.catalogue import CatalogueError, load
            try:
                load(v)
            except CatalogueError as e:
                raise ValueError(str(e)) from None
        return v

    @property
    def trusted_addresses(self) -> set[str]:
        """Addresses outside the directory that lesbot may still write to (set by the operator)."""
        return {a.lower() for a in (self.contract_team, self.clinical_governance, self.imsk.triage_team,
                                    self.imsk.service_lead, self.training.panel) if a}

    def inbox_for(self, service: str) -> str:
        """The inbox address mail for SERVICE is sent from (so replies come back to that service)."""
        return next((a for a in self.inboxes if self.routes.get(a, "les") == service), self.inboxes[0])

    def route(self, addresses) -> tuple[str, str]:
        """(service, our inbox address) for mail sent to any of ADDRESSES; the first inbox and
        'les' when none of ours is among them."""
        ours = self.inboxes
        for a in addresses:
            a = (a or "").strip().lower()
            if a in ours:
                return self.routes.get(a, "les"), a
        return self.routes.get(ours[0], "les"), ours[0]

    @model_validator(mode="after")
    def _defaults(self):
        domain = self.inboxes[0].rpartition("@")[2]
        if not self.from_address:
            self.from_address = self.inboxes[0]
        if not self.bounce_address:
            self.bounce_address = f"lesbot-bounces@{domain}"
        if not self.message_id_domain:
            self.message_id_domain = f"lesbot.{domain}"
        stray = set(self.routes) - set(self.inboxes)
        if stray:
            raise ValueError(f"routes name addresses that are not inboxes: {', '.join(sorted(stray))}")
        return self

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, env_settings,
                                   dotenv_settings, file_secret_settings):
        # Only the LESBOT_* names lesbot knows: a misspelt one is warned about (see
        # env_warnings) and ignored, wherever it points, rather than half-applied.
        sources: list[PydanticBaseSettingsSource] = [init_settings, _KnownEnv(settings_cls)]
        path = config_path()
        if path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)

    @property
    def catalogue(self):
        from handlers.contract.catalogue import load
        return load(self.catalogue_file)

    @property
    def inboxes(self) -> list[str]:
        return self.inbox.split(",")

    @property
    def own_addresses(self) -> set[str]:
        return set(self.inboxes) | {self.from_address, self.bounce_address}

    @property
    def db_path(self) -> Path:
        return self.home / "lesbot.db"

    @property
    def outbox_dir(self) -> Path:
        return self.home / "outbox"


class ConfigError(Exception):
    pass


def version() -> str:
    """lesbot's version, from the installed package's metadata."""
    from importlib.metadata import PackageNotFoundError, version as installed
    try:
        return installed("lesbot")
    except PackageNotFoundError:
        return "unknown (not installed)"


# LESBOT_* variables that are not settings but are read by lesbot's own tools
# (LESBOT_CONFIG here; deploy/nhsmail-token.py reads the OAuth2 ones).
OTHER_ENV = {"LESBOT_CONFIG", "LESBOT_OAUTH_TENANT", "LESBOT_OAUTH_CLIENT_ID", "LESBOT_OAUTH_CLIENT_SECRET"}
PREFIX = "LESBOT_"
SECRET = re.compile(r"password|secret|token", re.I)


def _known_env() -> tuple[set[str], set[str]]:
    """(every LESBOT_ name lesbot reads, prefixes under which any name is fine: dict settings)."""
    names, open_prefixes = set(OTHER_ENV), set()
    for name, field in Settings.model_fields.items():
        top = PREFIX + name.upper()
        names.add(top)
        sub = field.annotation
        if isinstance(sub, type) and issubclass(sub, BaseModel):
            names |= {f"{top}__{n.upper()}" for n in sub.model_fields}
        elif getattr(sub, "__origin__", None) is dict:
            open_prefixes.add(top + "__")
    return names, open_prefixes


def unknown_env(environ=None) -> list[tuple[str, str | None]]:
    """LESBOT_* variables lesbot does not read: (name, the setting it probably meant or None)."""
    environ = os.environ if environ is None else environ
    names, open_prefixes = _known_env()
    out = []
    for var in sorted(environ):
        up = var.upper()
        if not up.startswith(PREFIX) or up in names or any(up.startswith(p) for p in open_prefixes):
            continue
        # Compare without the shared prefix, or every name looks close to every other.
        close = difflib.get_close_matches(up[len(PREFIX):], [n[len(PREFIX):] for n in names], n=1, cutoff=0.7)
        out.append((var, PREFIX + close[0] if close else None))
    return out


def env_warnings(environ=None) -> list[str]:
    """One line per misspelt or unknown LESBOT_* variable."""
    return [f"warning: {var} is not a lesbot setting and is ignored" + (f" (did you mean {hint}?)" if hint else "")
            for var, hint in unknown_env(environ)]


class _KnownEnv(EnvSettingsSource):
    """The environment, without the LESBOT_* names lesbot does not know."""

    def _load_env_vars(self):
        unknown = {v.lower() for v, _ in unknown_env()}
        return {k: v for k, v in super()._load_env_vars().items() if k.lower() not in unknown}


def config_path() -> Path | None:
    explicit = os.environ.get("LESBOT_CONFIG")
    if explicit:
        p = Path(explicit)
        if not p.is_file():
            raise ConfigError(f"LESBOT_CONFIG={explicit}: no such file")
        return p
    p = Path("lesbot.toml")
    return p if p.is_file() else None


def _check_toml(path: Path) -> None:
    """A syntax error named by file and line (pydantic-settings would give neither)."""
    try:
        tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise ConfigError(f"{path}: cannot read it: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a text file in UTF-8") from None
    except tomllib.TOMLDecodeError as e:
        msg = str(e)
        m = re.search(r"\s*\(at line (\d+), column (\d+)\)", msg)
        if m:
            msg = msg[:m.start()] + msg[m.end():]
            raise ConfigError(f"{path}, line {m.group(1)}, column {m.group(2)}: TOML syntax error: {msg}") from None
        raise ConfigError(f"{path}: TOML syntax error: {msg}") from None


def _problem(err: dict, path: Path | None) -> str:
    loc = [str(x) for x in err["loc"]]
    where = ".".join(loc) or "settings"
    msg = err["msg"]
    if err["type"] == "extra_forbidden" and loc:
        # "replies_per_sendr_per_day": say which setting was probably meant
        model: type[BaseModel] | None = Settings
        for part in loc[:-1]:
            field = model.model_fields.get(part) if model else None
            kind = field.annotation if field else None
            model = kind if isinstance(kind, type) and issubclass(kind, BaseModel) else None
        if model is not None:
            close = difflib.get_close_matches(loc[-1], list(model.model_fields), n=1, cutoff=0.7)
            msg = "not a lesbot setting" + (f" (did you mean {'.'.join(loc[:-1] + close)}?)" if close else "")
    env = PREFIX + "__".join(x.upper() for x in loc)
    source = f" (from {env})" if env in {k.upper() for k in os.environ} else (f" (in {path})" if path else "")
    return f"{where}: {msg}{source}"


def load(**overrides) -> Settings:
    """Load and validate; raise ConfigError with one readable line naming each problem."""
    path = config_path()
    if path is not None:
        _check_toml(path)
    try:
        return Settings(**overrides)
    except ValidationError as e:
        problems = [_problem(err, path) for err in e.errors()]
        raise ConfigError(("invalid setting " if len(problems) == 1 else "invalid settings: ") +
                          "; ".join(problems)) from None
    except ValueError as e:  # e.g. malformed TOML
        raise ConfigError(f"invalid settings: {e}") from None


def masked(settings: Settings) -> dict:
    """The settings in force as plain data, passwords, tokens and secrets shown as ***."""
    def walk(d):
        return {k: (walk(v) if isinstance(v, dict) else ("***" if v and SECRET.search(k) else v))
                for k, v in d.items()}
    return walk(settings.model_dump(mode="json"))


def summary(settings: Settings, **in_force) -> str:
    """The settings in force on one line (key=value, sections dotted), secrets masked."""
    flat: dict = {}

    def walk(prefix, d):
        for k, v in d.items():
            if isinstance(v, dict) and k != "routes":
                walk(f"{prefix}{k}.", v)
            else:
                flat[prefix + k] = v
    walk("", {**masked(settings), **in_force})

    def shown(v):
        plain = isinstance(v, (int, float)) and not isinstance(v, bool) or \
            isinstance(v, str) and v and not re.search(r"[\s\"=]", v)
        return str(v) if plain else json.dumps(v)
    return " ".join(f"{k}={shown(v)}" for k, v in flat.items())
